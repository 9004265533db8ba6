/// What becomes of each stream record of a group, given where each stream stands: the pure
/// core of exactly once (PROTOCOL.md, Streams), shared by the journal and the PostgreSQL store.
public enum StreamDecision {
    /// Sets `results` of each batch that holds stream records: a number at or below the stream's
    /// last is a duplicate (acknowledged, not written again), the next one is written, a later
    /// one is refused (one before it failed: writing it would leave a gap). `last` gives each
    /// stream's last stored number (0 for a new stream); a store may pass a lower bound, at the
    /// price of refusing what it would otherwise write. Returns each written stream's last
    /// number once the group is stored.
    @discardableResult
    public static func decide(_ batches: [JournalBatch], last: (StreamKey) -> UInt64) -> [StreamKey: UInt64] {
        var updates: [StreamKey: UInt64] = [:]
        for batch in batches where !batch.streamRecords.isEmpty {
            var results = [JournalBatch.RecordResult](repeating: .written, count: batch.count)
            // A batch is one connection's, so its records come in runs of one stream: where the
            // stream stands is looked up once a run, not hashed twice a record (that was most of
            // what a stream cost the journal per message).
            var run: StreamKey?
            var stands: UInt64 = 0
            var advanced = false
            for record in batch.streamRecords {
                if record.key != run {
                    if advanced, let run { updates[run] = stands }
                    run = record.key
                    stands = updates[record.key] ?? last(record.key)
                    advanced = false
                }
                if record.seq <= stands {
                    results[record.index] = .duplicate
                } else if record.seq == stands + 1 {
                    stands = record.seq
                    advanced = true
                } else {
                    results[record.index] = .refused
                }
            }
            if advanced, let run { updates[run] = stands }
            batch.results = results
        }
        return updates
    }

    /// The streams with a record refused in `batches`: the ones whose last number a store that
    /// passed a lower bound should look up before it refuses anything.
    public static func refusedStreams(_ batches: [JournalBatch]) -> Set<StreamKey> {
        var keys = Set<StreamKey>()
        for batch in batches where !batch.results.isEmpty {
            for record in batch.streamRecords where batch.results[record.index] == .refused { keys.insert(record.key) }
        }
        return keys
    }

    /// Stream records `decide` marked written, in all of `batches`.
    public static func writtenStreamRecords(_ batches: [JournalBatch]) -> Int {
        var count = 0
        for batch in batches where !batch.results.isEmpty {
            for record in batch.streamRecords where batch.results[record.index] == .written { count += 1 }
        }
        return count
    }
}
