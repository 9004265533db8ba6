import DequeModule
import GatehouseClient
import GatehouseSystem
import GatehouseTLS

/// One load-generating thread: its own epoll loop over its share of the connections.
///
/// Everything here runs on the worker's thread; the only shared state is `BenchShared`'s
/// atomics. Connections are non-blocking, so one thread holds thousands of them.
final class BenchWorker {
    private final class Slot {
        enum Phase { case idle, opening, authenticating, streaming, running, holding }
        var connection: LineConnection?
        var phase = Phase.idle
        var startNs: UInt64 = 0
        var deadlineNs: UInt64 = 0
        /// Send times of the messages in flight, oldest first.
        var sentAt = Deque<UInt64>()
        var watchingWrite = false
        let index: Int
        init(index: Int) { self.index = index }
    }

    private let shared: BenchShared
    private var plan: BenchPlan { shared.plan }
    private let epoll: OwnedFD
    private var slots: [Slot]
    private var result = WorkerResult()
    private let scratch = ReadScratch()
    private var lines: [String] = []
    private var session: TLSSession?
    private var nextAddress = 0
    /// Slots in `opening` or `authenticating`: bounded by `plan.openConcurrency`.
    private var opening = 0
    /// Slots with a connection.
    private var live = 0
    /// Slots waiting to open, in order.
    private var toOpen: [Int]
    private var holdUntilNs: UInt64?
    private var now: UInt64 = 0
    private let timeoutNs: UInt64

    init(shared: BenchShared, connections: Int) throws(SystemError) {
        self.shared = shared
        epoll = try Epoll.create()
        slots = (0..<connections).map { Slot(index: $0) }
        toOpen = Array((0..<connections).reversed())
        timeoutNs = UInt64(shared.plan.timeoutMs) * 1_000_000
    }

    /// Runs the worker's share to the end and hands its tallies to `shared`.
    func run() {
        let ready = EpollEvents(capacity: 512)
        let data = ready.data
        var lastSweep: UInt64 = 0
        now = Process.monotonicNanoseconds()
        startOpening()
        while !finished() {
            let n = (try? ready.wait(on: epoll.raw, timeoutMs: 50)) ?? 0
            now = Process.monotonicNanoseconds()
            for i in 0..<n { service(Int(data[i])) }
            if now - lastSweep > 50_000_000 {
                lastSweep = now
                sweepDeadlines()
            }
            startOpening()
        }
        for slot in slots where slot.connection != nil {
            if slot.phase == .holding { result.heldAtEnd += 1 }
            slot.connection?.close()
            slot.connection = nil
        }
        shared.deliver(result)
    }

    // MARK: lifecycle of a slot

    private func startOpening() {
        while opening < plan.openConcurrency, let index = toOpen.popLast() {
            if plan.mode == .handshake && !shared.claim() {
                toOpen.removeAll()
                return
            }
            open(index)
        }
    }

    private func open(_ index: Int) {
        let slot = slots[index]
        slot.startNs = Process.monotonicNanoseconds()
        slot.deadlineNs = slot.startNs + timeoutNs
        do {
            let connection = try shared.connect(nextAddress, session: plan.resume ? session : nil)
            try Epoll.add(epoll.raw, connection.fd, events: Epoll.readable | Epoll.writable, data: UInt64(index))
            slot.connection = connection
            slot.watchingWrite = true
            slot.phase = .opening
            opening += 1
            live += 1
            result.connected += 1
        } catch let error as ClientError {
            result.count(error, shared: shared)
            if plan.mode == .handshake { toOpen.insert(index, at: 0) }
        } catch {
            result.count(ClientError(.network, "\(error)"), shared: shared)
            if plan.mode == .handshake { toOpen.insert(index, at: 0) }
        }
    }

    private func service(_ index: Int) {
        let slot = slots[index]
        while let connection = slot.connection {
            let event = connection.drive(lines: &lines, scratch: scratch.buffer)
            let got = !lines.isEmpty
            for line in lines where slot.connection === connection { handle(line, slot: slot, index: index) }
            lines.removeAll(keepingCapacity: true)
            guard slot.connection === connection else { return }
            if case .ended(let error) = event {
                end(slot, error ?? ClientError(.closed, "the server closed the connection"))
                return
            }
            if !got || connection.pendingOutput == 0 {
                if connection.wantsWrite != slot.watchingWrite {
                    slot.watchingWrite = connection.wantsWrite
                    let events = Epoll.readable | (slot.watchingWrite ? Epoll.writable : 0)
                    try? Epoll.modify(epoll.raw, connection.fd, events: events, data: UInt64(index))
                }
                return
            }
        }
    }

