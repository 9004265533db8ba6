public import Foundation

/// A throwaway PostgreSQL cluster (Debian's, from /usr/lib/postgresql/*/bin) in a temporary
/// folder, on a free loopback port, its unix socket in that folder. PostgreSQL refuses to run as
/// root: as root the cluster runs as the system user `gatehouse-pg` (created if missing).
/// The superuser `gatehouse` needs a password over TCP (scram) and none over the unix socket,
/// which `query` uses. Stopped and removed by `stop()`, on deinit, or (SIGKILL) when the test
/// process exits or crashes, like `ServerProcess`.
public final class PostgresCluster: @unchecked Sendable {
    public let folder: String
    public let port: Int
    public let password: String
    public static let user = "gatehouse"
    private static let systemUser = "gatehouse-pg"
    private let lock = NSLock()
    private var process: Process?

    /// Whether Debian's PostgreSQL is installed (`.ci/run` installs it).
    public static var binDirectory: String? {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }.map { "\(root)/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: "\($0)/postgres") }
    }

    public init() throws {
        guard let bin = Self.binDirectory else { throw TestSupportError("PostgreSQL is not installed") }
        var template = Array("/tmp/gatehouse-pg.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp failed")
        }
        folder = String(cString: made)
        password = "pw-" + UUID().uuidString
        port = try Self.freePort()
        let pwfile = folder + "/pwfile"
        try Data(password.utf8).write(to: URL(fileURLWithPath: pwfile))
        if geteuid() == 0 {
            try Self.ensureSystemUser()
            _ = try ProcessRunner.run("/bin/chown", ["-R", Self.systemUser, folder])
        }
        let initdb = try ProcessRunner.run(
            Self.asUser[0],
            Array(Self.asUser.dropFirst()) + [
                "\(bin)/initdb", "-D", folder + "/data", "-U", Self.user, "--pwfile", pwfile,
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8",
            ],
            timeout: 120
        )
        guard initdb.status == 0 else { throw TestSupportError("initdb failed: \(initdb.stderr)") }
        try start()
    }

    /// The command prefix that runs a program as the cluster's user (empty when not root).
    private static var asUser: [String] {
        geteuid() == 0
            ? ["/usr/bin/setpriv", "--reuid=\(systemUser)", "--regid=\(systemUser)", "--init-groups", "--"]
            : ["/usr/bin/env"]
    }

    /// A libpq URL for the server to use over TCP, without the password.
    public var url: String { "postgresql://\(Self.user)@127.0.0.1:\(port)/postgres" }

    /// Starts the postmaster (again, on the same port and data) and waits until it accepts.
    public func start() throws {
        guard let bin = Self.binDirectory else { throw TestSupportError("PostgreSQL is not installed") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.asUser[0])
        // fsync off: the tests kill the gatehouse server and restart PostgreSQL cleanly or by
        // crash recovery, never the machine; flushing would only load a shared test machine.
        p.arguments =
            Array(Self.asUser.dropFirst()) + [
                "\(bin)/postgres", "-D", folder + "/data", "-p", "\(port)", "-k", folder,
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_buffers=16MB",
                "-c", "max_connections=40",
            ]
        let log = folder + "/postgres.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        lock.withLock { process = p }
        ChildProcesses.register(p.processIdentifier)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if (try? query("SELECT 1")) == "1" { return }
            guard p.isRunning else { throw TestSupportError("postgres exited: \(logText)") }
            usleep(50_000)
        }
        throw TestSupportError("postgres did not accept connections within 60 s")
    }

    /// Stops the postmaster: fast shutdown (SIGINT: clients disconnected, checkpoint), or
    /// immediate (SIGQUIT: a crash, recovered from the WAL at the next start). Waits for it.
    public func stop(immediate: Bool = false) {
        guard let p = lock.withLock({ process }) else { return }
        if p.isRunning {
            kill(p.processIdentifier, immediate ? SIGQUIT : SIGINT)
            let deadline = Date().addingTimeInterval(30)
            while p.isRunning && Date() < deadline { usleep(10_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        ChildProcesses.unregister(p.processIdentifier)
        lock.withLock { process = nil }
    }

    public var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }
    public var logText: String { (try? String(contentsOfFile: folder + "/postgres.log", encoding: .utf8)) ?? "" }

    /// Runs `sql` with psql over the unix socket; its output, unaligned, tuples only.
    public func query(_ sql: String) throws -> String {
        let result = try ProcessRunner.run(
            "/usr/bin/psql",
            [
                "-h", folder, "-p", "\(port)", "-U", Self.user, "-d", "postgres", "-X", "-At", "-v", "ON_ERROR_STOP=1",
                "-c", sql,
            ],
            timeout: 60
        )
        guard result.status == 0 else { throw TestSupportError("psql: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit {
        stop(immediate: true)
        try? FileManager.default.removeItem(atPath: folder)
    }

    private static func ensureSystemUser() throws {
        if getpwnam(systemUser) != nil { return }
        let r = try ProcessRunner.run(
            "/usr/sbin/useradd",
            ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", systemUser]
        )
        // Another test process may have created it meanwhile.
        guard r.status == 0 || getpwnam(systemUser) != nil else { throw TestSupportError("useradd: \(r.stderr)") }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                guard bind(fd, p, len) == 0 else { return -1 }
                return getsockname(fd, p, &len)
            }
        }
        guard bound == 0 else { throw TestSupportError("bind failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
