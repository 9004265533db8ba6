public import GatehouseSystem

/// Where accepted messages go: the local journal (`Journal`) or a shared database (the
/// PostgreSQL store). The workers see only this surface.
///
/// The contract, for every store: `submit` never blocks on I/O; each submitted batch comes back
/// exactly once through the store's completion handler with `outcome` `.stored` (durable under
/// the store's rules: flushed, or committed) or `.failed` (answered `ERR UNAVAILABLE`); and
/// `isSaturated` turns true before the store holds more than its bounds, and while it cannot
/// store anything at all, so that workers stop reading instead of queueing without end.
public protocol MessageStore: AnyObject, Sendable {
    /// Hands a filled batch to the store's own thread. Any thread; never blocks on I/O.
    func submit(_ batch: JournalBatch)
    /// Whether workers should stop reading from clients now. Any thread.
    var isSaturated: Bool { get }
    /// Whether they should with `pendingBytes` more (a batch not yet submitted). Any thread.
    func isSaturated(adding pendingBytes: Int) -> Bool
    /// SIGHUP: reopen files by path (the journal), or nothing (a database).
    func reopen()
    /// Stores (or fails) what is queued, stops the store's thread and waits for it.
    func shutdown()
    /// Messages stored, group commits (flushes or transactions) and failed groups so far.
    var statistics: (records: Int, flushes: Int, failures: Int) { get }
    /// Record bytes queued or being stored now, for /metrics. Any thread.
    var queuedByteCount: Int { get }
    /// Seconds one group took to store (journal: write and flush; database: its transaction).
    var flushSeconds: FixedHistogram { get }
    /// Messages per group stored (group commit), for /metrics.
    var batchMessages: FixedHistogram { get }
    /// The highest number of `key` the store holds (0 for a new stream) if it can tell at once,
    /// without I/O (the journal keeps every stream's number in memory); nil when only the
    /// store's thread can tell (`lookUpStreamLast`). Any thread.
    func streamLastNow(_ key: StreamKey) -> UInt64?
    /// Asks the store's thread for the highest number of `key`: `answer` runs once, on that
    /// thread (or at once, for a store that knows), with the number, or nil when the store cannot
    /// tell now (the database is unavailable). Any thread; never blocks on I/O.
    func lookUpStreamLast(_ key: StreamKey, answer: @escaping @Sendable (UInt64?) -> Void)
    /// Whether `key` may be opened (the store remembers it, or has room for one more).
    func canOpenStream(_ key: StreamKey) -> Bool
}

extension Journal: MessageStore {
    public func streamLastNow(_ key: StreamKey) -> UInt64? { streamLast(key) }
    public func lookUpStreamLast(_ key: StreamKey, answer: @escaping @Sendable (UInt64?) -> Void) {
        answer(streamLast(key))
    }
}

extension JournalBatch {
    /// For stores outside this module: records the batch's outcome before its completion.
    public func finish(_ outcome: Outcome, firstID: UInt64 = 0) {
        self.outcome = outcome
        self.firstID = firstID
    }

    /// Each record to write as a JSON object (`{"time":…,"user":…,"peer":…,"conn":N,"n":N,`
    /// and for a stream record `"stream":…,"seq":N,` then `"text":…}`), appended to `out`, each
    /// after a comma unless `out` is empty or ends with `[`: the tails already hold the fields
    /// JSON-encoded, so a store that takes JSON needs no second encoding of the text. A stream
    /// record that `StreamDecision` found a duplicate or refused is left out. Returns how many
    /// records it appended.
    @discardableResult
    public func appendRecordObjects(to out: inout [UInt8]) -> Int {
        var start = 0
        var appended = 0
        for (i, end) in ends.enumerated() {
            if !results.isEmpty && results[i] != .written {
                start = end
                continue
            }
            appended += 1
            if let last = out.last, last != 0x5B { out.append(0x2C) }
            out.append(0x7B)  // '{' in place of the tail's leading ','
            tails.withUnsafeBytes { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[(start + 1)..<end])) }
            out.append(0x7D)
            start = end
        }
        return appended
    }
}
