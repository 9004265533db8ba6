#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing the tokens file on disk, with the permissions a secret-bearing file needs.
///
/// > Warning: blocking file I/O. Call at start-up, on SIGHUP or from the token CLI, never on a worker.
public enum TokenFile {
    /// Loads the store from `path`. Refuses a file that other users can read or write.
    public static func load(_ path: String) throws(AuthError) -> TokenStore {
        try FilePermissions.requirePrivate(path, what: "tokens file")
        let text = try readAll(path)
        return try TokenStore(parsing: text, source: path)
    }

    /// Loads `path`, or an empty store if it does not exist yet.
    public static func loadOrEmpty(_ path: String) throws(AuthError) -> TokenStore {
        if access(path, F_OK) != 0 && errno == ENOENT { return TokenStore() }
        return try load(path)
    }

    /// Writes the store atomically (temporary file, fsync, rename) with mode 0600.
    public static func save(_ store: TokenStore, to path: String) throws(AuthError) {
        let temp = path + ".tmp.\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuthError("cannot write \(temp): \(String(cString: strerror(errno)))") }
        let bytes = Array(store.serialized().utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let why = String(cString: strerror(errno))
                close(fd)
                unlink(temp)
                throw AuthError("cannot write \(temp): \(why)")
            }
            written += n
        }
        fchmod(fd, 0o600)
        fsync(fd)
        close(fd)
        guard rename(temp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temp)
            throw AuthError("cannot replace \(path): \(why)")
        }
    }

    static func readAll(_ path: String) throws(AuthError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AuthError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw AuthError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            if out.count > 64 << 20 { throw AuthError("\(path) is larger than 64 MiB") }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Permission checks for files that hold secrets (private keys, token hashes).
public enum FilePermissions {
    /// Throws unless `path` exists and gives other users no access (no bits in `o=rwx`).
    public static func requirePrivate(_ path: String, what: String) throws(AuthError) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw AuthError("cannot open \(what) \(path): \(String(cString: strerror(errno)))")
        }
        if st.st_mode & 0o007 != 0 {
            throw AuthError(
                "\(what) \(path) is accessible to other users (mode \(String(st.st_mode & 0o777, radix: 8))); "
                    + "fix with: chmod 600 \(path)"
            )
        }
    }
}
