import GatehouseClient
import GatehouseSystem
import GatehouseTLS
import Histogram

/// `gatehouse bench storm`: N authenticated clients all drop their connections at once and all
/// reconnect at once, while a few established "messenger" connections keep sending.
///
/// The drop is the client's (close_notify and close on every connection in one pass), not a
/// server restart: the server keeps its ticket keys, so `--resume` measures what a client that
/// kept its session gets, and the same run works against any server (the NIO baseline too).
/// A server restart would measure process start-up and, with per-process ticket keys, full
/// handshakes only.
///
/// One thread drives the storm's connections (its own epoll loop; a client's handshake CPU is
/// about the server's, so on a 2-core machine the client is part of what is measured: the
/// server's CPU per reconnect, read from /proc with `--server-pid`, is the cleaner figure).
/// The messengers run in a `BenchWorker` thread of their own, window 1, and their ACK latency is
/// kept apart for the quiet second before the drop and for the storm.
final class BenchStorm {
    private final class Slot {
        enum Phase { case idle, opening, authenticating, up }
        var connection: LineConnection?
        var phase = Phase.idle
        var startNs: UInt64 = 0
        var deadlineNs: UInt64 = 0
        /// The session of this client's last connection, offered on its reconnect (`--resume`).
        var session: TLSSession?
    }

    struct Outcome {
        var setupNs: UInt64 = 0
        var stormNs: UInt64 = 0
        var reconnected = 0
        var resumed = 0
        var complete = false
        /// Server CPU (user + system) during the storm, in clock ticks; nil without `--server-pid`.
        var serverTicks: Int?
        /// Connect to OK AUTH of each reconnect (µs).
        var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        var errors: [String: Int] = [:]
        var firstErrors: [String: String] = [:]
        var setupErrors = 0
    }

    private let shared: BenchShared
    private var plan: BenchPlan { shared.plan }
    private let serverPid: Int32?
    private let deadlineNs: UInt64
    private let epoll: OwnedFD
    private var slots: [Slot]
    private var toOpen: [Int] = []
    /// Clients that failed, with the time they try again (a real client backs off a little).
    private var retries: [(at: UInt64, index: Int)] = []
    private var opening = 0
    private var up = 0
    private var storming = false
    private var outcome = Outcome()
    private var lines: [String] = []
    private let scratch = ReadScratch()
    private var now: UInt64 = 0
    private let timeoutNs: UInt64
    private var nextAddress = 0

    /// `shared.plan.durationNs` bounds each phase (setup, storm).
    init(shared: BenchShared, serverPid: Int32?) throws(SystemError) {
        self.shared = shared
        self.serverPid = serverPid
        deadlineNs = shared.plan.durationNs
        epoll = try Epoll.create()
        slots = (0..<shared.plan.connections).map { _ in Slot() }
        timeoutNs = UInt64(shared.plan.timeoutMs) * 1_000_000
    }

    /// Connects every client (64 handshakes at a time), waits `quietNs`, drops all and
    /// reconnects all at once; returns what it saw. `messengers.latencyWindow` is told which
    /// phase is on.
    func run(quietNs: UInt64, messengers: BenchShared) -> Outcome {
        let begin = Process.monotonicNanoseconds()
        toOpen = Array((0..<slots.count).reversed())
        guard pump(concurrency: plan.openConcurrency, since: begin) else {
            closeAll()
            return outcome
        }
        outcome.setupNs = Process.monotonicNanoseconds() - begin
        messengers.latencyWindow.store(1, ordering: .relaxed)
        Process.sleep(seconds: Double(quietNs) / 1e9)

        // The storm: every connection closed in one pass, then every client reconnects at once.
        messengers.latencyWindow.store(2, ordering: .relaxed)
        let cpuBefore = serverPid.flatMap(Self.cpuTicks)
        let start = Process.monotonicNanoseconds()
        storming = true
        closeAll()
        toOpen = Array((0..<slots.count).reversed())
        outcome.complete = pump(concurrency: slots.count, since: start)
        outcome.stormNs = Process.monotonicNanoseconds() - start
        if let cpuBefore, let cpuAfter = serverPid.flatMap(Self.cpuTicks) { outcome.serverTicks = cpuAfter - cpuBefore }
        messengers.latencyWindow.store(0, ordering: .relaxed)
        closeAll()
        return outcome
    }

