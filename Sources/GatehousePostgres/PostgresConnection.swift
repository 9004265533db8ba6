import CLibPQ
import GatehouseSystem

#if canImport(Glibc)
import Glibc
#endif

/// Why talking to PostgreSQL failed, in one line for the log (libpq's message, trimmed).
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The statement's SQLSTATE when the server refused it (`23505`: a unique key), else nil.
    public var sqlState: String?
    public init(_ message: String, sqlState: String? = nil) {
        self.message = message
        self.sqlState = sqlState
    }
    public var description: String { message }
}

/// One libpq connection, used only by the store's thread (`PGconn` is not thread-safe).
///
/// Every call that waits on the server waits with a deadline (poll on the connection's socket
/// in non-blocking mode), so a database that stops answering without closing the connection
/// (a cut network) costs one timeout, not a hung store.
final class PostgresConnection {
    private var conn: OpaquePointer?

    /// Connects with libpq's `PQconnectdbParams`: `conninfo` is a connection string or URL
    /// (expanded as `dbname`), `password` (from a 0600 file) is added after it, and the other
    /// parameters come before it, so that the operator's string can override them.
    init(conninfo: String, password: String?, applicationName: String) throws(PostgresError) {
        var pairs: [(String, String)] = [
            ("application_name", applicationName),
            // libpq's defaults wait forever on a silent network: bound the connect, and let TCP
            // keepalives find a dead peer while the connection idles.
            ("connect_timeout", "5"),
            ("keepalives_idle", "15"), ("keepalives_interval", "5"), ("keepalives_count", "3"),
            ("dbname", conninfo),
        ]
        if let password { pairs.append(("password", password)) }
        let keys = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            for key in keys { free(key) }
            for value in values { free(value) }
        }
        let k = keys.map { UnsafePointer<CChar>($0) } + [nil]
        let v = values.map { UnsafePointer<CChar>($0) } + [nil]
        conn = PQconnectdbParams(k, v, 1)
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let why = PostgresConnection.message(conn)
            PQfinish(conn)
            self.conn = nil
            throw PostgresError(why)
        }
        PQsetnonblocking(conn, 1)
    }

    deinit { PQfinish(conn) }

    /// Whether libpq still considers the connection usable.
    var isOK: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The connection's socket, for polling while idle (-1 when closed).
    var socket: Int32 { conn.map { PQsocket($0) } ?? -1 }

    /// Reads whatever the server sent while the connection idled (a shutdown notice, an EOF);
    /// false when the connection is gone.
    func consumeIdleInput() -> Bool {
        guard let conn else { return false }
        if PQconsumeInput(conn) == 0 { return false }
        while let notice = PQnotifies(conn) { PQfreemem(notice) }
        return PQstatus(conn) == CONNECTION_OK
    }

    /// Runs `sql` (one or more statements, simple-query protocol) and checks every result.
    func execute(_ sql: String, timeoutMs: Int) throws(PostgresError) {
        guard let conn else { throw PostgresError("not connected") }
        guard PQsendQuery(conn, sql) == 1 else { throw PostgresError(PostgresConnection.message(conn)) }
        try finish(timeoutMs: timeoutMs)
    }

    /// Prepares `sql` as the named statement `name`.
    func prepare(_ name: String, _ sql: String, timeoutMs: Int) throws(PostgresError) {
        guard let conn else { throw PostgresError("not connected") }
        guard PQsendPrepare(conn, name, sql, 0, nil) == 1 else { throw PostgresError(PostgresConnection.message(conn)) }
        try finish(timeoutMs: timeoutMs)
    }

    /// Runs the prepared statement `name` with text parameters; returns the rows it affected.
    /// In autocommit, one statement is one transaction: its result arrives after its COMMIT.
    @discardableResult
    func run(_ name: String, _ parameters: [[UInt8]], timeoutMs: Int) throws(PostgresError) -> Int {
        try send(name, parameters)
        return try finish(timeoutMs: timeoutMs)
    }

    /// Runs the prepared query `name` with text parameters; returns its rows, each a column's
    /// text or nil for NULL.
    func query(_ name: String, _ parameters: [[UInt8]], timeoutMs: Int) throws(PostgresError) -> [[String?]] {
        try send(name, parameters)
        var rows: [[String?]] = []
        try finish(timeoutMs: timeoutMs) { result in
            for r in 0..<PQntuples(result) {
                rows.append(
                    (0..<PQnfields(result)).map { c in
                        PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c))
                    }
                )
            }
        }
        return rows
    }

    private func send(_ name: String, _ parameters: [[UInt8]]) throws(PostgresError) {
        guard let conn else { throw PostgresError("not connected") }
        // Text parameters must be NUL-terminated; the copies are the price of libpq's C API.
        let buffers = parameters.map { p -> UnsafeMutablePointer<CChar> in
            let b = UnsafeMutablePointer<CChar>.allocate(capacity: p.count + 1)
            p.withUnsafeBytes { raw in
                raw.withMemoryRebound(to: CChar.self) { b.initialize(from: $0.baseAddress!, count: p.count) }
            }
            b[p.count] = 0
            return b
        }
        defer { for buffer in buffers { buffer.deallocate() } }
        let values = buffers.map { UnsafePointer<CChar>($0) as UnsafePointer<CChar>? }
        let sent = PQsendQueryPrepared(conn, name, Int32(values.count), values, nil, nil, 0)
        guard sent == 1 else { throw PostgresError(PostgresConnection.message(conn)) }
    }

    /// Flushes what was sent, then collects every result, within `timeoutMs` in all; `tuples`
    /// sees each result that returned rows. Returns the rows affected (the last command's count).
    @discardableResult
    private func finish(timeoutMs: Int, tuples: (OpaquePointer) -> Void = { _ in }) throws(PostgresError) -> Int {
        guard let conn else { throw PostgresError("not connected") }
        let deadline = PostgresConnection.nowMs() + timeoutMs
        while true {
            let r = PQflush(conn)
            if r == 0 { break }
            if r < 0 { throw PostgresError(PostgresConnection.message(conn)) }
            try wait(conn, events: Poll.readable | Poll.writable, deadline: deadline)
            if PQconsumeInput(conn) == 0 { throw PostgresError(PostgresConnection.message(conn)) }
        }
        var failure: PostgresError?
        var rows = 0
        while true {
            while PQisBusy(conn) == 1 {
                try wait(conn, events: Poll.readable, deadline: deadline)
                if PQconsumeInput(conn) == 0 { throw PostgresError(PostgresConnection.message(conn)) }
            }
            guard let result = PQgetResult(conn) else { break }
            switch PQresultStatus(result) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                rows = Int(String(cString: PQcmdTuples(result))) ?? 0
                if PQresultStatus(result) == PGRES_TUPLES_OK { tuples(result) }
            default:
                if failure == nil {
                    // PG_DIAG_SQLSTATE is the character constant 'C', which Swift does not import.
                    let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
                    failure = PostgresError(PostgresConnection.trim(PQresultErrorMessage(result)), sqlState: state)
                }
            }
            PQclear(result)
        }
        if let failure { throw failure }
        return rows
    }

    private func wait(_ conn: OpaquePointer, events: Int16, deadline: Int) throws(PostgresError) {
        let left = deadline - PostgresConnection.nowMs()
        guard left > 0 else { throw PostgresError("no answer from the database within the timeout") }
        do { _ = try Poll.wait([(fd: PQsocket(conn), events: events)], timeoutMs: Int32(clamping: left)) } catch {
            throw PostgresError("\(error)")
        }
    }

    static func message(_ conn: OpaquePointer?) -> String {
        guard let conn else { return "out of memory" }
        return trim(PQerrorMessage(conn))
    }

    static func trim(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "unknown error" }
        let s = String(cString: text)
        // libpq's messages end with a newline and may span lines; the log wants one.
        let line = s.split(whereSeparator: \.isNewline).joined(separator: " ")
        return line.isEmpty ? "unknown error" : line
    }

    static func nowMs() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }
}
