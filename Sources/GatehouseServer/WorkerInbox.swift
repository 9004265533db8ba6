import GatehouseJournal
import GatehouseSystem
import Synchronization

/// What other threads hand a worker: journal completions and commands. Posting signals the
/// worker's eventfd, which wakes its epoll loop.
final class WorkerInbox: Sendable {
    enum Command: Sendable {
        /// Stop accepting, finish what was read, say SHUTTING_DOWN, close everything.
        case drain
        /// Close everything now and leave the loop.
        case stop
        /// Another connection took this connection's stream: ERR SUPERSEDED and close.
        case supersede(token: UInt64)
        /// Every earlier holder of this connection's stream released it: answer its STREAM.
        case streamReady(token: UInt64)
        /// The store's answer to this connection's STREAM: the stream's last number, or nil
        /// when the store cannot tell now.
        case streamLast(token: UInt64, last: UInt64?)
    }

    private struct Content {
        var batches: [JournalBatch] = []
        var commands: [Command] = []
    }

    private let content = Mutex(Content())
    /// The worker's eventfd, owned here: it lives as long as anyone can post.
    let wake: OwnedFD
    var wakeFD: Int32 { wake.raw }

    init(wake: consuming OwnedFD) {
        self.wake = wake
    }

    func post(batches: [JournalBatch]) {
        content.withLock { $0.batches.append(contentsOf: batches) }
        EventFD.signal(wakeFD)
    }

    func post(_ command: Command) {
        content.withLock { $0.commands.append(command) }
        EventFD.signal(wakeFD)
    }

    /// Takes everything posted so far.
    func take() -> (batches: [JournalBatch], commands: [Command]) {
        content.withLock { c in
            defer {
                c.batches.removeAll(keepingCapacity: true)
                c.commands.removeAll()
            }
            return (c.batches, c.commands)
        }
    }
}
