import COpenSSL

/// An error from the TLS layer, carrying OpenSSL's drained error queue as text.
///
/// `kind` says what failed and who is at fault; `message` is ours; `openSSLErrors` is
/// every entry `ERR_get_error` returned at the time, rendered by `ERR_error_string_n`.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    /// What went wrong. A struct over a private enum, so new kinds can be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case configuration, certificate, privateKey, keyMismatch, handshake, io, protocolViolation, resource
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The operator's configuration was refused by OpenSSL (versions, ciphers, groups). Ours.
        public static let configuration = Kind(.configuration)
        /// The certificate chain file is missing, unreadable or not PEM. Operator's.
        public static let certificate = Kind(.certificate)
        /// The private key file is missing, unreadable, encrypted or not PEM. Operator's.
        public static let privateKey = Kind(.privateKey)
        /// The private key does not belong to the certificate. Operator's.
        public static let keyMismatch = Kind(.keyMismatch)
        /// The handshake failed: the peer's version, ciphers, certificate or alert. Usually the peer's.
        public static let handshake = Kind(.handshake)
        /// The socket failed under TLS (reset, EPIPE). Usually the peer's or the network's.
        public static let io = Kind(.io)
        /// A record or message the peer sent violates TLS after the handshake. The peer's.
        public static let protocolViolation = Kind(.protocolViolation)
        /// OpenSSL could not allocate an object. Ours (memory).
        public static let resource = Kind(.resource)

        public var description: String {
            switch base {
            case .configuration: "configuration"
            case .certificate: "certificate"
            case .privateKey: "private key"
            case .keyMismatch: "key mismatch"
            case .handshake: "handshake"
            case .io: "io"
            case .protocolViolation: "protocol"
            case .resource: "resource"
            }
        }
    }

    public var kind: Kind
    public var message: String
    /// OpenSSL's reason strings, oldest first.
    public var openSSLErrors: [String]

    public init(_ kind: Kind, _ message: String, openSSLErrors: [String] = []) {
        self.kind = kind
        self.message = message
        self.openSSLErrors = openSSLErrors
    }

    /// Builds an error and drains the calling thread's OpenSSL error queue into it.
    static func drained(_ kind: Kind, _ message: String) -> TLSError {
        TLSError(kind, message, openSSLErrors: OpenSSLErrorQueue.drain())
    }

    /// One line for a log: our message and OpenSSL's newest reason.
    public var summary: String {
        guard let last = openSSLErrors.last else { return message }
        return "\(message) (\(last))"
    }

    public var description: String {
        if openSSLErrors.isEmpty { return "\(kind): \(message)" }
        return "\(kind): \(message) (\(openSSLErrors.joined(separator: "; ")))"
    }
}

/// The per-thread OpenSSL error queue.
enum OpenSSLErrorQueue {
    /// Removes every entry from the calling thread's queue and renders each one.
    static func drain() -> [String] {
        var out: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            out.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return out
    }

    /// Empties the queue before an I/O call, so a stale entry cannot be blamed on it.
    @inline(__always) static func clear() { ERR_clear_error() }

    /// Whether the newest entry is X509's "key values mismatch". OpenSSL 3 checks a key against
    /// the certificate already loaded while `SSL_CTX_use_PrivateKey_file` loads it, so a key of
    /// the right type but from another pair fails there, before `SSL_CTX_check_private_key`.
    static func lastIsKeyMismatch() -> Bool {
        let code = ERR_peek_last_error()
        return COpenSSL_ERR_GET_LIB(code) == ERR_LIB_X509
            && COpenSSL_ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH
    }
}
