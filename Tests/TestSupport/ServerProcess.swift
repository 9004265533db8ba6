public import Foundation

/// The real `gatehouse-server` binary, run as a child process on a free port with its own
/// certificates, tokens file and journal in a temporary folder. Killed by `stop()` or on deinit.
public final class ServerProcess: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let pki: TestPKI
    public let tokensFile: String
    public let journalFile: String
    public let logFile: String
    public private(set) var port: Int = 0
    /// The address the server listens on (`127.0.0.1` unless the test asked for another).
    public let host: String
    /// Tokens issued by `start`, by user.
    public private(set) var tokens: [String: String] = [:]
    /// Variables added to the server's environment at each `start` (e.g. `LD_PRELOAD`).
    public var environment: [String: String] = [:]
    // Tests read `pid` from helper threads (a killer thread) while `start` replaces the process:
    // the lock is what makes `@unchecked Sendable` true (ThreadSanitizer found the race).
    private let processLock = NSLock()
    private var currentProcess: Process?
    private var process: Process? {
        get { processLock.withLock { currentProcess } }
        set { processLock.withLock { currentProcess = newValue } }
    }

    /// Makes certificates (with client certificates for `clients`), issues a token for each of
    /// `users`, starts the server with `arguments` and waits until it listens.
    public init(
        users: [String] = ["alice"],
        clients: [String] = [],
        arguments: [String] = [],
        pki reuse: TestPKI? = nil,
        host: String = "127.0.0.1",
        environment: [String: String] = [:]
    ) throws {
        self.host = host
        self.environment = environment
        directory = try TemporaryDirectory(prefix: "gatehouse-server")
        pki =
            try reuse ?? TestPKI.make(in: directory.file("pki"), extraArguments: clients.flatMap { ["--client", $0] })
        tokensFile = directory.file("tokens")
        journalFile = directory.file("journal.jsonl")
        logFile = directory.file("server.log")
        for user in users { tokens[user] = try issueToken(user) }
        try start(arguments)
    }

    /// `gatehouse-server token add USER --tokens FILE`, returning the printed token.
    public func issueToken(_ user: String) throws -> String {
        let result = try ProcessRunner.run(Repository.serverBinary, ["token", "add", user, "--tokens", tokensFile])
        guard result.status == 0 else { throw TestSupportError("token add failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts (or restarts, on the same files) the server and waits for its "listening" line.
    public func start(_ arguments: [String] = [], port fixedPort: Int? = nil) throws {
        stop()  // never leave an earlier instance running
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Repository.serverBinary)
        process.arguments =
            [
                "serve", "--host", host, "--port", String(fixedPort ?? 0), "--cert", pki.serverCertificate,
                "--key", pki.serverKey, "--tokens", tokensFile, "--journal", journalFile,
            ] + arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let before = (try? String(contentsOfFile: logFile, encoding: .utf8))?.count ?? 0
        try process.run()
        self.process = process
        ChildProcesses.register(process.processIdentifier)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            let fresh = String(text.dropFirst(before))
            // `address=HOST:PORT` in text logs, `"address":"HOST:PORT"` in JSON logs.
            if let range = fresh.range(of: #"address("?[=:]"?)[^\s",]+:\d+"#, options: .regularExpression) {
                port = Int(fresh[range].split(separator: ":").last!)!
                return
            }
            if !process.isRunning {
                throw TestSupportError("server exited with \(process.terminationStatus): \(fresh)")
            }
            usleep(10_000)
        }
        stop()
        throw TestSupportError("server did not start listening within 30 s")
    }

    public var pid: Int32 { process?.processIdentifier ?? 0 }
    public var isRunning: Bool { process?.isRunning ?? false }
    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits up to `timeout` seconds for the exit; returns the exit status.
    @discardableResult
    public func signal(_ signal: Int32, waitUpTo timeout: TimeInterval = 15) -> Int32? {
        guard let process, process.isRunning else { return process?.terminationStatus }
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Waits up to `timeout` seconds for the server to exit by itself; its status, or nil.
    public func waitForExit(timeout: TimeInterval) -> Int32? {
        guard let process else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// SIGKILL and reap.
    public func stop() {
        guard let process else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        ChildProcesses.unregister(process.processIdentifier)
    }

    /// The journal's records, parsed.
    public func journalRecords() throws -> [[String: Any]] {
        let text = (try? String(contentsOfFile: journalFile, encoding: .utf8)) ?? ""
        return try text.split(separator: "\n").map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestSupportError("journal line is not an object: \(line)")
            }
            return object
        }
    }

    /// Resident memory of the server process in KiB (VmRSS).
    public func residentKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }

    deinit {
        stop()
    }
}

/// Every server a test started and has not stopped, killed when the test process exits, so
/// that no server outlives the test run even when a test forgets it, a suite fails midway, or the
/// test process crashes (a trap, a fatal signal): the signal handler only calls kill(2), which is
/// async-signal-safe, on a fixed table, then lets the signal take its usual course.
public enum ChildProcesses {
    private static let capacity = 4096
    nonisolated(unsafe) private static let table: UnsafeMutablePointer<Int32> = {
        let t = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        t.initialize(repeating: 0, count: capacity)
        return t
    }()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var installed = false

    static func register(_ pid: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if let free = (0..<capacity).first(where: { table[$0] == 0 }) { table[free] = pid }
        if !installed {
            installed = true
            atexit { ChildProcesses.killAll() }
            for sig in [SIGTRAP, SIGILL, SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGTERM, SIGINT] {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { sig in
                    ChildProcesses.killAll()
                    signal(sig, SIG_DFL)
                    raise(sig)
                }
                sigemptyset(&action.sa_mask)
                sigaction(sig, &action, nil)
            }
        }
    }

    static func unregister(_ pid: Int32) {
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<capacity where table[i] == pid { table[i] = 0 }
    }

    /// Kills every registered server. Async-signal-safe: no lock, no allocation.
    static func killAll() {
        for i in 0..<capacity where table[i] > 0 {
            kill(table[i], SIGKILL)
            table[i] = 0
        }
    }
}
