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
/// Workers `submit` batches as to the journal. The store thread takes every batch waiting (up
/// to `maxGroupBytes`), sends them as one `INSERT … SELECT FROM json_to_recordset($1)` and
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
        var sleeping = false
        var stopping = false
    }

    private let queue = Mutex(Queue())
    private let wakeFD: Int32
    private let thread = Mutex<OSThread?>(nil)
    private let table: String
    private let completion: @Sendable ([JournalBatch]) -> Void
    private let events: @Sendable (PostgresEvent) -> Void

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
        events: @escaping @Sendable (PostgresEvent) -> Void = { _ in },
        completion: @escaping @Sendable ([JournalBatch]) -> Void
    ) throws(PostgresError) {
        if let problem = settings.problem() { throw PostgresError(problem) }
        self.settings = settings
        self.table = PostgresSettings.quotedTable(settings.table)!
        self.maxQueuedRecords = max(1, maxQueuedRecords)
        self.maxQueuedBytes = max(1, maxQueuedBytes)
        self.maxGroupBytes = max(1, maxGroupBytes)
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
        let wake = queue.withLock { q -> Bool in
            q.batches.append(batch)
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
            let (batches, stopping) = take(wait: connection == nil ? backoffMs : -1, socket: connection?.socket)
            guard let live = connection else {
                // Down: what is queued cannot be stored now; answer it rather than hold it.
                if !batches.isEmpty { complete(batches, .failed("database unavailable")) }
                if stopping { return }
                backoffMs = min(settings.maxBackoffMs, backoffMs * 2)
                continue
            }
            if batches.isEmpty {
                if stopping { return }
                // Woken by the socket while idle: a server shutting down says so first.
                if !live.consumeIdleInput() { lose(&connection, &isDown, "the database closed the connection") }
                continue
            }
            store(batches, on: live)
            if !live.isOK { lose(&connection, &isDown, "connection lost during a transaction") }
            if stopping && queue.withLock({ $0.batches.isEmpty }) { return }
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
        try c.prepare("gh_insert", PostgresSettings.insertSQL(table), timeoutMs: settings.timeoutMs)
        return c
    }

    /// Takes the queued batches, up to `maxGroupBytes` (at least one); when there are none,
    /// sleeps until a submit, `socket` readable, or `wait` ms (-1: no limit) pass.
    private func take(wait: Int, socket: Int32?) -> ([JournalBatch], Bool) {
        let (batches, stopping) = takeNow()
        if !batches.isEmpty || stopping { return (batches, stopping) }
        var fds = [(fd: wakeFD, events: Poll.readable)]
        if let socket, socket >= 0 { fds.append((fd: socket, events: Poll.readable)) }
        // A failed poll (EBADF, ENOMEM) must not spin: it counts as a wake-up after a pause.
        if (try? Poll.wait(fds, timeoutMs: Int32(clamping: wait))) == nil { usleep(10_000) }
        EventFD.drain(wakeFD)
        queue.withLock { $0.sleeping = false }
        return takeNow()
    }

    private func takeNow() -> ([JournalBatch], Bool) {
        queue.withLock { q -> ([JournalBatch], Bool) in
            var bytes = 0
            var count = 0
            while count < q.batches.count && (count == 0 || bytes + q.batches[count].byteCount <= maxGroupBytes) {
                bytes += q.batches[count].byteCount
                count += 1
            }
            let out = Array(q.batches.prefix(count))
            q.batches.removeFirst(count)
            if out.isEmpty && !q.stopping { q.sleeping = true }
            return (out, q.stopping)
        }
    }

    private func store(_ batches: [JournalBatch], on connection: PostgresConnection) {
        var json: [UInt8] = [0x5B]
        json.reserveCapacity(batches.reduce(2) { $0 + $1.byteCount + 2 * $1.count })
        var records = 0
        for batch in batches {
            batch.appendRecordObjects(to: &json)
            records += batch.count
        }
        json.append(0x5D)
        do throws(PostgresError) {
            let started = Process.monotonicNanoseconds()
            let rows = try connection.run(
                "gh_insert",
                [json, Array(settings.node.utf8)],
                timeoutMs: settings.timeoutMs
            )
            flushSeconds.observe(Double(Process.monotonicNanoseconds() &- started) / 1e9)
            batchMessages.observe(Double(records))
            guard rows == records else {
                throw PostgresError("inserted \(rows) rows for \(records) messages")
            }
            transactions.add(1, ordering: .relaxed)
            recordsStored.add(records, ordering: .relaxed)
            complete(batches, .stored)
        } catch {
            // With the connection gone the store logs the outage itself; a statement error on a
            // working connection is logged here.
            if connection.isOK { events(.statementFailed(error.message)) }
            complete(batches, .failed(error.message))
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

extension PostgresStore {
    /// Not yet: the table has the (user, stream, seq) key, but the store does not answer a
    /// stream's last number or skip numbers it holds, so `STREAM` is refused with this store.
    public var supportsStreams: Bool { false }
    public func streamLast(_ key: StreamKey) -> UInt64 { 0 }
    public func canOpenStream(_ key: StreamKey) -> Bool { false }
}
