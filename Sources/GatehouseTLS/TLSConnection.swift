import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// The outcome of one non-blocking TLS call. Wanting more I/O is a result, not an error.
public enum TLSIOResult: Sendable {
    /// The call completed; for read and write, this many bytes moved (0 for a handshake).
    case done(Int)
    /// Call again when the socket is readable.
    case wantRead
    /// Call again when the socket is writable.
    case wantWrite
    /// The peer closed the TLS session (close_notify, or a clean EOF).
    case closed
    case failed(TLSError)
}

/// The outcome of sending a buffered socket's waiting ciphertext.
public enum TLSSendResult: Sendable, Equatable {
    /// Everything waiting has been handed to the kernel.
    case done
    /// Some is still waiting: send again when the socket is writable.
    case wouldBlock
    /// The connection failed (errno: EPIPE, ECONNRESET, ...).
    case failed(Int32)
}

/// One `SSL` object: a TLS session over a non-blocking socket or over memory BIOs.
///
/// Not thread-safe: owned by one worker thread for its whole life. Holds its `TLSContext`
/// strongly, so the context outlives every session made from it; frees the `SSL` in `deinit`.
public final class TLSConnection {
    let ssl: OpaquePointer
    public let context: TLSContext
    private var memoryIn: OpaquePointer?
    private var memoryOut: OpaquePointer?
    /// With `init(context:bufferedSocket:)`: the socket, the deferred output, the drained flag.
    let socket: SocketBIOState?

