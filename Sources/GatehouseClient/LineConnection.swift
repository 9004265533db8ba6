import GatehouseProtocol
public import GatehouseSystem
public import GatehouseTLS

/// A non-blocking client connection that speaks lines: connect, TLS handshake, then lines out
/// (queued) and lines in (collected), driven by its owner's poll or epoll loop.
///
/// Not thread-safe: one thread drives a connection for its whole life (OpenSSL forbids
/// concurrent `SSL_read` and `SSL_write` on one `SSL`). Owns its socket; `close()` or `deinit`
/// closes it. Holds no read buffer of its own between calls (the owner lends one), so ten
/// thousand idle connections cost little more than their TLS state.
public final class LineConnection {
    public enum Phase: Sendable, Equatable {
        case connecting, handshaking, open, closed
    }

    /// What `drive` found.
    public enum Event {
        /// Nothing final happened; wait for `wantsWrite ? read|write : read` and call again.
        case progress
        /// The connection ended: nil when the server closed it cleanly, else why.
        case ended(ClientError?)
    }

    /// The socket, until `close()` takes and closes it (the object may live on, closed).
    private var socket: OwnedFD?
    /// The socket's number for the owner's poll or epoll; -1 once closed.
    public var fd: Int32 { socket?.raw ?? -1 }
    public private(set) var phase: Phase
    let tls: TLSConnection
    private var outbound: [UInt8] = []
    private var outboundStart = 0
    /// Reply lines are framed as the server frames requests; a reply line may be up to 1 MiB.
    private var framer = LineFramer(maxLine: LineConnection.maxReplyLine)
    private var handshakeWantsWrite = false
    private var writeBlocked = false

    /// The longest reply line accepted, LF included: far above any reply of the protocol, so
    /// only a broken or hostile server reaches it.
    static let maxReplyLine = (1 << 20) + 1

    /// Starts a non-blocking connect to `address` and prepares TLS with SNI `serverName`.
    public init(
        address: SocketAddress,
        context: TLSContext,
        serverName: String,
        verify: Bool,
        session: TLSSession? = nil
    ) throws(ClientError) {
        var inProgress = false
        let socket: OwnedFD
        do { socket = try Socket.startConnect(to: address, inProgress: &inProgress) } catch {
            throw ClientError(.network, "cannot connect to \(address): \(error)", cause: error)
        }
        let tls: TLSConnection
        do {
            tls = try TLSConnection(context: context, fd: socket.raw)
            try tls.setServerName(serverName, verifyHost: verify)
            if let session { try tls.setSession(session) }
        } catch {
            throw ClientError(.tls, "\(error)")
        }
        self.tls = tls
        self.phase = inProgress ? .connecting : .handshaking
        self.socket = consume socket
    }

    /// Whether the owner should also wait for the socket to become writable.
    public var wantsWrite: Bool {
        switch phase {
        case .connecting: true
        case .handshaking: handshakeWantsWrite
        case .open: writeBlocked || outboundStart < outbound.count
        case .closed: false
        }
    }

    /// Bytes queued and not yet taken by the socket.
    public var pendingOutput: Int { outbound.count - outboundStart }

    /// Between the client's first flight and the end of the handshake: the next step takes the
    /// server's flight (a key exchange and a certificate check), the costly part of a client's
    /// handshake. Load generators driving thousands of connections ration these steps.
    public var isAwaitingServerFlight: Bool { phase == .handshaking && tls.isHandshakeStarted }

    public var sessionReused: Bool { tls.sessionReused }
    public var tlsDescription: String { "\(tls.protocolVersion) \(tls.cipherName)" }
    /// The current TLS session, for resuming a later connection (see `TLSConnection.session`).
    public var session: TLSSession? { tls.session }

    /// Queues `line` plus LF; `drive` sends it.
    public func queueLine<Bytes: Collection<UInt8>>(_ line: Bytes) {
        outbound.append(contentsOf: line)
        outbound.append(0x0A)
    }

    public func queueLine(_ line: String) { queueLine(line.utf8) }

    /// Queues bytes exactly as given, no LF added (tests use this for partial lines).
    public func queueRaw<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        outbound.append(contentsOf: bytes)
    }

    /// Finishes the connect and the handshake, writes what is queued and reads what has arrived,
    /// appending each complete line (without LF) to `lines`. `scratch` is a read buffer the
    /// owner lends for the call. Never blocks.
    public func drive(lines: inout [String], scratch: UnsafeMutableRawBufferPointer) -> Event {
        if phase == .connecting {
            if let error = Socket.connectResult(fd) { return end(ClientError(.network, "\(error)")) }
            // Still connecting if the socket is not writable yet: a zero-timeout poll tells.
            guard let ready = try? Poll.wait([(fd, Poll.writable)], timeoutMs: 0), ready[0] != 0 else {
                return .progress
            }
            if let error = Socket.connectResult(fd) { return end(ClientError(.network, "\(error)")) }
            phase = .handshaking
        }
        if phase == .handshaking {
            switch tls.handshake() {
            case .done: phase = .open
            case .wantRead:
                handshakeWantsWrite = false
                return .progress
            case .wantWrite:
                handshakeWantsWrite = true
                return .progress
            case .closed: return end(ClientError(.tls, "the server closed the connection during the TLS handshake"))
            case .failed(let error):
                let why = tls.verificationFailure.map { "server certificate rejected: \($0); " } ?? ""
                return end(ClientError(.tls, "TLS handshake failed: \(why)\(error)"))
            }
        }
        guard phase == .open else { return .ended(nil) }
        if let failure = flush() { return end(failure) }
        return read(into: &lines, scratch: scratch)
    }

    private func flush() -> ClientError? {
        writeBlocked = false
        while outboundStart < outbound.count {
            let result = outbound.withUnsafeBytes { tls.write(UnsafeRawBufferPointer(rebasing: $0[outboundStart...])) }
            switch result {
            case .done(let n): outboundStart += n
            case .wantWrite, .wantRead:
                writeBlocked = true
                return nil
            case .closed: return ClientError(.closed, "the server closed the connection")
            case .failed(let error): return ClientError(.network, "write failed: \(error)")
            }
        }
        outbound.removeAll(keepingCapacity: outbound.count <= 64 * 1024)
        outboundStart = 0
        return nil
    }

    private func read(into lines: inout [String], scratch: UnsafeMutableRawBufferPointer) -> Event {
        while true {
            switch tls.read(into: scratch) {
            case .done(let n):
                var tooLong = false
                framer.feed(UnsafeRawBufferPointer(rebasing: scratch[0..<n])) { event in
                    switch event {
                    case .line(let bytes): lines.append(String(decoding: bytes, as: UTF8.self))
                    case .tooLong: tooLong = true
                    }
                    return !tooLong
                }
                if tooLong { return end(ClientError(.protocolViolation, "reply line longer than 1 MiB")) }
            case .wantRead, .wantWrite:
                return .progress
            case .closed:
                return end(nil)
            case .failed(let error):
                return end(ClientError(.network, "read failed: \(error)"))
            }
        }
    }

    private func end(_ error: ClientError?) -> Event {
        close()
        return .ended(error)
    }

    /// Sends close_notify (when the handshake completed) and closes the socket.
    public func close() {
        guard phase != .closed else { return }
        phase = .closed
        tls.shutdown()
        socket.take()?.close()
    }
}
