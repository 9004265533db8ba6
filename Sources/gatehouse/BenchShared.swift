import GatehouseClient
import GatehouseSystem
import GatehouseTLS
import Histogram
import Synchronization

/// What a bench run does, fixed before the workers start.
struct BenchPlan: Sendable {
    enum Mode: String, Sendable {
        case handshake, messages, idle
    }

    var mode: Mode
    var connections: Int
    var window: Int
    var payload: [UInt8]
    /// Total messages (messages mode) or handshakes (handshake mode); nil: run for `durationNs`.
    var count: Int?
    var durationNs: UInt64
    /// Idle mode: how long to hold the connections once all are up.
    var holdNs: UInt64
    var resume: Bool
    var user: String?
    var token: String?
    var timeoutMs: Int
    var threads: Int
    /// Handshakes a worker keeps in progress at once while opening (idle and messages modes).
    var openConcurrency: Int = 64
    /// Messages mode: each connection sends through a stream of its own (`STREAM`), named from
    /// this prefix, so the server's stream path (de-duplication, registry) is measured.
    var streamPrefix: String?
}

extension BenchPlan {
    /// What a bench client does after the server's greeting `HELLO gatehouse/1 ...`.
    enum GreetingAnswer {
        /// The greeting already names the user: a client certificate authenticated it.
        case authenticated
        /// Send this AUTH line.
        case send(String)
        case failed(ClientError)
    }

    func answer(greeting line: String) -> GreetingAnswer {
        guard line.hasPrefix("HELLO gatehouse/1") else {
            return .failed(ClientError(.protocolViolation, "unexpected greeting: \(line)"))
        }
        if line.split(separator: " ").count >= 4 { return .authenticated }
        guard let user, let token else { return .failed(ClientError(.configuration, "no token for AUTH")) }
        return .send("AUTH \(user) \(token)")
    }
}

/// The counters every worker updates as it goes, read by the progress line and the report.
///
/// Thread-safe: atomics and one mutex.
final class BenchShared: Sendable {
    let plan: BenchPlan
    let client: GatehouseClient
    let addresses: [SocketAddress]
    let completed = Atomic<Int>(0)  // handshakes or acknowledged messages
    let issued = Atomic<Int>(0)  // claims against plan.count
    let errors = Atomic<Int>(0)
    let established = Atomic<Int>(0)  // connections authenticated and open now
    let stop = Atomic<Bool>(false)
    let finishedWorkers = Atomic<Int>(0)
    /// Storm mode's messengers: which window latencies go to (`WorkerResult.windows`): 0 while
    /// the storm's clients connect, 1 in the quiet second before the drop, 2 during the storm.
    let latencyWindow = Atomic<Int>(0)
    let startNs = Process.monotonicNanoseconds()
    private let results = Mutex<[WorkerResult]>([])

    init(plan: BenchPlan, client: GatehouseClient, addresses: [SocketAddress]) {
        self.plan = plan
        self.client = client
        self.addresses = addresses
    }

    /// Claims one unit of work (a message or a handshake); false once the count is reached or
    /// the run is stopping.
    func claim() -> Bool {
        if stop.load(ordering: .relaxed) { return false }
        if let count = plan.count {
            return issued.wrappingAdd(1, ordering: .relaxed).newValue <= count
        }
        if Process.monotonicNanoseconds() - startNs >= plan.durationNs {
            stop.store(true, ordering: .relaxed)
            return false
        }
        return true
    }

    func deliver(_ result: WorkerResult) {
        results.withLock { $0.append(result) }
        finishedWorkers.wrappingAdd(1, ordering: .releasing)
    }

    var allResults: [WorkerResult] { results.withLock { $0 } }
}

/// One worker's tallies, merged into the report at the end.
struct WorkerResult: Sendable {
    /// Latency in microseconds: per message (send to ACK), per handshake (connect to greeting),
    /// or per connection (connect to OK AUTH) in idle mode.
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var completed = 0
    var resumed = 0
    var refused = 0
    /// Messages written whose connection broke before the reply: the server may have stored them.
    var unanswered = 0
    var connected = 0
    var heldAtEnd = 0
    /// Idle mode: nanoseconds from the start until this worker's connections were all open.
    var openingNs: UInt64 = 0
    var errors: [String: Int] = [:]
    var firstErrors: [String: String] = [:]
    /// Latency by `BenchShared.latencyWindow` (storm mode's messengers; unused elsewhere).
    var windows = [Histogram<UInt64>](
        repeating: Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three),
        count: 3
    )

    mutating func record(latencyNs: UInt64, window: Int = 0) {
        let micros = max(1, min(latencyNs / 1000, 120_000_000))
        _ = latency.record(micros)
        if window > 0 { _ = windows[window].record(micros) }
    }

    mutating func count(_ error: ClientError, shared: BenchShared) {
        errors[error.label, default: 0] += 1
        if firstErrors[error.label] == nil { firstErrors[error.label] = error.message }
        shared.errors.wrappingAdd(1, ordering: .relaxed)
    }
}

extension BenchShared {
    /// A new connection to the `n`-th address in turn, offering `session` if given.
    func connect(_ n: Int, session: TLSSession?) throws -> LineConnection {
        try LineConnection(
            address: addresses[n % addresses.count],
            context: client.context,
            serverName: client.serverName,
            verify: client.configuration.verify,
            session: session
        )
    }
}
