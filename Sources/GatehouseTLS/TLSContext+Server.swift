import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

extension TLSContext {
    /// SHA-256 over what decides who may resume a session: the client-auth mode, the client CA
    /// bundle and the CRL file, byte for byte. 32 bytes, OpenSSL's limit for the context.
    ///
    /// > Warning: blocking file I/O; runs at start-up and on reload.
    static func sessionIDContext(for config: TLSServerConfiguration) -> [UInt8] {
        var material = Array("gatehouse/1 session-id-context\0client-auth=\(config.clientAuth.rawValue)\0".utf8)
        if config.clientAuth != .off {
            for (label, path) in [("ca", config.clientCAFile), ("crl", config.crlFile)] {
                guard let path else { continue }
                // A file that cannot be read here fails to load below, with OpenSSL's own reason.
                let bytes = (try? readFile(path, what: "\(label) file")) ?? Array("unreadable".utf8)
                material += Array("\(label)\0".utf8) + Crypto.sha256(bytes)
            }
        }
        return Crypto.sha256(material)
    }

    /// Loads the server's private key: from `privateKeyPEM` when the caller has already read
    /// (and checked) the file, else from `privateKeyFile`.
    func usePrivateKey(_ config: TLSServerConfiguration) throws(TLSError) {
        let loaded: Int32
        if let pem = config.privateKeyPEM {
            loaded = pem.withUnsafeBytes { bytes -> Int32 in
                guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return 0 }
                defer { BIO_free(bio) }
                guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else { return 0 }
                defer { EVP_PKEY_free(key) }  // the context takes its own reference
                return SSL_CTX_use_PrivateKey(ctx, key)
            }
        } else {
            loaded = SSL_CTX_use_PrivateKey_file(ctx, config.privateKeyFile, COpenSSL_SSL_FILETYPE_PEM)
        }
        guard loaded == 1 else {
            if OpenSSLErrorQueue.lastIsKeyMismatch() {
                throw .drained(.keyMismatch, "the private key \(config.privateKeyFile) does not match the certificate")
            }
            throw .drained(.privateKey, "cannot load private key from \(config.privateKeyFile)")
        }
    }

    /// The whole of a small file (at most 16 MiB).
    static func readFile(_ path: String, what: String) throws(TLSError) -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw TLSError(.certificate, "cannot open \(what) \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            out.append(contentsOf: chunk[0..<n])
            if out.count > 16 << 20 { throw TLSError(.certificate, "\(what) \(path) is larger than 16 MiB") }
            if n < chunk.count {
                guard ferror(file) == 0 else { throw TLSError(.certificate, "cannot read \(what) \(path)") }
                return out
            }
        }
    }
}

extension TLSContext {
    /// The server certificate's notAfter, in seconds since the epoch; nil without a certificate.
    public var certificateNotAfter: Int? {
        guard let cert = SSL_CTX_get0_certificate(ctx) else { return nil }
        return TLSContext.notAfter(cert)
    }

    /// The notAfter (seconds since the epoch) of every certificate in the PEM file `path`, in
    /// file order; empty when it holds none.
    ///
    /// > Warning: blocking file I/O.
    public static func certificatesNotAfter(inPEMFile path: String) -> [Int] {
        guard let bio = BIO_new_file(path, "r") else {
            OpenSSLErrorQueue.clear()
            return []
        }
        defer { BIO_free(bio) }
        var out: [Int] = []
        while let cert = PEM_read_bio_X509(bio, nil, nil, nil) {
            defer { X509_free(cert) }
            if let t = notAfter(cert) { out.append(t) }
        }
        OpenSSLErrorQueue.clear()  // the loop ends on "no start line"
        return out
    }

    private static func notAfter(_ cert: OpaquePointer) -> Int? {
        guard let time = X509_get0_notAfter(cert) else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return timegm(&parts)
    }
}
