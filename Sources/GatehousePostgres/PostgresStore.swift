public import GatehouseJournal
public import GatehouseSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Something the store did that an operator should see in the log: once per outage, once when
/// it ends, not once per message.
public enum PostgresEvent: Sendable, Equatable {
    /// Connected, and the table exists (created if it did not).
    case connected(table: String)
    /// The database cannot be reached or a transaction failed with the connection: messages are
    /// answered ERR UNAVAILABLE and reading stops until it is back. Logged once per outage.
    case down(String)
    /// A statement failed on a working connection (the group is answered ERR UNAVAILABLE).
    case statementFailed(String)
}

/// The PostgreSQL store: one thread, one libpq connection, one transaction per group.
///
/// Workers `submit` batches as to the journal, and ask where a stream stands with
/// `lookUpStreamLast` (answered from the table, on the store's thread: `PostgresStore+Streams`).
/// The store thread takes every batch waiting (up to `maxGroupBytes`), sends them as one `INSERT … SELECT FROM json_to_recordset($1)` and
/// waits for its result: the result of an autocommit statement arrives after its COMMIT, so the
/// batches are `.stored` only then. A statement that fails, or a connection lost before the
/// result, fails the group (`ERR UNAVAILABLE`, never `ACK`): it may or may not have committed,
/// and the client must resend. While the database is unreachable the store is saturated (so
/// workers stop reading) and fails what is queued at once; it reconnects with backoff.
public final class PostgresStore: MessageStore {
    public let settings: PostgresSettings
    public let maxQueuedRecords: Int
    public let maxQueuedBytes: Int
    /// Record bytes sent in one statement at most; the rest waits for the next.
    public let maxGroupBytes: Int

    struct Queue {
        var batches: [JournalBatch] = []
        var lookups: [StreamLookup] = []
        var sleeping = false
        var stopping = false
    }

    private let queue = Mutex(Queue())
    private let wakeFD: Int32
    private let thread = Mutex<OSThread?>(nil)
    private let table: String
    private let completion: @Sendable ([JournalBatch]) -> Void
    let events: @Sendable (PostgresEvent) -> Void