    private func handle(_ line: String, slot: Slot, index: Int) {
        slot.deadlineNs = now + timeoutNs
        let error = ClientError.fromReply(line)
        switch slot.phase {
        case .opening:
            if let error { return fail(slot, error) }
            guard line.hasPrefix("HELLO gatehouse/1") else {
                return fail(slot, ClientError(.protocolViolation, "unexpected greeting: \(line)"))
            }
            if plan.mode == .handshake {
                result.record(latencyNs: now - slot.startNs)
                result.completed += 1
                if slot.connection!.sessionReused { result.resumed += 1 }
                if plan.resume, let s = slot.connection!.session, s.isResumable { session = s }
                shared.completed.wrappingAdd(1, ordering: .relaxed)
                close(slot)
                return
            }
            switch plan.answer(greeting: line) {
            case .authenticated: return authenticated(slot)
            case .failed(let error): return fail(slot, error)
            case .send(let auth):
                slot.connection!.queueLine(auth)
                slot.phase = .authenticating
            }
        case .authenticating:
            if let error { return fail(slot, error) }
            authenticated(slot)
        case .streaming:
            if let error { return fail(slot, error) }
            guard line.hasPrefix("OK STREAM ") else {
                return fail(slot, ClientError(.protocolViolation, "unexpected reply to STREAM: \(line)"))
            }
            slot.phase = .running
            fillWindow(slot)
        case .running:
            guard let sent = slot.sentAt.popFirst() else {
                return fail(slot, ClientError(.protocolViolation, "reply with no request: \(line)"))
            }
            if let error {
                if error.isClosingNotice {
                    slot.sentAt.prepend(sent)
                    return fail(slot, error)
                }
                result.refused += 1
                result.count(error, shared: shared)
            } else {
                result.record(latencyNs: now - sent, window: shared.latencyWindow.load(ordering: .relaxed))
                result.completed += 1
                shared.completed.wrappingAdd(1, ordering: .relaxed)
            }
            fillWindow(slot)
        case .holding:
            if let error { fail(slot, error) }
        case .idle:
            break
        }
    }

    private func authenticated(_ slot: Slot) {
        opening -= 1
        shared.established.wrappingAdd(1, ordering: .relaxed)
        if plan.mode == .idle {
            result.record(latencyNs: now - slot.startNs)
            result.completed += 1
            slot.phase = .holding
            return
        }
        if let prefix = plan.streamPrefix {
            // One stream per connection: unique per worker thread and slot.
            slot.connection!.queueLine("STREAM \(prefix)-\(ObjectIdentifier(self).hashValue & 0xFFFFFF)-\(slot.index)")
            slot.phase = .streaming
            return
        }
        slot.phase = .running
        fillWindow(slot)
    }

    private func fillWindow(_ slot: Slot) {
        while slot.sentAt.count < plan.window && shared.claim() {
            slot.connection!.queueLine(plan.payload)
            slot.sentAt.append(now)
        }
        if slot.sentAt.count == 0 { close(slot) }
    }

    private func end(_ slot: Slot, _ error: ClientError) {
        fail(slot, error)
    }

    private func fail(_ slot: Slot, _ error: ClientError) {
        result.count(error, shared: shared)
        result.unanswered += slot.sentAt.count
        slot.sentAt = Deque()
        close(slot)
    }

    private func close(_ slot: Slot) {
        switch slot.phase {
        case .running, .holding, .streaming: shared.established.wrappingSubtract(1, ordering: .relaxed)
        case .opening, .authenticating: opening -= 1
        case .idle: break
        }
        if let connection = slot.connection {
            Epoll.remove(epoll.raw, connection.fd)
            connection.close()
            live -= 1
        }
        slot.connection = nil
        slot.phase = .idle
        // A handshake slot goes round again while there is work to claim.
        if plan.mode == .handshake { toOpen.insert(slot.index, at: 0) }
    }

    private func sweepDeadlines() {
        for slot in slots where slot.connection != nil && slot.phase != .holding && now > slot.deadlineNs {
            let what =
                slot.phase == .running
                ? "reply"
                : slot.phase == .opening ? "greeting" : slot.phase == .streaming ? "STREAM reply" : "AUTH reply"
            fail(slot, ClientError(.timeout, "no \(what) within \(plan.timeoutMs) ms"))
        }
    }

    private func finished() -> Bool {
        switch plan.mode {
        case .handshake, .messages:
            return toOpen.isEmpty && live == 0
        case .idle:
            if opening > 0 || !toOpen.isEmpty { return false }
            if holdUntilNs == nil {
                holdUntilNs = now + plan.holdNs
                result.openingNs = now - shared.startNs
            }
            return now >= holdUntilNs! || shared.stop.load(ordering: .relaxed)
        }
    }
}
