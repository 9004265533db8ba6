import COpenSSL

/// What a verified certificate says about its holder: the subject common name and the
/// subject-alternative-name entries that can name a client (DNS, email, URI).
///
/// Plain data, copied out of the certificate; no OpenSSL object outlives the call that made it.
public struct CertificateIdentity: Sendable, Equatable, CustomStringConvertible {
    /// The subject CN; nil when the subject has none, or more than one (ambiguous).
    public var commonName: String?
    public var dnsNames: [String]
    public var emails: [String]
    public var uris: [String]

    public init(commonName: String?, dnsNames: [String] = [], emails: [String] = [], uris: [String] = []) {
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.emails = emails
        self.uris = uris
    }

    /// `CN=alice, DNS:a.example, email:a@example` — for logs (public information only). Every
    /// value is escaped (`CertificateIdentity.escaped`): a certificate's names are chosen by
    /// whoever asked for it, and a CN holding a newline would otherwise forge a log line.
    public var description: String {
        var parts: [String] = []
        if let commonName { parts.append("CN=\(Self.escaped(commonName))") }
        parts += dnsNames.map { "DNS:\(Self.escaped($0))" } + emails.map { "email:\(Self.escaped($0))" }
        parts += uris.map { "URI:\(Self.escaped($0))" }
        return parts.isEmpty ? "(no names)" : parts.joined(separator: ", ")
    }

    /// `text` safe for one log line: control characters (C0, DEL, C1), line and paragraph
    /// separators, bidirectional overrides and the characters the description itself uses
    /// (backslash, comma, double quote) become `\u{…}` escapes; everything else stays as it is.
    public static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069, 0x5C, 0x2C, 0x22:
                out += "\\u{\(String(scalar.value, radix: 16))}"
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Reads the names of `cert`, which the caller keeps owning.
    init(certificate cert: OpaquePointer) {
        commonName = CertificateIdentity.singleCommonName(cert)
        dnsNames = []
        emails = []
        uris = []
        guard let raw = X509_get_ext_d2i(cert, NID_subject_alt_name, nil, nil) else { return }
        let names = OpaquePointer(raw)
        defer { GENERAL_NAMES_free(names) }
        for i in 0..<COpenSSL_sk_GENERAL_NAME_num(names) {
            guard let name = COpenSSL_sk_GENERAL_NAME_value(names, i) else { continue }
            // The union member is read only after its tag says which one it is.
            switch name.pointee.type {
            case GEN_DNS: CertificateIdentity.text(name.pointee.d.dNSName).map { dnsNames.append($0) }
            case GEN_EMAIL: CertificateIdentity.text(name.pointee.d.rfc822Name).map { emails.append($0) }
            case GEN_URI: CertificateIdentity.text(name.pointee.d.uniformResourceIdentifier).map { uris.append($0) }
            default: break  // IP addresses, directory names, others: not used to name clients
            }
        }
    }

    private static func singleCommonName(_ cert: OpaquePointer) -> String? {
        guard let subject = X509_get_subject_name(cert) else { return nil }
        let index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
        // Two CNs would let a CA-signed subject read as either name: refuse to pick one.
        guard index >= 0, X509_NAME_get_index_by_NID(subject, NID_commonName, index) < 0,
            let entry = X509_NAME_get_entry(subject, index), let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let count = ASN1_STRING_to_UTF8(&utf8, data)
        guard count > 0, let utf8 else { return nil }
        defer { COpenSSL_OPENSSL_free(utf8) }
        let bytes = UnsafeBufferPointer(start: utf8, count: Int(count))
        guard !bytes.contains(0) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// An IA5String (DNS, email, URI) as text; nil if it holds a NUL or non-ASCII byte.
    private static func text(_ string: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let string, let data = ASN1_STRING_get0_data(string) else { return nil }
        let bytes = UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(string)))
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 > 0 && $0 < 0x80 }) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension TLSConnection {
    /// The names of the peer's certificate if it was presented and verified, else nil.
    public var verifiedPeerIdentity: CertificateIdentity? {
        guard SSL_get_verify_result(ssl) == Int(X509_V_OK), let cert = SSL_get1_peer_certificate(ssl) else {
            return nil
        }
        defer { X509_free(cert) }
        return CertificateIdentity(certificate: cert)
    }

    /// Why the peer's certificate failed verification (OpenSSL's text, e.g. "certificate has
    /// expired"), or nil when it passed or none was presented.
    public var peerVerificationFailure: String? {
        let result = SSL_get_verify_result(ssl)
        guard result != Int(X509_V_OK) else { return nil }
        guard let text = X509_verify_cert_error_string(result) else { return "verify error \(result)" }
        return String(cString: text)
    }
}