    /// User + system clock ticks of process `pid` (/proc/PID/stat fields 14 and 15).
    static func cpuTicks(_ pid: Int32) -> Int? {
        guard let bytes = try? FileIO.readFile("/proc/\(pid)/stat", limit: 4096).bytes else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    // MARK: the loop

    /// Handshake steps per turn of the loop (see `pump`): about 10 ms of client CPU.
    static let handshakesPerTurn = 24

    /// Runs until every slot is up (true) or `deadlineNs` after `since` passed (false).
    private func pump(concurrency: Int, since: UInt64) -> Bool {
        let ready = EpollEvents(capacity: 1024)
        let data = ready.data
        var lastSweep: UInt64 = 0
        now = Process.monotonicNanoseconds()
        startOpening(concurrency)
        while up < slots.count {
            if now - since > deadlineNs { return false }
            let n = (try? ready.wait(on: epoll.raw, timeoutMs: 50)) ?? 0
            now = Process.monotonicNanoseconds()
            // One thread plays ten thousand clients, so it rations the one costly step, taking
            // the server's flight (a key exchange and a certificate check): at most
            // `handshakesPerTurn` a turn; the sockets left over stay ready and come back in a
            // later wait. Everything else goes at once: a ClientHello (the server's clock runs
            // from its accept) and the lines (a greeting answered with AUTH, an OK AUTH), as
            // real clients would answer within a round trip. Serving the events in epoll's order
            // instead left greetings behind thousands of handshakes, past the server's AUTH
            // timeout; rationing every handshake step left ClientHellos unsent past its
            // handshake timeout.
            var handshakes = 0
            for i in 0..<n {
                let index = Int(data[i])
                if let connection = slots[index].connection, connection.isAwaitingServerFlight {
                    if handshakes == Self.handshakesPerTurn { continue }
                    handshakes += 1
                }
                service(index)
            }
            if now - lastSweep > 50_000_000 {
                lastSweep = now
                sweepDeadlines()
            }
            if !retries.isEmpty {
                let due = retries.filter { $0.at <= now }
                retries.removeAll { $0.at <= now }
                toOpen.insert(contentsOf: due.map(\.index), at: 0)
            }
            startOpening(concurrency)
        }
        return true
    }

    private func startOpening(_ concurrency: Int) {
        while opening < concurrency, let index = toOpen.popLast() {
            open(index)
        }
    }

    private func open(_ index: Int) {
        let slot = slots[index]
        let n = nextAddress
        nextAddress += 1
        slot.startNs = Process.monotonicNanoseconds()
        slot.deadlineNs = slot.startNs + timeoutNs
        do {
            let connection = try shared.connect(n, session: plan.resume ? slot.session : nil)
            try Epoll.add(epoll.raw, connection.fd, events: Epoll.readable | Epoll.writable, data: UInt64(index))
            slot.connection = connection
            slot.phase = .opening
            opening += 1
        } catch let error as ClientError {
            failed(index, error)
        } catch {
            failed(index, ClientError(.network, "\(error)"))
        }
    }

    private func service(_ index: Int) {
        let slot = slots[index]
        while let connection = slot.connection {
            let event = connection.drive(lines: &lines, scratch: scratch.buffer)
            let got = !lines.isEmpty
            for line in lines where slot.connection === connection { handle(line, index) }
            lines.removeAll(keepingCapacity: true)
            guard slot.connection === connection else { return }
            if case .ended(let error) = event {
                return failed(index, error ?? ClientError(.closed, "the server closed the connection"))
            }
            if !got || connection.pendingOutput == 0 {
                let events = Epoll.readable | (connection.wantsWrite ? Epoll.writable : 0)
                try? Epoll.modify(epoll.raw, connection.fd, events: events, data: UInt64(index))
                return
            }
        }
    }

    private func handle(_ line: String, _ index: Int) {
        let slot = slots[index]
        slot.deadlineNs = now + timeoutNs
        if let error = ClientError.fromReply(line) { return failed(index, error) }
        switch slot.phase {
        case .opening:
            switch plan.answer(greeting: line) {
            case .authenticated: return authenticated(index)
            case .failed(let error): return failed(index, error)
            case .send(let auth):
                slot.connection!.queueLine(auth)
                slot.phase = .authenticating
            }
        case .authenticating:
            authenticated(index)
        case .up, .idle:
            break
        }
    }

    private func authenticated(_ index: Int) {
        let slot = slots[index]
        opening -= 1
        up += 1
        slot.phase = .up
        let connection = slot.connection!
        if plan.resume, let session = connection.session, session.isResumable { slot.session = session }
        guard storming else { return }
        outcome.reconnected += 1
        if connection.sessionReused { outcome.resumed += 1 }
        _ = outcome.latency.record(max(1, min((now - slot.startNs) / 1000, 120_000_000)))
    }

    /// Counts the failure and has the client try again 100 to 200 ms later (a storm's clients
    /// retry; at once, they would make a storm of their own out of every ERR BUSY).
    private func failed(_ index: Int, _ error: ClientError) {
        let slot = slots[index]
        if storming {
            outcome.errors[error.label, default: 0] += 1
            if outcome.firstErrors[error.label] == nil { outcome.firstErrors[error.label] = error.message }
        } else {
            outcome.setupErrors += 1
        }
        shared.errors.wrappingAdd(1, ordering: .relaxed)
        drop(slot)
        retries.append((at: now + 100_000_000 + UInt64.random(in: 0..<100_000_000), index: index))
    }

    private func drop(_ slot: Slot) {
        switch slot.phase {
        case .opening, .authenticating: opening -= 1
        case .up: up -= 1
        case .idle: break
        }
        if let connection = slot.connection {
            Epoll.remove(epoll.raw, connection.fd)
            connection.close()
        }
        slot.connection = nil
        slot.phase = .idle
    }

    private func closeAll() {
        for slot in slots { drop(slot) }
    }

    private func sweepDeadlines() {
        for (index, slot) in slots.enumerated() where slot.connection != nil && slot.phase != .up {
            if now > slot.deadlineNs {
                let what = slot.phase == .opening ? "greeting" : "AUTH reply"
                failed(index, ClientError(.timeout, "no \(what) within \(plan.timeoutMs) ms"))
            }
        }
    }
}
