import GatehouseTLS

#if canImport(Glibc)
import Glibc
#endif

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
        var st = stat()
        if lstat(path, &st) != 0 && errno == ENOENT { return TokenStore() }
        return try load(path, allowGroupRead: allowGroupRead)
    }

    /// Writes the store atomically with mode 0600: a new temporary file beside `path` (created
    /// with `O_EXCL | O_NOFOLLOW`, so a planted file or symlink of that name is never written
    /// through), written, `fchmod`ed and `fsync`ed with every result checked, renamed over
    /// `path`, and the folder `fsync`ed so that the rename itself survives a crash.
    public static func save(_ store: TokenStore, to path: String) throws(AuthError) {
        let suffix = Crypto.randomBytes(6).map { String($0, radix: 16) }.joined()
        let temp = path + ".tmp." + suffix
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuthError("cannot create \(temp): \(String(cString: strerror(errno)))") }
        func fail(_ what: String) -> AuthError {
            let error = AuthError("cannot \(what) \(temp): \(String(cString: strerror(errno)))")
            close(fd)
            unlink(temp)
            return error
        }
        let bytes = Array(store.serialized().utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw fail("write") }
            written += n
        }
        // The umask may have taken bits away, never added any; fchmod makes the mode exact.
        guard fchmod(fd, 0o600) == 0 else { throw fail("chmod") }
        guard fsync(fd) == 0 else { throw fail("fsync") }
        guard close(fd) == 0 else {
            unlink(temp)
            throw AuthError("cannot close \(temp): \(String(cString: strerror(errno)))")
        }
        guard rename(temp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temp)
            throw AuthError("cannot replace \(path): \(why)")
        }
        try syncDirectory(of: path)
    }

    /// fsyncs the folder holding `path`, so that a rename into it is durable.
    static func syncDirectory(of path: String) throws(AuthError) {
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let fd = open(folder.isEmpty ? "/" : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw AuthError("cannot open folder \(folder): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw AuthError("cannot fsync folder \(folder): \(String(cString: strerror(errno)))")
        }
    }
}
