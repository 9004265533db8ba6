import GatehouseProtocol
import GatehouseSystem
import GatehouseTLS
import Prometheus
import Synchronization

/// Builds the `/metrics` page with swift-prometheus's registry and text format.
///
/// The hot path never touches the registry: workers and the journal count in their own
/// counters (`ServerMetrics`, the journal's statistics); at each scrape this type reads them
/// and brings the registry's counters up to the totals (counters only move by the difference
/// since the last scrape, so they stay monotonic) and sets the gauges. Scrapes are serialised
/// by the metrics thread; the mutex only guards against a second caller.
final class Exposition: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let shared: ServerShared
    private let synced = Mutex<[String: Double]>([:])
    private let counters: [String: Counter]
    private let gauges: [String: Gauge]

    /// (name, labels, help)
    private static let counterSpecs: [(String, [(String, String)], String)] = [
        ("gatehouse_connections_total", [], "Connections accepted."),
        ("gatehouse_handshakes_total", [("result", "ok")], "TLS handshakes, by result."),
        ("gatehouse_handshakes_total", [("result", "failed")], "TLS handshakes, by result."),
        ("gatehouse_messages_acknowledged_total", [], "Messages answered ACK (stored under the fsync policy)."),
        ("gatehouse_connections_refused_total", [("reason", "busy")], "Connections refused before serving."),
        (
            "gatehouse_connections_refused_total", [("reason", "per_address_limit")],
            "Connections refused before serving."
        ),
        ("gatehouse_journal_flushes_total", [], "Journal group flushes."),
        ("gatehouse_journal_records_total", [], "Records written to the journal."),
        ("gatehouse_journal_failures_total", [], "Journal writes or flushes that failed."),
        ("gatehouse_reloads_total", [("result", "ok")], "SIGHUP reloads of TLS material, tokens and client map."),
        ("gatehouse_reloads_total", [("result", "failed")], "SIGHUP reloads of TLS material, tokens and client map."),
        ("process_cpu_seconds_total", [], "User and system CPU time spent, in seconds."),
    ]

    private static let gaugeSpecs: [(String, [(String, String)], String)] = [
        ("gatehouse_connections_open", [], "Connections open now."),
        ("gatehouse_journal_queue_bytes", [], "Bytes of records waiting for the journal."),
        ("gatehouse_ready", [], "1 while /readyz answers 200."),
        (
            "gatehouse_certificate_expiry_timestamp_seconds", [("certificate", "server")],
            "notAfter of the certificates in use, seconds since the epoch."
        ),
        (
            "gatehouse_certificate_expiry_timestamp_seconds", [("certificate", "client_ca")],
            "notAfter of the certificates in use, seconds since the epoch."
        ),
        ("process_resident_memory_bytes", [], "Resident memory size in bytes."),
        ("process_virtual_memory_bytes", [], "Virtual memory size in bytes."),
        ("process_open_fds", [], "Open file descriptors."),
        ("process_max_fds", [], "The limit on open file descriptors."),
        ("process_start_time_seconds", [], "Start time of the process since the epoch, in seconds."),
    ]

    /// The counters labelled by an enum: close reasons, error codes, auth method and result.
    private static var labelledSpecs: [(String, [(String, String)], String)] {
        var specs: [(String, [(String, String)], String)] = []
        for reason in CloseReason.allCases {
            specs.append(
                (
                    "gatehouse_connections_closed_total", [("reason", reason.metricLabel)],
                    "Connections closed, by reason."
                )
            )
        }
        for code in ErrorCode.allCases {
            specs.append(
                (
                    "gatehouse_replies_error_total", [("code", code.rawValue)],
                    "ERR replies sent, by code (counted when the connection closes)."
                )
            )
        }
        for method in WorkerStats.AuthMethod.allCases {
            for result in WorkerStats.AuthResult.allCases {
                specs.append(
                    (
                        "gatehouse_auth_total", [("method", method.label), ("result", result.label)],
                        "Authentications, by method and result."
                    )
                )
            }
        }
        specs.append(("gatehouse_tls_sessions_resumed_total", [], "TLS handshakes that resumed a session."))
        specs.append(("gatehouse_bytes_received_total", [], "Plaintext bytes received from clients."))
        specs.append(("gatehouse_bytes_sent_total", [], "Plaintext bytes sent to clients."))
        return specs
    }

    init(shared: ServerShared) {
        self.shared = shared
        var counters: [String: Counter] = [:]
        for (name, labels, help) in Exposition.counterSpecs + Exposition.labelledSpecs {
            counters[Exposition.key(name, labels)] = registry.makeCounter(name: name, labels: labels, help: help)
        }
        var gauges: [String: Gauge] = [:]
        for (name, labels, help) in Exposition.gaugeSpecs {
            gauges[Exposition.key(name, labels)] = registry.makeGauge(name: name, labels: labels, help: help)
        }
        self.counters = counters
        self.gauges = gauges
    }

    static func key(_ name: String, _ labels: [(String, String)]) -> String {
        name + labels.map { "|\($0.0)=\($0.1)" }.joined()
    }

    /// The page: totals read now, in the Prometheus text format.
    func render(ready: Bool) -> [UInt8] {
        let m = shared.metrics
        let journal = shared.journal.statistics
        let process = ProcessStats.read()
        var totals: [String: Double] = [
            "gatehouse_connections_total": Double(m.connectionsAccepted.load(ordering: .relaxed)),
            "gatehouse_handshakes_total|result=ok": Double(m.handshakesCompleted.load(ordering: .relaxed)),
            "gatehouse_handshakes_total|result=failed": Double(m.handshakesFailed.load(ordering: .relaxed)),
            "gatehouse_messages_acknowledged_total": Double(m.messagesAcknowledged.load(ordering: .relaxed)),
            "gatehouse_connections_refused_total|reason=busy": Double(m.busyRefusals.load(ordering: .relaxed)),
            "gatehouse_connections_refused_total|reason=per_address_limit":
                Double(m.peerLimitRefusals.load(ordering: .relaxed)),
            "gatehouse_journal_flushes_total": Double(journal.flushes),
            "gatehouse_journal_records_total": Double(journal.records),
            "gatehouse_journal_failures_total": Double(journal.failures),
            "gatehouse_reloads_total|result=ok": Double(m.reloadsSucceeded.load(ordering: .relaxed)),
            "gatehouse_reloads_total|result=failed": Double(m.reloadsFailed.load(ordering: .relaxed)),
            "process_cpu_seconds_total": process.cpuSeconds,
        ]
        for stats in shared.workerStats {
            for (i, reason) in CloseReason.allCases.enumerated() {
                totals["gatehouse_connections_closed_total|reason=\(reason.metricLabel)", default: 0] +=
                    Double(stats.closed[i].load(ordering: .relaxed))
            }
            for (i, code) in ErrorCode.allCases.enumerated() {
                totals["gatehouse_replies_error_total|code=\(code.rawValue)", default: 0] +=
                    Double(stats.errors[i].load(ordering: .relaxed))
            }
            for method in WorkerStats.AuthMethod.allCases {
                for result in WorkerStats.AuthResult.allCases {
                    let index = method.rawValue * WorkerStats.AuthResult.allCases.count + result.rawValue
                    totals["gatehouse_auth_total|method=\(method.label)|result=\(result.label)", default: 0] +=
                        Double(stats.auth[index].load(ordering: .relaxed))
                }
            }
            totals["gatehouse_tls_sessions_resumed_total", default: 0] += Double(stats.resumed.load(ordering: .relaxed))
            totals["gatehouse_bytes_received_total", default: 0] += Double(stats.bytesReceived.load(ordering: .relaxed))
            totals["gatehouse_bytes_sent_total", default: 0] += Double(stats.bytesSent.load(ordering: .relaxed))
        }
        let tls = shared.currentTLSContext()
        let clientCA =
            shared.config.tls.clientCAFile.map { TLSContext.certificatesNotAfter(inPEMFile: $0).min() } ?? nil
        let levels: [String: Double] = [
            "gatehouse_connections_open": Double(m.connectionsOpen.load(ordering: .relaxed)),
            "gatehouse_journal_queue_bytes": Double(shared.journal.queuedByteCount),
            "gatehouse_ready": ready ? 1 : 0,
            "gatehouse_certificate_expiry_timestamp_seconds|certificate=server": Double(tls.certificateNotAfter ?? 0),
            "gatehouse_certificate_expiry_timestamp_seconds|certificate=client_ca": Double(clientCA ?? 0),
            "process_resident_memory_bytes": Double(process.residentBytes),
            "process_virtual_memory_bytes": Double(process.virtualBytes),
            "process_open_fds": Double(process.openDescriptors),
            "process_max_fds": Double(process.maxDescriptors),
            "process_start_time_seconds": process.startTimeSeconds,
        ]
        synced.withLock { last in
            for (key, total) in totals {
                let delta = total - last[key, default: 0]
                if delta > 0 { counters[key]?.increment(by: delta) }
                last[key] = max(total, last[key, default: 0])
            }
        }
        for (key, value) in levels { gauges[key]?.set(value) }
        var page = registry.emitToBuffer()
        // Histograms: summed over the per-thread ones here (swift-prometheus's histograms take a
        // lock per observation; these are written lock-free by their owner thread).
        let workers = shared.workerStats
        Exposition.appendHistogram(
            "gatehouse_handshake_seconds",
            "Accept to greeting (TLS handshake), seconds.",
            workers.map(\.handshakeSeconds),
            to: &page
        )
        Exposition.appendHistogram(
            "gatehouse_ack_latency_seconds",
            "A message read to its ACK (journal outcome), seconds.",
            workers.map(\.ackLatency),
            to: &page
        )
        Exposition.appendHistogram(
            "gatehouse_journal_flush_seconds",
            "One journal group's write and flush, seconds.",
            [shared.journal.flushSeconds],
            to: &page
        )
        Exposition.appendHistogram(
            "gatehouse_journal_batch_messages",
            "Messages per journal group (group commit).",
            [shared.journal.batchMessages],
            to: &page
        )
        return page
    }

    /// Appends one histogram in the text format: cumulative `_bucket{le=…}`, `_sum`, `_count`.
    static func appendHistogram(_ name: String, _ help: String, _ parts: [FixedHistogram], to page: inout [UInt8]) {
        guard let bounds = parts.first?.bounds else { return }
        var counts = [Int](repeating: 0, count: bounds.count + 1)
        var sum = 0.0
        for part in parts {
            let (c, s) = part.snapshot()
            for i in counts.indices { counts[i] += c[i] }
            sum += s
        }
        var text = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var cumulative = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += counts[i]
            text += "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        cumulative += counts[bounds.count]
        text += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n\(name)_sum \(sum)\n\(name)_count \(cumulative)\n"
        page += Array(text.utf8)
    }
}
