import GatehouseSystem
import Histogram

/// The merged tallies of a bench run, rendered as text or JSON.
struct BenchReport {
    let plan: BenchPlan
    let elapsedNs: UInt64
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    var total = WorkerResult()

    init(plan: BenchPlan, results: [WorkerResult], elapsedNs: UInt64) {
        self.plan = plan
        self.elapsedNs = elapsedNs
        for r in results {
            latency.add(r.latency)
            total.completed += r.completed
            total.resumed += r.resumed
            total.refused += r.refused
            total.unanswered += r.unanswered
            total.connected += r.connected
            total.heldAtEnd += r.heldAtEnd
            total.openingNs = max(total.openingNs, r.openingNs)
            for (k, v) in r.errors { total.errors[k, default: 0] += v }
            for (k, v) in r.firstErrors where total.firstErrors[k] == nil { total.firstErrors[k] = v }
        }
    }

    var seconds: Double { Double(elapsedNs) / 1e9 }
    /// The time the rate is over: the whole run, or in idle mode the time to open every connection.
    var rateSeconds: Double { plan.mode == .idle ? Double(total.openingNs) / 1e9 : seconds }
    var rate: Double { rateSeconds > 0 ? Double(total.completed) / rateSeconds : 0 }
    var errorTotal: Int { total.errors.values.reduce(0, +) }

    private var completedName: String {
        switch plan.mode {
        case .handshake: plan.resume ? "resumed handshakes" : "full handshakes"
        case .messages: "acknowledged"
        case .idle: "authenticated"
        }
    }

    private var latencyName: String {
        switch plan.mode {
        case .handshake: "connect to greeting"
        case .messages: "MSG to ACK"
        case .idle: "connect to OK AUTH"
        }
    }

    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]

    func text() -> String {
        var lines: [String] = []
        var header = "gatehouse bench \(plan.mode.rawValue): \(plan.connections) connections, \(plan.threads) threads"
        if plan.mode == .messages { header += ", window \(plan.window), \(plan.payload.count - 4)-byte messages" }
        lines.append(header + ", \(format(seconds, 2)) s")
        lines.append("  \(completedName): \(total.completed)  (\(format(rate, 1))/s)")
        switch plan.mode {
        case .handshake:
            if plan.resume { lines.append("  resumed: \(total.resumed) of \(total.completed)") }
        case .messages:
            lines.append("  refused: \(total.refused)  unanswered (connection lost): \(total.unanswered)")
        case .idle:
            lines.append(
                "  opened in \(format(rateSeconds, 2)) s; held open at the end: \(total.heldAtEnd) of \(plan.connections)"
            )
        }
        if latency.totalCount > 0 {
            let parts = Self.percentiles.map { "\($0.0) \(micros(latency.valueAtPercentile($0.1)))" }
            lines.append(
                "  latency (\(latencyName)): " + parts.joined(separator: "  ") + "  max \(micros(latency.max))"
            )
        }
        if total.errors.isEmpty {
            lines.append("  errors: none")
        } else {
            lines.append("  errors: \(errorTotal)")
            for (kind, n) in total.errors.sorted(by: { $0.key < $1.key }) {
                lines.append("    \(kind): \(n)  (first: \(total.firstErrors[kind] ?? ""))")
            }
        }
        return lines.joined(separator: "\n")
    }

    func json() -> String {
        var fields: [(String, String)] = [
            ("mode", quote(plan.mode.rawValue)), ("connections", "\(plan.connections)"), ("threads", "\(plan.threads)"),
            ("elapsed_s", format(seconds, 3)), ("completed", "\(total.completed)"), ("rate_per_s", format(rate, 1)),
        ]
        switch plan.mode {
        case .handshake:
            fields += [("resume", "\(plan.resume)"), ("resumed", "\(total.resumed)")]
        case .messages:
            fields += [
                ("window", "\(plan.window)"), ("size", "\(plan.payload.count - 4)"),
                ("acknowledged", "\(total.completed)"), ("refused", "\(total.refused)"),
                ("unanswered", "\(total.unanswered)"),
            ]
        case .idle:
            fields += [
                ("held", "\(total.heldAtEnd)"), ("authenticated", "\(total.completed)"),
                ("opening_s", format(rateSeconds, 3)),
            ]
        }
        var lat = Self.percentiles.map {
            (quote($0.0), "\(latency.totalCount > 0 ? latency.valueAtPercentile($0.1) : 0)")
        }
        lat += [
            (quote("max"), "\(latency.totalCount > 0 ? latency.max : 0)"), (quote("count"), "\(latency.totalCount)"),
        ]
        fields.append(("latency_us", "{" + lat.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + "}"))
        let errs = total.errors.sorted(by: { $0.key < $1.key }).map { "\(quote($0.key)): \($0.value)" }
        fields.append(("errors", "{" + errs.joined(separator: ", ") + "}"))
        return "{" + fields.map { "\(quote($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    private func micros(_ value: UInt64) -> String {
        value >= 10_000 ? "\(format(Double(value) / 1000, 1)) ms" : "\(value) µs"
    }
}

func format(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = "\(rounded)"
    if text.hasSuffix(".0") && digits == 0 { text.removeLast(2) }
    return text
}

func quote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default:
            if scalar.value < 0x20 {
                out += "\\u00" + String(scalar.value, radix: 16).leftPadded(2)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

/// The live progress line: rate so far and errors, redrawn in place, only on a terminal.
final class BenchProgress {
    private let shared: BenchShared
    private let enabled: Bool
    private var lastNs: UInt64 = 0
    private var lastCompleted = 0

    init(shared: BenchShared, enabled: Bool) {
        self.shared = shared
        self.enabled = enabled
        lastNs = shared.startNs
    }

    func tick() {
        guard enabled else { return }
        let now = Process.monotonicNanoseconds()
        guard now - lastNs >= 1_000_000_000 else { return }
        let completed = shared.completed.load(ordering: .relaxed)
        let rate = Double(completed - lastCompleted) / (Double(now - lastNs) / 1e9)
        lastNs = now
        lastCompleted = completed
        let elapsed = Double(now - shared.startNs) / 1e9
        var text = "\r\u{1B}[K  \(format(elapsed, 0))s  \(completed) done  \(format(rate, 0))/s"
        if shared.plan.mode != .handshake { text += "  open \(shared.established.load(ordering: .relaxed))" }
        text += "  errors \(shared.errors.load(ordering: .relaxed))"
        Console.write(1, text)
    }

    func clear() {
        if enabled { Console.write(1, "\r\u{1B}[K") }
    }
}
