import ArgumentParser
import GatehouseAuth
import GatehousePostgres
import GatehouseSystem

/// `--store`, `--postgresql` and friends: checked at start, one line per problem.
extension Serve {
    func validateStore() throws {
        guard ["journal", "postgresql"].contains(store) else {
            throw FlagRange.Error("--store must be journal or postgresql (got \(store))")
        }
        guard store == "postgresql" else { return }
        guard !postgresql.isEmpty else { throw FlagRange.Error("--store postgresql needs --postgresql URL") }
        var settings = PostgresSettings(conninfo: postgresql, node: "-")
        settings.table = postgresqlTable
        if let problem = settings.problem() { throw FlagRange.Error(problem) }
        guard nodeName.utf8.count <= 255 else { throw FlagRange.Error("--node-name must be at most 255 bytes") }
    }

    /// The PostgreSQL settings for `--store postgresql`, with the password file read (and
    /// checked private, like the tokens file); nil for the journal.
    func postgresSettings() throws -> PostgresSettings? {
        guard store == "postgresql" else { return nil }
        var settings = PostgresSettings(conninfo: postgresql, node: nodeName.isEmpty ? Serve.hostName() : nodeName)
        settings.table = postgresqlTable
        if !postgresqlPasswordFile.isEmpty {
            let bytes: [UInt8]
            do {
                bytes = try SecretFile.read(
                    postgresqlPasswordFile,
                    what: "password file",
                    allowGroupRead: allowGroupRead
                )
            } catch { throw CleanExit.message("gatehouse-server: \(error.message)", code: 1) }
            // The first line, as psql's and pgpass's users expect; a trailing newline is not part of it.
            let line = bytes.split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false).first ?? []
            let text = String(decoding: line, as: UTF8.self)
            settings.password = text.hasSuffix("\r") ? String(text.dropLast()) : text
        }
        return settings
    }

    static func hostName() -> String {
        GatehouseSystem.Process.hostName ?? "localhost"
    }
}
