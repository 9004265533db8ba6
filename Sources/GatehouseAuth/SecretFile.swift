import GatehouseSystem

/// Reading files that hold secrets (the private key, token hashes, the client map) only when
/// nobody else can read or change them.
///
/// The checks run on the opened descriptor (`fstat`), not on the path, so the file checked is
/// the file read: a rename or symlink swap between a check and an open cannot slip another file
/// in. A symlink to the file is followed on purpose (certificate tools keep keys behind links);
/// what counts is the file it lands on.
///
/// > Warning: blocking file I/O. Call at start-up, on SIGHUP or from the token CLI, never on a worker.
public enum SecretFile {
    /// The whole file at `path`, at most 64 MiB. Refused unless it is a regular file owned by
    /// this process's user or by root, with no access for others and none for its group — or,
    /// with `allowGroupRead` (the operator's opt-in, e.g. Debian's `ssl-cert` group), group read
    /// only: a group that can write a tokens file can add a token for any user.
    public static func read(_ path: String, what: String, allowGroupRead: Bool) throws(AuthError) -> [UInt8] {
        try read(path, what: what) { st throws(AuthError) in
            try check(st, path: path, what: what, allowGroupRead: allowGroupRead)
        }
    }

    /// The whole file at `path`, for public material that decides who logs in (a JWKS): anyone
    /// may read it, but it must be a regular file owned by this process's user or by root that
    /// neither its group nor others can write. Checked on the open descriptor, like `read`.
    public static func readProtected(_ path: String, what: String) throws(AuthError) -> [UInt8] {
        try read(path, what: what) { st throws(AuthError) in
            try checkOwner(st, path: path, what: what)
            let mode = st.permissions
            guard mode & 0o022 == 0 else {
                throw AuthError(
                    .permissions,
                    "\(what) \(path) is writable by its group or other users (mode \(String(mode, radix: 8))); "
                        + "whoever can write it can log in as anyone; fix with: chmod go-w \(path)"
                )
            }
        }
    }

    private static func read(
        _ path: String,
        what: String,
        check: (FileStatus) throws(AuthError) -> Void
    ) throws(AuthError) -> [UInt8] {
        let fd: OwnedFD
        do { fd = try FileIO.openForReading(path) } catch {
            throw AuthError(.file, "cannot open \(what) \(path): \(error.reason)", cause: error)
        }
        let st: FileStatus
        do { st = try FileIO.status(fd.raw) } catch {
            throw AuthError(.file, "cannot stat \(what) \(path): \(error.reason)", cause: error)
        }
        guard st.isRegularFile else { throw AuthError(.permissions, "\(what) \(path) is not a regular file") }
        try check(st)
        let bytes: [UInt8]?
        do { bytes = try FileIO.readAll(fd.raw, limit: 64 << 20) } catch {
            throw AuthError(.file, "cannot read \(what) \(path): \(error)", cause: error)
        }
        guard let bytes else { throw AuthError(.file, "\(what) \(path) is larger than 64 MiB") }
        return bytes
    }

    private static func checkOwner(_ st: FileStatus, path: String, what: String) throws(AuthError) {
        let owner = st.owner
        let me = Process.effectiveUserID
        guard owner == me || owner == 0 else {
            throw AuthError(
                .permissions,
                "\(what) \(path) is owned by uid \(owner), not by this user (uid \(me)) or root; "
                    + "fix with: chown \(me) \(path)"
            )
        }
    }

    /// The rules of `read`, on a `stat` result.
    static func check(_ st: FileStatus, path: String, what: String, allowGroupRead: Bool) throws(AuthError) {
        guard st.isRegularFile else { throw AuthError(.permissions, "\(what) \(path) is not a regular file") }
        try checkOwner(st, path: path, what: what)
        let mode = st.permissions
        let forbidden: UInt32 = allowGroupRead ? 0o037 : 0o077
        guard mode & forbidden == 0 else {
            let fix = allowGroupRead ? "chmod 640" : "chmod 600"
            let who = mode & 0o007 != 0 ? "other users" : "its group"
            throw AuthError(
                .permissions,
                "\(what) \(path) is accessible to \(who) (mode \(String(mode, radix: 8))); fix with: \(fix) \(path)"
                    + (allowGroupRead || mode & 0o007 != 0 || mode & 0o030 != 0
                        ? "" : " (or allow group read with --allow-group-read)")
            )
        }
    }
}
