import GatehouseJournal
import Synchronization

/// What `/readyz` and `gatehouse_ready` answer from: whether the server drains, and whether its
/// store works (set by the journal's own events, from its thread).
final class ServerHealth: Sendable {
    let draining = Atomic<Bool>(false)
    let storeFailing = Atomic<Bool>(false)

    /// Follows the journal: failing from a failed write or flush until it writes again.
    func record(_ event: JournalEvent) {
        switch event {
        case .writeFailed, .syncFailed, .mayBeLost: storeFailing.store(true, ordering: .relaxed)
        case .recovered, .setAside: storeFailing.store(false, ordering: .relaxed)
        default: break
        }
    }

    /// nil when ready to take clients; else the reason, for `/readyz`'s body.
    func notReady(openConnections: Int, maxConnections: Int) -> String? {
        if draining.load(ordering: .relaxed) { return "draining" }
        if storeFailing.load(ordering: .relaxed) { return "the store is failing" }
        if openConnections >= maxConnections { return "at the connection limit (\(maxConnections))" }
        return nil
    }
}
