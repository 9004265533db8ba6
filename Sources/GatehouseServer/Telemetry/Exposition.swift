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
        ("gatehouse_replies_error_total", [], "ERR replies sent."),
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

    init(shared: ServerShared) {
        self.shared = shared
        var counters: [String: Counter] = [:]
        for (name, labels, help) in Exposition.counterSpecs {
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
        let totals: [String: Double] = [
            "gatehouse_connections_total": Double(m.connectionsAccepted.load(ordering: .relaxed)),
            "gatehouse_handshakes_total|result=ok": Double(m.handshakesCompleted.load(ordering: .relaxed)),
            "gatehouse_handshakes_total|result=failed": Double(m.handshakesFailed.load(ordering: .relaxed)),
            "gatehouse_messages_acknowledged_total": Double(m.messagesAcknowledged.load(ordering: .relaxed)),
            "gatehouse_replies_error_total": Double(m.errorsSent.load(ordering: .relaxed)),
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
        return registry.emitToBuffer()
    }
}
