import ArgumentParser
import GatehouseClient
import GatehouseSystem
import Synchronization

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load the server and report throughput and latency.",
        discussion: """
            Modes:
              handshake  full TLS handshakes/s (connect, handshake, greeting,
                         close) from --connections clients; --resume: resumed.
              messages   --connections authenticated connections, each keeping
                         --window messages of --size bytes unanswered, for
                         --duration seconds or --count messages in all.
                         Latency: from writing a MSG to reading its ACK.
              idle       opens --connections authenticated connections and
                         holds them --hold seconds (10,000 from one process).
              storm      a reconnect storm: --connections clients (default
                         1000) authenticate, then all drop their connections
                         at once and all reconnect at once (each offers its
                         own previous session with --resume); reports the
                         time until all are authenticated again, latency
                         (connect to OK AUTH) and errors by kind, and the
                         ACK latency of --messengers connections that keep
                         sending (window 1) before and during the storm;
                         --server-pid adds the server's CPU during it.
                         --duration bounds each phase (default 60 here).

            Latency percentiles come from an HdrHistogram. Errors are counted by kind (network, tls, timeout, closed, or the server's code). --json prints one JSON object instead of the text report. A progress line is shown only when standard output is a terminal. Exit status 1 when any error was counted.

            Examples:
              gatehouse bench handshake --duration 5
              gatehouse bench handshake --resume --connections 8 --count 20000
              gatehouse bench messages --connections 64 --window 16 --size 64 --duration 10
              gatehouse bench messages --count 100000 --json > result.json
              gatehouse bench idle --connections 10000 --hold 30
              gatehouse bench storm --connections 10000 --resume --server-pid 1234
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "handshake, messages, idle or storm.")
    var mode: String
    @Option(name: .shortAndLong, help: "Concurrent connections (default: handshake 4, messages 64, idle 1000).")
    var connections: Int?
    @Option(name: .shortAndLong, help: "Messages in flight per connection (messages mode).")
    var window: Int = 16
    @Option(name: .shortAndLong, help: "Message size in bytes (messages mode).")
    var size: Int = 64
    @Option(
        name: .shortAndLong,
        help: "Seconds to run when no --count is given (storm: bound of each phase, default 60)."
    )
    var duration: Double?
    @Option(name: [.customShort("n"), .long], help: "Total messages (messages mode) or handshakes (handshake mode).")
    var count: Int?
    @Option(help: "Seconds to hold the connections once all are open (idle mode).")
    var hold: Double = 5
    @Flag(help: "Resume TLS sessions (handshake and storm modes; these measure full handshakes without it).")
    var resume = false
    @Option(help: "Storm mode: established connections that keep sending during the storm.")
    var messengers: Int = 4
    @Option(
        name: .customLong("server-pid"),
        help: "Storm mode: the server's process id, to report its CPU (same machine)."
    )
    var serverPid: Int32?
    @Option(help: "Load-generating threads (default: one per core).")
    var threads: Int?
    @Flag(help: "Messages mode: send through one stream per connection (STREAM), to measure the stream path.")
    var streams = false
    @Flag(help: "Print one JSON object instead of the text report.")
    var json = false

    var benchMode: BenchPlan.Mode? { BenchPlan.Mode(rawValue: mode) }

    var isStorm: Bool { mode == "storm" }
    var seconds: Double { duration ?? (isStorm ? 60 : 10) }

    func validate() throws {
        if resume && connection.noResume { throw ValidationError("give --resume or --no-resume, not both") }
        if isStorm {
            if let connections, !(1...100_000).contains(connections) {
                throw ValidationError("--connections must be 1 to 100000")
            }
            guard (0...1000).contains(messengers) else { throw ValidationError("--messengers must be 0 to 1000") }
            guard seconds > 0 else { throw ValidationError("--duration must be positive") }
            if let serverPid, serverPid <= 0 { throw ValidationError("--server-pid must be a process id") }
            if streams { throw ValidationError("--streams applies to messages mode") }
            return
        }
        if serverPid != nil { throw ValidationError("--server-pid applies to storm mode") }
        guard let benchMode else { throw ValidationError("mode must be handshake, messages, idle or storm") }
        if let connections, !(1...100_000).contains(connections) {
            throw ValidationError("--connections must be 1 to 100000")
        }
        guard (1...100_000).contains(window) else { throw ValidationError("--window must be 1 to 100000") }
        guard (1...16 << 20).contains(size) else { throw ValidationError("--size must be 1 to 16777216") }
        guard seconds > 0, hold >= 0 else { throw ValidationError("--duration must be positive, --hold not negative") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be 1 to 256") }
        if resume && benchMode != .handshake { throw ValidationError("--resume applies to handshake and storm modes") }
        if streams && benchMode != .messages { throw ValidationError("--streams applies to messages mode") }
    }

    /// What every mode needs before it connects: descriptors for `connections` (`descriptors` in
    /// all), the client and the server's addresses, and the token (a credential, when
    /// `needsCredential`). Each failure is a one-line message and the connect-failed exit.
    func prepare(
        descriptors: Int,
        for connections: Int,
        needsCredential: Bool
    ) throws -> (ClientConfiguration, GatehouseClient, [SocketAddress], String?) {
        let limit = GatehouseSystem.Process.raiseDescriptorLimit()
        guard limit > descriptors else {
            Console.error(
                "gatehouse: --connections \(connections) needs more descriptors than the limit \(limit) (ulimit -n)"
            )
            throw ExitCode(ExitStatus.connectFailed)
        }
        let config = try connection.configuration(resume: resume)
        let client: GatehouseClient
        let addresses: [SocketAddress]
        do {
            client = try GatehouseClient(config)
            addresses = try client.resolve()
        } catch {
            Console.error("gatehouse: \(error.message)")
            throw ExitCode(ExitStatus.connectFailed)
        }
        let token = try connection.token()
        if needsCredential && token == nil && config.certificateFile == nil {
            Console.error("gatehouse: no token: set GATEHOUSE_TOKEN, or pass --token-file FILE")
            throw ExitCode(ExitStatus.connectFailed)
        }
        return (config, client, addresses, token)
    }

    func run() throws {
        GatehouseSystem.Process.ignoreSIGPIPE()
        if isStorm { return try runStorm() }
        let mode = benchMode!
        let connections = self.connections ?? [.handshake: 4, .messages: 64, .idle: 1000][mode]!
        let (config, client, addresses, token) = try prepare(
            descriptors: connections + 32,
            for: connections,
            needsCredential: mode != .handshake
        )
        let threadCount = min(connections, threads ?? GatehouseSystem.Process.processorCount)
        var payload = Array("MSG ".utf8)
        let body = Array("bench-".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: max(0, size - 6))
        payload.append(contentsOf: body.prefix(size))
        let plan = BenchPlan(
            mode: mode,
            connections: connections,
            window: window,
            payload: payload,
            count: count,
            durationNs: UInt64(seconds * 1e9),
            holdNs: UInt64(hold * 1e9),
            resume: resume,
            user: connection.resolvedUser,
            token: token,
            timeoutMs: config.timeoutMs,
            threads: threadCount,
            openConcurrency: mode == .handshake ? connections : 64,
            streamPrefix: streams
                ? "bench-\(GatehouseSystem.Process.id)-\(GatehouseSystem.Process.monotonicNanoseconds() % 1_000_000_000)"
                : nil
        )
        let shared = BenchShared(plan: plan, client: client, addresses: addresses)

        var workers: [OSThread] = []
        for t in 0..<threadCount {
            let share = connections / threadCount + (t < connections % threadCount ? 1 : 0)
            workers.append(
                OSThread(name: "bench-\(t)") {
                    do {
                        try BenchWorker(shared: shared, connections: share).run()
                    } catch {
                        Console.error("gatehouse: worker \(t) failed: \(error)")
                        shared.deliver(WorkerResult())
                    }
                }
            )
        }
        let progress = BenchProgress(shared: shared, enabled: Console.stdoutIsTerminal && !json)
        while shared.finishedWorkers.load(ordering: .acquiring) < threadCount {
            GatehouseSystem.Process.sleep(seconds: 0.1)
            progress.tick()
        }
        let elapsedNs = GatehouseSystem.Process.monotonicNanoseconds() - shared.startNs
        for worker in workers { worker.join() }
        progress.clear()
        let report = BenchReport(plan: plan, results: shared.allResults, elapsedNs: elapsedNs)
        Console.out(json ? report.json() : report.text())
        if report.errorTotal > 0 { throw ExitCode(1) }
    }
}
