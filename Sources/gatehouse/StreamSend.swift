import ArgumentParser
import GatehouseClient
import GatehouseProtocol
import GatehouseSystem

/// The messages of a stream send that the server has not acknowledged, in the order they were
/// taken from the input, handed to one connection's `PipelinedSender` after another.
///
/// Not thread-safe: used by the thread running the send.
final class StreamQueue: MessageSource {
    let input: any MessageSource
    /// Unacknowledged messages, oldest first; the first `handedOut` went to this connection.
    private(set) var unacked: [OutgoingMessage] = []
    private var handedOut = 0
    /// Stop taking new input (a transient refusal: reconnect and resend first).
    var holdInput = false

    init(_ input: any MessageSource) { self.input = input }

    var waitDescriptor: Int32? { holdInput || handedOut < unacked.count ? nil : input.waitDescriptor }
    func readAvailable() { input.readAvailable() }
    var isExhausted: Bool { handedOut == unacked.count && (holdInput || input.isExhausted) }

    func take(max: Int) -> [OutgoingMessage] {
        var out = Array(unacked[handedOut..<min(unacked.count, handedOut + max)])
        if out.count < max && !holdInput {
            let fresh = input.take(max: max - out.count)
            unacked.append(contentsOf: fresh)
            out.append(contentsOf: fresh)
        }
        handedOut += out.count
        return out
    }

    /// A new connection: everything unacknowledged goes out again, after dropping the first
    /// `stored` that the server holds already (they were sent and stored, their ACK lost).
    func restart(dropping stored: Int, refused: Set<Int>) {
        var kept: [OutgoingMessage] = []
        var toDrop = stored
        for (i, message) in unacked.enumerated() {
            // A message refused for a transient reason took no number: it is not among them.
            if toDrop > 0 && !refused.contains(i) {
                toDrop -= 1
                continue
            }
            kept.append(message)
        }
        unacked = kept
        handedOut = 0
        holdInput = false
    }

    /// The message at `index` of this connection's hand-outs is resolved (acknowledged, or
    /// refused for good): it leaves the queue. Indices of later ones shift down by one.
    func resolve(at index: Int) {
        unacked.remove(at: index)
        handedOut -= 1
    }
}

/// `gatehouse send --stream NAME`: sends through a stream (PROTOCOL.md, Streams), reconnecting
/// with exponential backoff and jitter when the connection breaks, and resending from the
/// stream's last stored number, so that each message is stored exactly once.
struct StreamSend {
    let name: String
    let connection: ConnectionOptions
    let window: Int
    let quiet: Bool
    let retryFor: Double
    /// `--file`: line k of the file (its k-th message) is message k of the stream, so a rerun
    /// skips what the stream holds.
    let fromFile: Bool