    /// A session over the connected socket `fd`, which the caller keeps owning.
    public init(context: TLSContext, fd: Int32) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.ctx) else { throw .drained(.resource, "SSL_new failed") }
        self.ssl = ssl
        self.context = context
        self.socket = nil
        guard SSL_set_fd(ssl, fd) == 1 else { throw .drained(.resource, "SSL_set_fd failed") }
        if context.isServer { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
    }

    /// A session over the connected non-blocking socket `fd` (kept by the caller) whose output
    /// waits in a buffer of at most `outputLimit` bytes until `sendPendingCiphertext()`, and
    /// whose reads skip the `recv` that would say EAGAIN (`SocketBIO`). For the server's workers:
    /// a handshake's last flight, its ticket and the greeting leave in one `send`.
    /// `sharing`: the BIO this thread's sessions take turns on (`SharedSocketBIO`); a BIO of its
    /// own when nil. Either way, the session must be used on one thread only.
    public init(
        context: TLSContext,
        bufferedSocket fd: Int32,
        outputLimit: Int,
        sharing shared: SharedSocketBIO? = nil
    ) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        let shared = if let shared { shared } else { try SharedSocketBIO() }
        guard let ssl = SSL_new(context.ctx) else { throw .drained(.resource, "SSL_new failed") }
        self.ssl = ssl
        self.context = context
        self.socket = SocketBIOState(fd: fd, outputLimit: outputLimit)
        _ = BIO_up_ref(shared.bio)
        SSL_set_bio(ssl, shared.bio, shared.bio)  // one BIO both ways: the SSL owns one reference
        if context.isServer { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
    }

    /// A session over memory: ciphertext goes in with `feed(ciphertext:)` and comes out with
    /// `takeCiphertext()`. For tests and for measuring TLS without sockets.
    public init(inMemory context: TLSContext) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.ctx), let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem())
        else { throw .drained(.resource, "SSL_new or BIO_new failed") }
        self.ssl = ssl
        self.context = context
        self.socket = nil
        SSL_set_bio(ssl, rbio, wbio)  // the SSL now owns both BIOs
        memoryIn = rbio
        memoryOut = wbio
        if context.isServer { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
    }

    deinit {
        SSL_free(ssl)
    }

    /// Sets SNI and the name the peer's certificate must carry (client side).
    public func setServerName(_ name: String, verifyHost: Bool) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        let isIP = name.contains(":") || name.allSatisfy { $0.isNumber || $0 == "." }
        // RFC 6066: SNI carries host names only, never a literal address.
        if !isIP {
            guard COpenSSL_SSL_set_tlsext_host_name(ssl, name) == 1 else {
                throw .drained(.configuration, "cannot set SNI name \(name)")
            }
        }
        if verifyHost {
            if isIP {
                guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 else {
                    throw .drained(.configuration, "cannot verify against address \(name)")
                }
            } else {
                guard SSL_set1_host(ssl, name) == 1 else {
                    throw .drained(.configuration, "cannot verify against host \(name)")
                }
            }
        }
    }

    /// Advances the handshake. `.done(0)` when it has completed.
    public func handshake() -> TLSIOResult {
        OpenSSLErrorQueue.clear()
        errno = 0  // SSL_ERROR_SYSCALL is read from errno: never let it see an older call's
        let rc = withSocketBIO { SSL_do_handshake(ssl) }
        if rc == 1 { return .done(0) }
        let result = classify(rc, during: .handshake)
        // OpenSSL's queue says only "certificate verify failed"; the verify result says why.
        if case .failed(let error) = result, let why = peerVerificationFailure {
            return .failed(TLSError(.handshake, "peer certificate refused: \(why)", openSSLErrors: error.openSSLErrors))
        }
        return result
    }

    public var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }

    /// Whether the handshake has begun: OpenSSL has taken the peer's first flight (a server, the
    /// ClientHello) or sent its own. A server finishing started handshakes before beginning new
    /// ones completes each sooner.
    public var isHandshakeStarted: Bool { SSL_in_before(ssl) == 0 }

    /// Reads decrypted bytes into `buffer`.
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSIOResult {
        OpenSSLErrorQueue.clear()
        errno = 0  // SSL_ERROR_SYSCALL is read from errno: never let it see an older call's
        let rc = withSocketBIO { SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count)) }
        if rc > 0 { return .done(Int(rc)) }
        return classify(rc, during: .protocolViolation)
    }

    /// Encrypts and sends from `buffer`; partial writes are possible (`.done(n)` with n < count).
    /// After `.wantWrite`, call again with the same leading bytes.
    @inline(__always)
    public func write(_ buffer: UnsafeRawBufferPointer) -> TLSIOResult {
        if buffer.isEmpty { return .done(0) }
        OpenSSLErrorQueue.clear()
        errno = 0  // SSL_ERROR_SYSCALL is read from errno: never let it see an older call's
        let rc = withSocketBIO { SSL_write(ssl, buffer.baseAddress, Int32(clamping: buffer.count)) }
        if rc > 0 { return .done(Int(rc)) }
        return classify(rc, during: .io)
    }

    /// Sends close_notify, once, without waiting for the peer's.
    public func shutdown() {
        OpenSSLErrorQueue.clear()
        if isHandshakeComplete { _ = withSocketBIO { SSL_shutdown(ssl) } }
        OpenSSLErrorQueue.clear()
    }

    /// Bytes already decrypted and buffered inside OpenSSL.
    public var pendingPlaintext: Int { Int(SSL_pending(ssl)) }

    /// Whether this session resumed an earlier one.
    public var sessionReused: Bool { SSL_session_reused(ssl) == 1 }

    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    public var cipherName: String {
        guard let cipher = SSL_get_current_cipher(ssl) else { return "none" }
        return String(cString: SSL_CIPHER_get_name(cipher))
    }

    /// The subject common name of a verified peer certificate, or nil.
    public var verifiedPeerCommonName: String? {
        guard SSL_get_verify_result(ssl) == Int(X509_V_OK), let cert = SSL_get1_peer_certificate(ssl) else {
            return nil
        }
        defer { X509_free(cert) }
        guard let name = X509_get_subject_name(cert) else { return nil }
        var buf = [CChar](repeating: 0, count: 256)
        let n = X509_NAME_get_text_by_NID(name, NID_commonName, &buf, Int32(buf.count))
        guard n > 0 else { return nil }
        return String(decoding: buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: the buffered socket

    /// Runs one OpenSSL call with this session's socket state attached to its (shared) BIO, and
    /// detaches it afterwards (`SharedSocketBIO`). The BIO's retry flags stay for `classify`.
    @inline(__always)
    private func withSocketBIO<R>(_ call: () -> R) -> R {
        guard let socket else { return call() }
        let bio = SSL_get_rbio(ssl)
        BIO_set_data(bio, Unmanaged.passUnretained(socket).toOpaque())
        defer { BIO_set_data(bio, nil) }
        return call()
    }

    /// Ciphertext written by OpenSSL and not yet sent (always 0 without a buffered socket).
    public var pendingCiphertext: Int { socket?.output.count ?? 0 }

    /// Whether a read would skip the kernel: the socket was found empty since the last
    /// `socketReadable()`.
    public var socketDrained: Bool { socket?.drained ?? false }

    /// `recv` calls made through the buffered socket so far.
    public var socketReceives: Int { socket?.receives ?? 0 }

    /// Epoll reported the socket readable (or hung up): the next read asks the kernel again.
    @inline(__always)
    public func socketReadable() {
        socket?.drained = false
    }

    /// Sends the waiting ciphertext with one `send` (again only after EINTR). A partial send
    /// means the kernel's buffer is full: `.wouldBlock`, the rest waits for writability.
    public func sendPendingCiphertext() -> TLSSendResult {
        guard let socket, !socket.output.isEmpty else { return .done }
        while true {
            let n = socket.output.withPending { send(socket.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                let complete = n == socket.output.count
                socket.output.consume(n)
                if complete { return .done }
                return .wouldBlock  // the kernel's buffer is full: wait for writable
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .wouldBlock }
            return .failed(n < 0 ? errno : EPIPE)
        }
    }

    /// Forgets the waiting ciphertext and frees its memory (the connection is closed).
    public func discardPendingCiphertext() {
        socket?.output.discard()
    }

    // MARK: memory BIOs

    /// Hands ciphertext from the peer to an in-memory session.
    public func feed(ciphertext: [UInt8]) {
        guard let memoryIn, !ciphertext.isEmpty else { return }
        ciphertext.withUnsafeBytes { _ = BIO_write(memoryIn, $0.baseAddress, Int32($0.count)) }
    }

    /// Takes the ciphertext an in-memory session has produced for its peer.
    public func takeCiphertext() -> [UInt8] {
        guard let memoryOut else { return [] }
        let pending = Int(BIO_ctrl_pending(memoryOut))
        guard pending > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: pending)
        let n = out.withUnsafeMutableBytes { BIO_read(memoryOut, $0.baseAddress, Int32(pending)) }
        return n > 0 ? Array(out.prefix(Int(n))) : []
    }

    // MARK: errors

    private func classify(_ rc: Int32, during kind: TLSError.Kind) -> TLSIOResult {
        let code = SSL_get_error(ssl, rc)
        switch code {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let saved = errno
            let queue = OpenSSLErrorQueue.drain()
            if saved == 0 && queue.isEmpty { return .closed }
            if saved == EAGAIN || saved == EWOULDBLOCK { return .wantRead }
            let text = saved != 0 ? String(cString: strerror(saved)) : "unexpected end of stream"
            return .failed(TLSError(.io, text, openSSLErrors: queue))
        default:
            let queue = OpenSSLErrorQueue.drain()
            return .failed(TLSError(kind, "TLS error \(code)", openSSLErrors: queue))
        }
    }
}
