import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

extension TLSContext {
    /// Adds every CRL in the PEM file `path` to the context's verify store and turns on
    /// revocation checks for the whole client chain (`X509_V_FLAG_CRL_CHECK | _CRL_CHECK_ALL`).
    ///
    /// Refuses a file with no CRL, or with one whose nextUpdate has passed: with CRL_CHECK_ALL an
    /// expired CRL fails every client, so loading it would lock out everyone at the next handshake.
    ///
    /// > Warning: blocking file I/O; runs at start-up and on reload.
    func loadRevocationLists(_ path: String) throws(TLSError) {
        guard let store = SSL_CTX_get_cert_store(ctx) else { throw .drained(.resource, "the context has no store") }
        guard let bio = BIO_new_file(path, "r") else {
            throw .drained(.certificate, "cannot open CRL file \(path)")
        }
        defer { BIO_free(bio) }
        var loaded = 0
        while let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) {
            defer { X509_CRL_free(crl) }  // the store takes its own reference
            if let next = X509_CRL_get0_nextUpdate(crl), X509_cmp_current_time(next) <= 0 {
                OpenSSLErrorQueue.clear()
                throw TLSError(
                    .certificate,
                    "CRL \(loaded + 1) in \(path) has expired (nextUpdate passed); issue a new one with the CA"
                )
            }
            guard X509_STORE_add_crl(store, crl) == 1 else {
                throw .drained(.certificate, "cannot add CRL \(loaded + 1) from \(path)")
            }
            loaded += 1
        }
        // The loop ends on "no start line" at the end of the file: expected once something was read.
        let trailing = OpenSSLErrorQueue.drain()
        guard loaded > 0 else {
            throw TLSError(.certificate, "no CRL in \(path) (expected PEM 'X509 CRL' blocks)", openSSLErrors: trailing)
        }
        guard X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL)) == 1 else {
            throw .drained(.configuration, "cannot turn on CRL checks")
        }
    }

    /// SHA-256 of the server certificate (DER), as colon-separated hex; nil for a client context
    /// without a certificate. For logs: which certificate a context serves.
    public var certificateFingerprint: String? {
        guard let cert = SSL_CTX_get0_certificate(ctx) else { return nil }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(cert, EVP_sha256(), &digest, &length) == 1 else {
            OpenSSLErrorQueue.clear()
            return nil
        }
        let hex = Array("0123456789ABCDEF".utf8)
        return digest.prefix(Int(length)).map {
            String(decoding: [hex[Int($0 >> 4)], hex[Int($0 & 15)]], as: UTF8.self)
        }
        .joined(separator: ":")
    }
}
