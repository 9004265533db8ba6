public import GatehouseJournal

/// Streams with the PostgreSQL store (PROTOCOL.md, Streams). The table is the truth: its unique
/// (user, stream, seq) key stores each stream message once, whichever instance sends it, and a
/// stream's last number is `max(seq)` through that key's index. The store thread remembers the
/// numbers it has seen (`StreamLasts`) only as lower bounds, which stay true whatever other
/// instances write, so that a stream's next message costs no extra query.
extension PostgresStore {
    /// Nothing known without the database: a worker always asks the store thread.
    public func streamLastNow(_ key: StreamKey) -> UInt64? { nil }

    public func lookUpStreamLast(_ key: StreamKey, answer: @escaping @Sendable (UInt64?) -> Void) {
        enqueue { $0.lookups.append(StreamLookup(key: key, answer: answer)) }
    }

    /// A database holds any number of streams; the store thread bounds what it remembers.
    public func canOpenStream(_ key: StreamKey) -> Bool { true }

    // MARK: the store thread

    /// Answers `STREAM`s: one query for every stream asked about, read from the table (another
    /// instance may have stored more since this one last looked). nil when the query fails.
    func lookUp(_ lookups: [StreamLookup], on connection: PostgresConnection, known: inout StreamLasts) {
        do throws(PostgresError) {
            let lasts = try lastNumbers(of: Set(lookups.map(\.key)), on: connection)
            for (key, last) in lasts { known.set(key, last) }
            for lookup in lookups { lookup.answer(lasts[lookup.key] ?? 0) }
        } catch {
            if connection.isOK { events(.statementFailed("stream lookup: \(error.message)")) }
            for lookup in lookups { lookup.answer(nil) }
        }
    }

    /// Decides the group's stream records from what this thread knows; a record that would be
    /// refused for a gap may only look like one (another instance stored the numbers between),
    /// so its stream is read from the table and the group decided again. Returns the streams'
    /// last numbers once the group is stored.
    func decideStreams(
        _ batches: [JournalBatch],
        on connection: PostgresConnection,
        known: inout StreamLasts
    ) throws(PostgresError) -> [StreamKey: UInt64] {
        guard batches.contains(where: { !$0.streamRecords.isEmpty }) else { return [:] }
        let first = StreamDecision.decide(batches) { known[$0] }
        let unsure = StreamDecision.refusedStreams(batches)
        guard !unsure.isEmpty else { return first }
        for (key, last) in try lastNumbers(of: unsure, on: connection) { known.set(key, last) }
        return StreamDecision.decide(batches) { known[$0] }
    }

    /// Each stream's highest stored number (0 when it has none), from the table.
    func lastNumbers(
        of keys: Set<StreamKey>,
        on connection: PostgresConnection
    ) throws(PostgresError)
        -> [StreamKey: UInt64]
    {
        let rows = try connection.query("gh_last", [StreamLasts.keysJSON(keys)], timeoutMs: settings.timeoutMs)
        var lasts: [StreamKey: UInt64] = [:]
        for row in rows {
            guard row.count == 3, let user = row[0], let name = row[1] else {
                throw PostgresError("unexpected row from the stream lookup")
            }
            guard let text = row[2] else {
                lasts[StreamKey(user: user, name: name)] = 0
                continue
            }
            guard let last = UInt64(text) else { throw PostgresError("stream lookup: not a number: \(text)") }
            lasts[StreamKey(user: user, name: name)] = last
        }
        guard lasts.count == keys.count else {
            throw PostgresError("stream lookup: \(lasts.count) rows for \(keys.count) streams")
        }
        return lasts
    }
}

/// A worker's question to the store thread: where does `key` stand?
struct StreamLookup: Sendable {
    let key: StreamKey
    let answer: @Sendable (UInt64?) -> Void
}

/// Each stream's last number as the store thread last saw it: a lower bound of the table's,
/// since rows are never deleted by the server. Bounded: past `limit` streams it starts over,
/// which costs queries, never correctness. Pure; owned by the store thread.
struct StreamLasts {
    let limit: Int
    private(set) var lasts: [StreamKey: UInt64] = [:]

    init(limit: Int) { self.limit = max(1, limit) }

    /// The last number known for `key`; 0 when none is.
    subscript(key: StreamKey) -> UInt64 { lasts[key] ?? 0 }

    /// `key` holds `seq` now (a commit): keeps the higher number.
    mutating func note(_ key: StreamKey, _ seq: UInt64) {
        guard seq > self[key] else { return }
        set(key, seq)
    }

    /// The table says `key` stands at `last`: taken as is, even if lower than what was known
    /// (an operator deleted rows), so that duplicates are judged by the table alone.
    mutating func set(_ key: StreamKey, _ last: UInt64) {
        if lasts[key] == nil && lasts.count >= limit { lasts.removeAll(keepingCapacity: true) }
        lasts[key] = last
    }

    /// `[{"user":…,"stream":…},…]`, the lookup's parameter.
    static func keysJSON(_ keys: Set<StreamKey>) -> [UInt8] {
        var out: [UInt8] = [0x5B]
        for key in keys {
            if out.count > 1 { out.append(0x2C) }
            out.append(contentsOf: #"{"user":""#.utf8)
            Array(key.user.utf8).withUnsafeBytes { JSON.appendEscaped($0, to: &out) }
            out.append(contentsOf: #"","stream":""#.utf8)
            Array(key.name.utf8).withUnsafeBytes { JSON.appendEscaped($0, to: &out) }
            out.append(contentsOf: #""}"#.utf8)
        }
        out.append(0x5D)
        return out
    }
}