    private let queued = Atomic<Int>(0)
    private let queuedBytes = Atomic<Int>(0)
    private let available = Atomic<Bool>(false)
    private let recordsStored = Atomic<Int>(0)
    private let transactions = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)
    private let outages = Atomic<Int>(0)
    /// Seconds one transaction took, from sending its statement to its result (store thread).
    public let flushSeconds = FixedHistogram(bounds: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
    ])
    /// Streams remembered by the store thread at most (`StreamLasts`).
    public let maxKnownStreams: Int
    /// Rows per transaction (group commit).
    public let batchMessages = FixedHistogram(bounds: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000])

    /// Record bytes queued or being stored now. Any thread.
    public var queuedByteCount: Int { queuedBytes.load(ordering: .relaxed) }

    /// Checks the settings and starts the store's thread, which connects in the background:
    /// the server starts while the database is down, and stays saturated until it is up.
    public init(
        settings: PostgresSettings,
        maxQueuedRecords: Int = 1 << 16,
        maxQueuedBytes: Int = 64 << 20,
        maxGroupBytes: Int = 4 << 20,
        maxKnownStreams: Int = 100_000,
        events: @escaping @Sendable (PostgresEvent) -> Void = { _ in },
        completion: @escaping @Sendable ([JournalBatch]) -> Void
    ) throws(PostgresError) {
        if let problem = settings.problem() { throw PostgresError(problem) }
        self.settings = settings
        self.table = PostgresSettings.quotedTable(settings.table)!
        self.maxQueuedRecords = max(1, maxQueuedRecords)
        self.maxQueuedBytes = max(1, maxQueuedBytes)
        self.maxGroupBytes = max(1, maxGroupBytes)
        self.maxKnownStreams = max(1, maxKnownStreams)
        self.completion = completion
        self.events = events
        do { wakeFD = try EventFD.create().release() } catch { throw PostgresError("\(error)") }
        thread.withLock { $0 = OSThread(name: "gh-postgres") { [self] in self.run() } }
    }

    deinit { close(wakeFD) }

    /// Whether the store can take messages now: connected, with its table.
    public var isAvailable: Bool { available.load(ordering: .relaxed) }

    public var isSaturated: Bool { isSaturated(adding: 0) }

    public func isSaturated(adding pendingBytes: Int) -> Bool {
        !available.load(ordering: .relaxed) || queued.load(ordering: .relaxed) >= maxQueuedRecords
            || queuedBytes.load(ordering: .relaxed) + pendingBytes >= maxQueuedBytes
    }

    public var statistics: (records: Int, flushes: Int, failures: Int) {
        (
            recordsStored.load(ordering: .relaxed), transactions.load(ordering: .relaxed),
            failures.load(ordering: .relaxed)
        )
    }

    /// Times the connection was lost or could not be made after having worked (or at start).
    public var outageCount: Int { outages.load(ordering: .relaxed) }

    public func submit(_ batch: JournalBatch) {
        queued.add(batch.count, ordering: .relaxed)
        queuedBytes.add(batch.byteCount, ordering: .relaxed)
        enqueue { $0.batches.append(batch) }
    }

    /// Adds work to the queue and wakes the store thread if it sleeps.
    func enqueue(_ add: (inout Queue) -> Void) {
        let wake = queue.withLock { q -> Bool in
            add(&q)
            defer { q.sleeping = false }
            return q.sleeping
        }
        if wake { EventFD.signal(wakeFD) }
    }

    /// Nothing to reopen: the database is reached by name on every reconnect.
    public func reopen() {}

    public func shutdown() {
        queue.withLock { $0.stopping = true }
        EventFD.signal(wakeFD)
        thread.takeAndJoin()
    }

    // MARK: the store thread

    private func run() {
        var connection: PostgresConnection?
        var backoffMs = settings.minBackoffMs
        var isDown = false
        // Each stream's last number as far as this thread knows: a lower bound of the table's.
        var known = StreamLasts(limit: maxKnownStreams)
        while true {
            if connection == nil {
                do {
                    connection = try connect()
                    backoffMs = settings.minBackoffMs
                    isDown = false
                    available.store(true, ordering: .relaxed)
                    events(.connected(table: settings.table))
                } catch {
                    if !isDown {
                        isDown = true
                        outages.add(1, ordering: .relaxed)
                        events(.down(error.message))
                    }
                }
            }
            let work = take(wait: connection == nil ? backoffMs : -1, socket: connection?.socket)
            guard let live = connection else {
                // Down: what is queued cannot be stored now; answer it rather than hold it.
                if !work.batches.isEmpty { complete(work.batches, .failed("database unavailable")) }
                for lookup in work.lookups { lookup.answer(nil) }
                if work.stopping { return }
                backoffMs = min(settings.maxBackoffMs, backoffMs * 2)
                continue
            }
            if work.batches.isEmpty && work.lookups.isEmpty {
                if work.stopping { return }
                // Woken by the socket while idle: a server shutting down says so first.
                if !live.consumeIdleInput() { lose(&connection, &isDown, "the database closed the connection") }
                continue
            }
            if !work.batches.isEmpty { store(work.batches, on: live, known: &known) }
            if !work.lookups.isEmpty { lookUp(work.lookups, on: live, known: &known) }
            if !live.isOK { lose(&connection, &isDown, "connection lost during a transaction") }
            if work.stopping && queue.withLock({ $0.batches.isEmpty && $0.lookups.isEmpty }) { return }
        }
    }

    private func lose(_ connection: inout PostgresConnection?, _ isDown: inout Bool, _ why: String) {
        connection = nil
        available.store(false, ordering: .relaxed)
        isDown = true
        outages.add(1, ordering: .relaxed)
        events(.down(why))
    }

    private func connect() throws(PostgresError) -> PostgresConnection {
        let c = try PostgresConnection(
            conninfo: settings.conninfo,
            password: settings.password,
            applicationName: "gatehouse \(settings.node)"
        )
        try c.execute(PostgresSettings.createSQL(table), timeoutMs: settings.timeoutMs)
        try c.prepare("gh_insert", PostgresSettings.insertSQL(table, streams: false), timeoutMs: settings.timeoutMs)
        try c.prepare(
            "gh_insert_streams",
            PostgresSettings.insertSQL(table, streams: true),
            timeoutMs: settings.timeoutMs
        )
        try c.prepare("gh_last", PostgresSettings.streamLastSQL(table), timeoutMs: settings.timeoutMs)
        return c
    }

    /// What the store thread takes from the queue at once.
    struct Work {
        var batches: [JournalBatch]
        var lookups: [StreamLookup]
        var stopping: Bool
    }

    /// Takes the queued batches, up to `maxGroupBytes` (at least one), and every lookup; when
    /// there are none, sleeps until a submit, `socket` readable, or `wait` ms (-1: no limit) pass.
    private func take(wait: Int, socket: Int32?) -> Work {
        let work = takeNow()
        if !work.batches.isEmpty || !work.lookups.isEmpty || work.stopping { return work }
        var fds = [(fd: wakeFD, events: Poll.readable)]
        if let socket, socket >= 0 { fds.append((fd: socket, events: Poll.readable)) }
        // A failed poll (EBADF, ENOMEM) must not spin: it counts as a wake-up after a pause.
        if (try? Poll.wait(fds, timeoutMs: Int32(clamping: wait))) == nil { usleep(10_000) }
        EventFD.drain(wakeFD)
        queue.withLock { $0.sleeping = false }
        return takeNow()
    }

    private func takeNow() -> Work {
        queue.withLock { q -> Work in
            var bytes = 0
            var count = 0
            while count < q.batches.count && (count == 0 || bytes + q.batches[count].byteCount <= maxGroupBytes) {
                bytes += q.batches[count].byteCount
                count += 1
            }
            let out = Array(q.batches.prefix(count))
            q.batches.removeFirst(count)
            let lookups = q.lookups
            q.lookups.removeAll()
            if out.isEmpty && lookups.isEmpty && !q.stopping { q.sleeping = true }
            return Work(batches: out, lookups: lookups, stopping: q.stopping)
        }
    }

    /// Stores a group in one statement. Stream records are decided first (`StreamDecision`):
    /// a duplicate is not sent, a gap is refused, and the unique key settles the rest.
    private func store(_ batches: [JournalBatch], on connection: PostgresConnection, known: inout StreamLasts) {
        do throws(PostgresError) {
            let started = Process.monotonicNanoseconds()
            let updates = try decideStreams(batches, on: connection, known: &known)
            var json: [UInt8] = [0x5B]
            json.reserveCapacity(batches.reduce(2) { $0 + $1.byteCount + 2 * $1.count })
            var sent = 0
            for batch in batches { sent += batch.appendRecordObjects(to: &json) }
            json.append(0x5D)
            let streamed = StreamDecision.writtenStreamRecords(batches)
            var rows = 0
            // Every record a duplicate or refused: nothing to insert.
            if sent > 0 {
                rows = try insert(json, mayConflict: streamed > 0, on: connection)
                flushSeconds.observe(Double(Process.monotonicNanoseconds() &- started) / 1e9)
                batchMessages.observe(Double(sent))
                transactions.add(1, ordering: .relaxed)
            }
            // Fewer rows than records: stream records another transaction stored (the key).
            guard rows <= sent, rows >= sent - streamed else {
                throw PostgresError("inserted \(rows) rows for \(sent) messages")
            }
            recordsStored.add(rows, ordering: .relaxed)
            for (key, seq) in updates { known.note(key, seq) }
            complete(batches, .stored)
        } catch {
            // With the connection gone the store logs the outage itself; a statement error on a
            // working connection is logged here.
            if connection.isOK { events(.statementFailed(error.message)) }
            complete(batches, .failed(error.message))
        }
    }

    /// Inserts the group's rows; returns how many are new. A stream record rarely meets a row
    /// already there (another instance stored its number, or a COMMIT whose answer was lost did),
    /// so the plain statement goes first: `ON CONFLICT`'s speculative insertion costs the
    /// database about a third more per row. On a unique-key violation that statement stored
    /// nothing (one statement, one transaction), and the group goes again with `ON CONFLICT`.
    private func insert(
        _ json: [UInt8],
        mayConflict: Bool,
        on connection: PostgresConnection
    ) throws(PostgresError)
        -> Int
    {
        let parameters = [json, Array(settings.node.utf8)]
        do {
            return try connection.run("gh_insert", parameters, timeoutMs: settings.timeoutMs)
        } catch  where mayConflict && error.sqlState == "23505" && connection.isOK {
            return try connection.run("gh_insert_streams", parameters, timeoutMs: settings.timeoutMs)
        }
    }

    private func complete(_ batches: [JournalBatch], _ outcome: JournalBatch.Outcome) {
        var records = 0
        var bytes = 0
        for batch in batches {
            batch.finish(outcome)
            records += batch.count
            bytes += batch.byteCount
        }
        if case .failed = outcome { failures.add(1, ordering: .relaxed) }
        queued.subtract(records, ordering: .relaxed)
        queuedBytes.subtract(bytes, ordering: .relaxed)
        completion(batches)
    }
}
