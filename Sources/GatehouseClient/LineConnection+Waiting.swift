import GatehouseProtocol
import GatehouseSystem

/// A read buffer lent to `LineConnection.drive`: one per thread, not one per connection.
///
/// Not thread-safe: belongs to the thread that made it.
public final class ReadScratch {
    public let buffer: UnsafeMutableRawBufferPointer

    public init(size: Int = 16 * 1024) {
        buffer = .allocate(byteCount: size, alignment: 16)
    }

    deinit { buffer.deallocate() }
}

/// The outcome of one `pump`.
public enum PumpOutcome {
    /// The socket or a watched descriptor was ready, and was served; look at the lines.
    case ready
    /// Nothing happened before the timeout.
    case timedOut
    /// The connection ended: nil when the server closed it cleanly, else why.
    case ended(ClientError?)
}

extension LineConnection {
    /// Waits up to `timeoutMs` (-1: forever) for the socket or any of `watch` to be ready, then
    /// drives the connection once. Watched descriptors found readable go in `readyWatched`.
    ///
    /// > Warning: blocks in poll(2) for up to `timeoutMs`.
    public func pump(
        lines: inout [String],
        scratch: ReadScratch,
        timeoutMs: Int32,
        watch: [Int32] = [],
        readyWatched: inout [Int32]
    ) -> PumpOutcome {
        var fds = [(fd: fd, events: Poll.readable | (wantsWrite ? Poll.writable : 0))]
        for w in watch { fds.append((w, Poll.readable)) }
        let ready: [Int16]
        do { ready = try Poll.wait(fds, timeoutMs: timeoutMs) } catch {
            return .ended(ClientError(.network, "\(error)"))
        }
        if ready.allSatisfy({ $0 == 0 }) { return .timedOut }
        for (index, revents) in ready.enumerated().dropFirst() where revents != 0 { readyWatched.append(fds[index].fd) }
        if ready[0] != 0 {
            if case .ended(let error) = drive(lines: &lines, scratch: scratch.buffer) { return .ended(error) }
        }
        return .ready
    }

    /// Drives until at least one line has arrived (appended to `lines`) or `timeoutMs` passes.
    ///
    /// > Warning: blocks for up to `timeoutMs`.
    public func waitForLine(
        _ lines: inout [String],
        scratch: ReadScratch,
        timeoutMs: Int,
        what: String
    )
        throws(ClientError)
    {
        let deadline = Process.monotonicNanoseconds() + UInt64(timeoutMs) * 1_000_000
        // Drive once first: queued bytes go out, and lines already decrypted are collected.
        if case .ended(let error) = drive(lines: &lines, scratch: scratch.buffer) {
            if !lines.isEmpty { return }
            throw error ?? ClientError(.closed, "the server closed the connection while waiting for \(what)")
        }
        var ignored: [Int32] = []
        while lines.isEmpty {
            let now = Process.monotonicNanoseconds()
            guard now < deadline else { throw ClientError(.timeout, "no \(what) within \(timeoutMs) ms") }
            let left = Int32(clamping: (deadline - now) / 1_000_000 + 1)
            switch pump(lines: &lines, scratch: scratch, timeoutMs: left, readyWatched: &ignored) {
            case .ready, .timedOut: continue
            case .ended(let error):
                if !lines.isEmpty { return }
                throw error ?? ClientError(.closed, "the server closed the connection while waiting for \(what)")
            }
        }
    }

    /// Sends `line` and returns the one reply line (no other request may be outstanding).
    ///
    /// > Warning: blocks for up to `timeoutMs`.
    public func request(
        _ line: String,
        scratch: ReadScratch,
        timeoutMs: Int,
        what: String
    ) throws(ClientError)
        -> String
    {
        queueLine(line)
        var lines: [String] = []
        try waitForLine(&lines, scratch: scratch, timeoutMs: timeoutMs, what: what)
        return lines[0]
    }

    /// `AUTH user token`, waiting for `OK AUTH`; throws the server's refusal as `.server(code)`.
    ///
    /// > Warning: blocks for up to `timeoutMs`.
    public func authenticate(user: String, token: String, scratch: ReadScratch, timeoutMs: Int) throws(ClientError) {
        let reply = try request("AUTH \(user) \(token)", scratch: scratch, timeoutMs: timeoutMs, what: "AUTH reply")
        if let error = ClientError.fromReply(reply) { throw error }
        guard case .okAuth? = Reply(line: reply) else {
            throw ClientError(.protocolViolation, "unexpected reply to AUTH: \(reply)")
        }
    }
}
