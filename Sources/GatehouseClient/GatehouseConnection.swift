import DequeModule
import GatehouseProtocol
import GatehouseSystem
public import GatehouseTLS

/// A blocking client connection: TCP, TLS, greeting, then lines in and out.
///
/// Not thread-safe: one thread uses a connection at a time. Pipelining is done by writing many
/// lines before reading their replies (`sendMessages`), so one thread can keep a window full.
public final class GatehouseConnection {
    /// The socket, until `close()`, `reset()` or a failed set-up takes and closes it.
    private var socket: OwnedFD?
    private let tls: TLSConnection
    /// The greeting line, e.g. `HELLO gatehouse/1`.
    public private(set) var greeting: String = ""
    /// Frames reply lines as `LineConnection` does; whole lines wait in `ready` until read.
    private var framer = LineFramer(maxLine: LineConnection.maxReplyLine)
    private var ready = Deque<String>()
    private var readBuffer = [UInt8](repeating: 0, count: 16 * 1024)
    private var closed = false

    /// Connects, handshakes and reads the greeting. A server at its limit answers `ERR BUSY`
    /// instead of a greeting: that is thrown as `.server(.busy)`.
    public init(_ config: ClientConfiguration, context: TLSContext) throws(ClientError) {
        let owned: OwnedFD
        do { owned = try Socket.connect(host: config.host, port: config.port) } catch {
            throw ClientError(.network, "cannot connect to \(config.host):\(config.port): \(error)", cause: error)
        }
        do { tls = try TLSConnection(context: context, fd: owned.raw) } catch {
            throw ClientError(.tls, "\(error)")
        }
        socket = consume owned
        do {
            try tls.setServerName(config.serverName ?? config.host, verifyHost: config.verify)
        } catch {
            abandon()
            throw ClientError(.tls, "\(error)")
        }
        switch tls.handshake() {
        case .done: break
        case .failed(let error):
            abandon()
            throw ClientError(.tls, "TLS handshake with \(config.host):\(config.port) failed: \(error)")
        default:
            abandon()
            throw ClientError(.tls, "TLS handshake with \(config.host):\(config.port) did not complete")
        }
        let first = try readLine()
        if let error = ClientError.fromReply(first) { throw error }
        guard case .hello? = Reply(line: first) else {
            throw ClientError(.protocolViolation, "unexpected greeting: \(first)")
        }
        greeting = first
    }

    /// Closes the socket of a connection whose set-up failed, at once rather than when the
    /// half-made object goes.
    private func abandon() {
        closed = true
        socket.take()?.close()
    }

    /// The TLS version and cipher negotiated, for display.
    public var tlsDescription: String { "\(tls.protocolVersion) \(tls.cipherName)" }
    public var sessionReused: Bool { tls.sessionReused }

    /// The user a client certificate authenticated, from the greeting.
    public var certificateUser: String? {
        guard case .hello(let user)? = Reply(line: greeting) else { return nil }
        return user
    }

    /// `AUTH user token`; throws the server's refusal.
    public func authenticate(user: String, token: String) throws(ClientError) {
        try writeLine("AUTH \(user) \(token)")
        let reply = try readLine()
        if let error = ClientError.fromReply(reply) { throw error }
        guard case .okAuth? = Reply(line: reply) else {
            throw ClientError(.protocolViolation, "unexpected reply: \(reply)")
        }
    }

    /// Sends one line and returns its reply line.
    public func request(_ line: String) throws(ClientError) -> String {
        try writeLine(line)
        return try readLine()
    }

    /// Writes `line` plus LF.
    public func writeLine(_ line: String) throws(ClientError) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        try writeRaw(bytes)
    }

    /// Writes bytes exactly as given (tests use this for malformed input).
    public func writeRaw(_ bytes: [UInt8]) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { tls.write(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            switch result {
            case .done(let n): offset += n
            case .wantRead, .wantWrite: continue  // blocking socket: only during key updates
            case .closed: throw ClientError(.closed, "server closed the connection")
            case .failed(let error): throw ClientError(.network, "write failed: \(error)")
            }
        }
    }

    /// Reads the next reply line (without its LF).
    public func readLine() throws(ClientError) -> String {
        while true {
            if let line = ready.popFirst() { return line }
            let result = readBuffer.withUnsafeMutableBytes { tls.read(into: $0) }
            switch result {
            case .done(let n):
                var tooLong = false
                readBuffer.withUnsafeBytes { bytes in
                    framer.feed(UnsafeRawBufferPointer(rebasing: bytes[0..<n])) { event in
                        switch event {
                        case .line(let line): ready.append(String(decoding: line, as: UTF8.self))
                        case .tooLong: tooLong = true
                        }
                        return !tooLong
                    }
                }
                if tooLong { throw ClientError(.protocolViolation, "reply line longer than 1 MiB") }
            case .wantRead, .wantWrite: continue
            case .closed: throw ClientError(.closed, "server closed the connection")
            case .failed(let error): throw ClientError(.network, "read failed: \(error)")
            }
        }
    }

    /// Sends `messages` as `MSG` lines keeping up to `window` unanswered, and returns each
    /// message's reply line in order. Stops early, returning what it has, if the server closes.
    public func sendMessages(_ messages: [String], window: Int) -> (replies: [String], error: ClientError?) {
        var replies: [String] = []
        replies.reserveCapacity(messages.count)
        var sent = 0
        var batch: [UInt8] = []
        do throws(ClientError) {
            while replies.count < messages.count {
                batch.removeAll(keepingCapacity: true)
                while sent < messages.count && sent - replies.count < max(1, window) {
                    batch.append(contentsOf: "MSG ".utf8)
                    batch.append(contentsOf: messages[sent].utf8)
                    batch.append(0x0A)
                    sent += 1
                }
                if !batch.isEmpty { try writeRaw(batch) }
                replies.append(try readLine())
            }
        } catch {
            return (replies, error)
        }
        return (replies, nil)
    }

    /// Sends QUIT, waits for BYE and closes.
    public func quit() {
        if let reply = try? request("QUIT"), Reply(line: reply) == .bye {
            _ = try? readLine()  // the server's close_notify: EOF
        }
        close()
    }

    /// Closes without ceremony.
    public func close() {
        guard !closed else { return }
        closed = true
        tls.shutdown()
        socket.take()?.close()
    }

    /// Closes with a TCP reset (tests of the server's resilience).
    public func reset() {
        guard !closed else { return }
        closed = true
        if let owned = socket.take() { Socket.close(owned, reset: true) }
    }
}
