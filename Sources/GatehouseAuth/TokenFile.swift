import GatehouseSystem
import GatehouseTLS

/// Reading and writing the tokens file on disk, with the permissions a secret-bearing file needs.
///
/// > Warning: blocking file I/O. Call at start-up, on SIGHUP or from the token CLI, never on a worker.
public enum TokenFile {
    /// Loads the store from `path`. Refuses a file that others may read or change (`SecretFile`).
    public static func load(_ path: String, allowGroupRead: Bool = false) throws(AuthError) -> TokenStore {
        let bytes = try SecretFile.read(path, what: "tokens file", allowGroupRead: allowGroupRead)
        return try TokenStore(parsing: String(decoding: bytes, as: UTF8.self), source: path)
    }

    /// Loads `path`, or an empty store if it does not exist yet.
    public static func loadOrEmpty(_ path: String, allowGroupRead: Bool = false) throws(AuthError) -> TokenStore {
        if FileIO.isMissing(path) { return TokenStore() }
        return try load(path, allowGroupRead: allowGroupRead)
    }

    /// Writes the store atomically with mode 0600 (`FileIO.replaceAtomically`: a new temporary
    /// file created with `O_EXCL | O_NOFOLLOW`, so a planted file or symlink of that name is never
    /// written through; `fchmod` and `fsync` checked; renamed over `path`; the folder fsynced so
    /// that the rename itself survives a crash).
    public static func save(_ store: TokenStore, to path: String) throws(AuthError) {
        do { try FileIO.replaceAtomically(path, with: Array(store.serialized().utf8), mode: 0o600) } catch {
            throw AuthError(.file, "cannot write \(path): \(error)", cause: error)
        }
    }
}