    func run(source: any MessageSource) throws {
        let queue = StreamQueue(source)
        let scratch = ReadScratch()
        let interrupt = InterruptEvent.install()
        var reconnects = 0
        var acknowledged = 0
        var refused = 0
        var highest: Int?  // the highest number acknowledged (or reported by OK STREAM)
        var attempt = 0
        var brokeAt: UInt64?
        // Messages refused for a transient reason on the last connection: the first `transient`
        // of the queue, which took no number.
        var transientCount = 0
        // One client for every reconnect, so that each offers the last TLS session (--no-resume: not).
        var client: GatehouseClient?
        while true {
            let session: OpenSession
            let last: Int
            do {
                session = try connection.openSession(scratch: scratch, requireAuth: true, client: client)
                client = session.client
                let timeoutMs = try connection.configuration().timeoutMs
                let reply = try session.connection.request(
                    "STREAM \(name)",
                    scratch: scratch,
                    timeoutMs: timeoutMs,
                    what: "STREAM reply"
                )
                if let error = ClientError.fromReply(reply),
                    error.isClosingNotice || error.kind == .server(.unavailable)
                {
                    session.connection.close()
                    // BUSY, SHUTTING_DOWN, or a store that cannot tell where the stream stands
                    // (its database is down): try again.
                    throw error
                }
                guard case .okStream(_, let n)? = Reply(line: reply) else {
                    Console.error("gatehouse: the server refused stream \(name): \(reply)")
                    throw ExitCode(ExitStatus.refused)
                }
                last = n
            } catch let error as ExitCode where error.rawValue == ExitStatus.connectFailed && brokeAt != nil {
                try wait(&attempt, since: brokeAt!)
                continue
            } catch let error as ClientError {
                brokeAt = brokeAt ?? Process.monotonicNanoseconds()
                Console.error("gatehouse: STREAM failed: \(error.message)")
                try wait(&attempt, since: brokeAt!)
                continue
            }
            if highest == nil && fromFile {
                try skip(last, of: queue.input)
            } else if let h = highest {
                guard last >= h else {
                    Console.error("gatehouse: stream \(name) holds \(last) messages, fewer than the \(h) acknowledged")
                    throw ExitCode(ExitStatus.refused)
                }
                queue.restart(dropping: last - h, refused: Set(0..<transientCount))
            }
            highest = last
            attempt = 0
            brokeAt = nil
            // One connection's send; transient refusals stop the input and end in a reconnect.
            var index = 0
            var transient = false
            let timeoutMs = (try? connection.configuration().timeoutMs) ?? 30_000
            let sender = PipelinedSender(window: window, replyTimeoutMs: max(timeoutMs, 1000), interruptFD: interrupt)
            let summary = sender.run(connection: session.connection, source: queue, scratch: scratch) {
                message,
                outcome in
                switch outcome {
                case .acknowledged(let n):
                    queue.resolve(at: index)
                    highest = n
                    acknowledged += 1
                    if !quiet { Console.out("ACK \(n)") }
                case .refused(let error):
                    switch error.kind {
                    case .server(.unavailable), .server(.rateLimited):
                        // Not stored, no number taken: resent on the next connection.
                        transient = true
                        queue.holdInput = true
                        index += 1
                    default:
                        queue.resolve(at: index)
                        refused += 1
                        Console.error("gatehouse: \(message.label) refused: \(error.message)")
                    }
                }
            }
            transientCount = index
            if let error = summary.connectionError {
                session.connection.close()
                if error.message == "interrupted" { throw ExitCode(130) }
                if case .server(.superseded) = error.kind {
                    Console.error("gatehouse: another connection took over stream \(name); stopping")
                    throw ExitCode(ExitStatus.interrupted)
                }
                Console.error("gatehouse: the connection broke (\(error.message)); reconnecting")
            } else if !transient {
                _ = try? session.connection.request("QUIT", scratch: scratch, timeoutMs: 2000, what: "BYE")
                session.connection.close()
                break
            } else {
                session.connection.close()
            }
            reconnects += 1
            brokeAt = Process.monotonicNanoseconds()
            try wait(&attempt, since: brokeAt!)
        }
        let summary =
            "stream \(name): \(acknowledged) acknowledged, \(refused) refused, last \(highest ?? 0), "
            + "\(reconnects) reconnects"
        if quiet { Console.out(summary) } else { Console.error("gatehouse: " + summary) }
        if refused > 0 { throw ExitCode(ExitStatus.refused) }
    }

    /// Sleeps before the next attempt: exponential from 50 ms, at most 5 s, with jitter (half to
    /// all of it), so that many clients cut at once do not come back at once. Gives up (exit 3)
    /// once `--retry-for` seconds have passed since the connection broke.
    private func wait(_ attempt: inout Int, since broke: UInt64) throws {
        let elapsed = Double(Process.monotonicNanoseconds() - broke) / 1e9
        guard elapsed < retryFor else {
            Console.error("gatehouse: stream \(name): no connection within --retry-for \(retryFor) s; giving up")
            throw ExitCode(ExitStatus.interrupted)
        }
        let delay = min(5.0, 0.05 * Double(1 << min(attempt, 10))) * Double.random(in: 0.5...1.0)
        attempt += 1
        GatehouseSystem.Process.sleep(seconds: min(delay, max(0, retryFor - elapsed)))
    }

    /// A rerun with `--file`: the stream holds its first `count` messages already.
    private func skip(_ count: Int, of input: any MessageSource) throws {
        var skipped = 0
        while skipped < count {
            let got = input.take(max: count - skipped)
            skipped += got.count
            if got.isEmpty {
                if input.isExhausted {
                    Console.error(
                        "gatehouse: stream \(name) holds \(count) messages but the file has only \(skipped): "
                            + "was the file changed? nothing sent"
                    )
                    throw ExitCode(ExitStatus.refused)
                }
                input.readAvailable()
            }
        }
    }
}
