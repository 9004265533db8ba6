import ArgumentParser
import GatehouseClient
import GatehouseSystem
import Histogram

extension Bench {
    /// Storm mode (see `BenchStorm`): the storm on this thread, the messengers on another.
    func runStorm() throws {
        let connections = self.connections ?? 1000
        let (config, client, addresses, token) = try prepare(
            descriptors: connections + messengers + 32,
            for: connections,
            needsCredential: true
        )
        func plan(_ n: Int, window: Int, resume: Bool) -> BenchPlan {
            BenchPlan(
                mode: .messages,
                connections: n,
                window: window,
                payload: Array("MSG storm-messenger".utf8),
                count: nil,
                durationNs: UInt64(seconds * 1e9),
                holdNs: 0,
                resume: resume,
                user: connection.resolvedUser,
                token: token,
                timeoutMs: config.timeoutMs,
                threads: 1
            )
        }
        let storm = BenchShared(
            plan: plan(connections, window: 1, resume: resume),
            client: client,
            addresses: addresses
        )
        // The messengers run until told to stop (a duration far beyond both phases).
        var messengerPlan = plan(messengers, window: 1, resume: false)
        messengerPlan.durationNs = UInt64(3 * seconds * 1e9) + 10_000_000_000
        let messengerCount = messengers
        let messages = BenchShared(plan: messengerPlan, client: client, addresses: addresses)
        let thread: OSThread? =
            messengers == 0
            ? nil
            : OSThread(name: "bench-messengers") {
                do { try BenchWorker(shared: messages, connections: messengerCount).run() } catch {
                    Console.error("gatehouse: messengers failed: \(error)")
                    messages.deliver(WorkerResult())
                }
            }
        let outcome: BenchStorm.Outcome
        do {
            outcome = try BenchStorm(shared: storm, serverPid: serverPid).run(
                quietNs: 1_000_000_000,
                messengers: messages
            )
        } catch {
            Console.error("gatehouse: \(error)")
            throw ExitCode(ExitStatus.connectFailed)
        }
        messages.stop.store(true, ordering: .relaxed)
        thread?.join()
        let report = StormReport(
            connections: connections,
            resume: resume,
            messengers: messengers,
            outcome: outcome,
            messengerResults: messages.allResults,
            tickHz: Process.clockTicksPerSecond
        )
        Console.out(json ? report.json() : report.text())
        if !outcome.complete || report.messengerErrors > 0 { throw ExitCode(1) }
    }
}

/// What a storm run saw, as text or JSON.
struct StormReport {
    let connections: Int
    let resume: Bool
    let messengers: Int
    let outcome: BenchStorm.Outcome
    var quiet = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var during = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var messengerErrors = 0
    var messengerErrorKinds: [String: Int] = [:]
    let tickHz: Int

    init(
        connections: Int,
        resume: Bool,
        messengers: Int,
        outcome: BenchStorm.Outcome,
        messengerResults: [WorkerResult],
        tickHz: Int
    ) {
        self.connections = connections
        self.resume = resume
        self.messengers = messengers
        self.outcome = outcome
        self.tickHz = max(1, tickHz)
        for r in messengerResults {
            quiet.add(r.windows[1])
            during.add(r.windows[2])
            for (k, v) in r.errors {
                messengerErrors += v
                messengerErrorKinds[k, default: 0] += v
            }
        }
    }

    var stormSeconds: Double { Double(outcome.stormNs) / 1e9 }
    var serverCPUSeconds: Double? { outcome.serverTicks.map { Double($0) / Double(tickHz) } }

    private func percentile(_ h: Histogram<UInt64>, _ p: Double) -> UInt64 {
        h.totalCount > 0 ? h.valueAtPercentile(p) : 0
    }

    /// Microseconds as text, in ms from 10 ms up.
    private func time(_ h: Histogram<UInt64>, _ p: Double) -> String {
        let v = p >= 100 ? (h.totalCount > 0 ? h.max : 0) : percentile(h, p)
        return v >= 10_000 ? "\(format(Double(v) / 1000, 1)) ms" : "\(v) µs"
    }

    func text() -> String {
        var lines = [
            "gatehouse bench storm: \(connections) clients, \(resume ? "resuming their sessions" : "full handshakes"), "
                + "\(messengers) messengers"
        ]
        let state = outcome.complete ? "all authenticated again" : "NOT all authenticated before the deadline"
        lines.append(
            "  connected in \(format(Double(outcome.setupNs) / 1e9, 2)) s; after the drop, \(state) in "
                + "\(format(stormSeconds, 3)) s (\(outcome.reconnected) reconnects, \(outcome.resumed) resumed)"
        )
        let l = outcome.latency
        lines.append(
            "  reconnect latency (connect to OK AUTH): p50 \(time(l, 50))  p99 \(time(l, 99))  max \(time(l, 100))"
        )
        if let cpu = serverCPUSeconds {
            let per = outcome.reconnected > 0 ? cpu * 1e6 / Double(outcome.reconnected) : 0
            lines.append("  server CPU during the storm: \(format(cpu, 2)) s (\(format(per, 1)) µs per reconnect)")
        }
        lines.append(
            "  messenger ACK latency: before p50 \(time(quiet, 50)) p99 \(time(quiet, 99)) (\(quiet.totalCount) ACKs); "
                + "during p50 \(time(during, 50)) p99 \(time(during, 99)) max \(time(during, 100)) "
                + "(\(during.totalCount) ACKs)"
        )
        let errors = outcome.errors.sorted { $0.key < $1.key }
        lines.append(
            "  reconnect errors (each retried): "
                + (errors.isEmpty
                    ? "none"
                    : errors.map { "\($0.key) \($0.value) (first: \(outcome.firstErrors[$0.key] ?? ""))" }
                        .joined(separator: "; "))
        )
        if outcome.setupErrors > 0 {
            lines.append("  errors while connecting before the storm: \(outcome.setupErrors)")
        }
        if messengerErrors > 0 { lines.append("  messenger errors: \(messengerErrorKinds)") }
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        func hist(_ h: Histogram<UInt64>) -> String {
            "{\"p50\": \(percentile(h, 50)), \"p99\": \(percentile(h, 99)), \"max\": \(h.totalCount > 0 ? h.max : 0), "
                + "\"count\": \(h.totalCount)}"
        }
        func dict(_ d: [String: Int]) -> String {
            "{" + d.sorted { $0.key < $1.key }.map { "\(quote($0.key)): \($0.value)" }.joined(separator: ", ") + "}"
        }
        let fields: [(String, String)] = [
            ("mode", quote("storm")), ("connections", "\(connections)"), ("resume", "\(resume)"),
            ("messengers", "\(messengers)"), ("complete", "\(outcome.complete)"),
            ("setup_s", format(Double(outcome.setupNs) / 1e9, 3)), ("storm_s", format(stormSeconds, 3)),
            ("reconnected", "\(outcome.reconnected)"), ("resumed", "\(outcome.resumed)"),
            ("latency_us", hist(outcome.latency)),
            ("server_cpu_s", serverCPUSeconds.map { format($0, 3) } ?? "null"),
            ("messenger_before_us", hist(quiet)), ("messenger_during_us", hist(during)),
            ("errors", dict(outcome.errors)),
            (
                "first_errors",
                "{"
                    + outcome.firstErrors.sorted { $0.key < $1.key }.map { "\(quote($0.key)): \(quote($0.value))" }
                    .joined(separator: ", ") + "}"
            ),
            ("setup_errors", "\(outcome.setupErrors)"),
            ("messenger_errors", dict(messengerErrorKinds)),
        ]
        return "{" + fields.map { "\(quote($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }
}
