import CLibPQ

/// How to reach the database and where to store messages (`--postgresql`, `--postgresql-table`).
public struct PostgresSettings: Sendable {
    /// A libpq connection string (`host=… dbname=…`) or URL (`postgresql://user@host/db`),
    /// without a password: `check()` refuses one.
    public var conninfo: String
    /// The password, read from a 0600 file by the caller (nil: libpq's own `PGPASSWORD`,
    /// `PGPASSFILE` or `~/.pgpass`). Never logged.
    public var password: String?
    /// The table, `name` or `schema.name`, created if missing.
    public var table: String = "gatehouse_messages"
    /// This instance's name in each row's `node` column (default: the host name).
    public var node: String
    /// A statement (connect, create, insert) that takes longer fails its messages.
    public var timeoutMs: Int = 30_000
    /// Reconnect attempts start this far apart and double up to `maxBackoffMs`.
    public var minBackoffMs: Int = 100
    public var maxBackoffMs: Int = 5_000

    public init(conninfo: String, node: String) {
        self.conninfo = conninfo
        self.node = node
    }

    /// Why the settings cannot work, in one line, or nil: the connection string must parse
    /// (libpq's parser) and carry no password (it would show in `ps` and in shell history),
    /// and the table must be a plain identifier, optionally schema-qualified.
    public func problem() -> String? {
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &error) else {
            let why = error.map { PostgresConnection.trim($0) } ?? "cannot parse"
            if let error { PQfreemem(error) }
            return "--postgresql: \(why)"
        }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            if String(cString: keyword) == "password", let value = option.pointee.val, value.pointee != 0 {
                return
                    "--postgresql must not contain a password (it would show in ps and shell history); use PGPASSFILE, PGPASSWORD or --postgresql-password-file"
            }
            option += 1
        }
        guard PostgresSettings.quotedTable(table) != nil else {
            return "--postgresql-table must be NAME or SCHEMA.NAME of letters, digits and _ (got \(table))"
        }
        return nil
    }

    /// `"schema"."name"` for SQL, or nil if `name` is not one or two identifiers of
    /// `[A-Za-z_][A-Za-z0-9_]*` (at most 63 bytes each, PostgreSQL's limit).
    static func quotedTable(_ name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return nil }
        for part in parts {
            guard let first = part.utf8.first, (1...63).contains(part.utf8.count) else { return nil }
            let isLetter = { (b: UInt8) in (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A || b == 0x5F }
            guard isLetter(first), part.utf8.allSatisfy({ isLetter($0) || (0x30...0x39).contains($0) }) else {
                return nil
            }
        }
        return parts.map { "\"\($0)\"" }.joined(separator: ".")
    }

    /// The table with every column, and the unique key that makes a resent stream message a
    /// conflict instead of a second row. `id` is a bigserial: the database hands out ids, so
    /// several instances never share one and a restarted instance never reuses one (sequences
    /// never go back, though a failed transaction leaves a gap). stream and seq stay NULL until
    /// streams exist, and NULLs never conflict.
    /// The advisory lock lets several instances start at once (concurrent CREATE TABLE IF NOT
    /// EXISTS can fail on the catalog's unique index); NOTICEs ("already exists") stay quiet.
    static func createSQL(_ table: String) -> String {
        """
        SET client_min_messages TO warning;
        BEGIN;
        SELECT pg_advisory_xact_lock(7250001);
        CREATE TABLE IF NOT EXISTS \(table) (
            id bigserial PRIMARY KEY,
            time timestamptz NOT NULL,
            "user" text NOT NULL,
            peer text NOT NULL,
            node text NOT NULL,
            conn bigint NOT NULL,
            n bigint NOT NULL,
            stream text,
            seq bigint,
            text text NOT NULL,
            UNIQUE ("user", stream, seq)
        );
        COMMIT;
        """
    }

    /// One statement per group: $1 is a JSON array of the group's records, as the journal
    /// encodes them; $2 the node. One statement in autocommit is one transaction. With `streams`
    /// (the group holds stream records), a stream record whose (user, stream, seq) is a row
    /// already (another instance stored it, or a transaction whose answer was lost did) is not
    /// inserted: the key stores it exactly once, and the affected-row count says how many were
    /// new.
    static func insertSQL(_ table: String, streams: Bool) -> String {
        """
        INSERT INTO \(table) (time, "user", peer, node, conn, n, stream, seq, text)
        SELECT r.time::timestamptz, r."user", r.peer, $2, r.conn, r.n, r.stream, r.seq, r.text
        FROM json_to_recordset($1::json)
            AS r(time text, "user" text, peer text, conn bigint, n bigint, stream text, seq bigint, text text)
        """ + (streams ? "\nON CONFLICT (\"user\", stream, seq) DO NOTHING" : "")
    }

    /// Each stream's highest stored number: $1 is a JSON array of `{"user":…,"stream":…}`; one
    /// row per stream (user, stream, max or NULL), each found through the unique key's index.
    static func streamLastSQL(_ table: String) -> String {
        """
        SELECT k."user", k.stream,
            (SELECT max(t.seq) FROM \(table) t WHERE t."user" = k."user" AND t.stream = k.stream)
        FROM json_to_recordset($1::json) AS k("user" text, stream text)
        """
    }
}
