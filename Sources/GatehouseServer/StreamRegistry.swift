import GatehouseJournal

/// The open streams of all workers: which connection holds each stream, and how many
/// connections that held it still have messages in flight. Pure; `ServerShared` keeps it under
/// a mutex.
///
/// One connection per stream: `open` moves the stream to the new connection and names the old
/// one, which the caller tells to close (ERR SUPERSEDED). The new connection may be told where
/// the stream stands only once every earlier holder has released it (closed or superseded, with
/// no message in flight): then the journal's last number is exact. `release` says which waiting
/// connection that is.
struct StreamRegistry {
    /// A connection, by its worker and that worker's token for it.
    struct Holder: Hashable, Sendable {
        var worker: Int
        var token: UInt64
    }

    struct Entry: Equatable {
        /// The connection that opened the stream last; nil once it released it.
        var owner: Holder?
        /// Connections that opened the stream and have not released it (the owner included).
        var holders: Int
        /// The owner waits for the others to release the stream.
        var ownerWaiting: Bool
    }

    private(set) var entries: [StreamKey: Entry] = [:]

    /// `holder` opens `key`. `ready`: no other connection holds it, so the journal's last number
    /// is exact now; otherwise `holder` waits for a `release` to name it. `supersede`: the
    /// connection that held it, which must close.
    mutating func open(_ key: StreamKey, by holder: Holder) -> (ready: Bool, supersede: Holder?) {
        var entry = entries[key] ?? Entry(owner: nil, holders: 0, ownerWaiting: false)
        let previous = entry.owner
        entry.holders += 1
        entry.owner = holder
        entry.ownerWaiting = entry.holders > 1
        entries[key] = entry
        return (!entry.ownerWaiting, previous)
    }

    /// `holder` no longer holds `key` and has no message in flight. Returns the connection that
    /// may now be told where the stream stands, if one waits and the others are all done.
    mutating func release(_ key: StreamKey, by holder: Holder) -> Holder? {
        guard var entry = entries[key] else { return nil }
        entry.holders -= 1
        if entry.owner == holder {
            entry.owner = nil
            entry.ownerWaiting = false
        }
        if entry.holders <= 0 {
            entries[key] = nil
            return nil
        }
        var ready: Holder?
        if entry.holders == 1, entry.ownerWaiting, let owner = entry.owner {
            entry.ownerWaiting = false
            ready = owner
        }
        entries[key] = entry
        return ready
    }
}
