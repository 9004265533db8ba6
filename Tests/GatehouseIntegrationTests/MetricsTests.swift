import Foundation
import TestSupport
import Testing

/// `--metrics-address`: `/metrics` parses with Python's prometheus_client and counts a known
/// workload exactly; `/healthz`; `/readyz` turns 503 while the journal fails and while draining.
@Suite("Metrics")
struct MetricsTests {
    /// GETs `path` from the metrics listener; for /metrics, parses the page with
    /// prometheus_client and returns the samples as `name{l="v",…}` → value.
    static let client = """
        import json, sys, urllib.request, urllib.error
        url, parse = sys.argv[1], sys.argv[2] == "parse"
        try:
            response = urllib.request.urlopen(url, timeout=5)
            status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        samples = {}
        if parse:
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(body):
                for s in family.samples:
                    labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
                    samples[s.name + ("{" + labels + "}" if labels else "")] = s.value
        print(json.dumps({"status": status, "body": body if not parse else "", "samples": samples}))
        """

    struct Page {
        var status: Int
        var body: String
        var samples: [String: Double]
    }

    func get(_ port: Int, _ path: String) throws -> Page {
        let result = try ProcessRunner.run(
            "python3",
            ["-c", Self.client, "http://127.0.0.1:\(port)\(path)", path == "/metrics" ? "parse" : "raw"],
            timeout: 20
        )
        guard result.status == 0,
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        else { throw TestSupportError("metrics client failed: \(result.stderr)") }
        return Page(
            status: object["status"] as? Int ?? 0,
            body: object["body"] as? String ?? "",
            samples: (object["samples"] as? [String: Double]) ?? [:]
        )
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func countersEqualAKnownWorkload() throws {
        let metricsPort = try Self.freePort()
        let server = try ServerProcess(arguments: ["--metrics-address", "127.0.0.1:\(metricsPort)"])
        let before = try get(metricsPort, "/metrics")
        #expect(before.status == 200)
        #expect(before.samples["gatehouse_connections_open"] == 0)
        #expect((before.samples["process_resident_memory_bytes"] ?? 0) > 1_000_000)
        #expect((before.samples["process_open_fds"] ?? 0) > 5)
        #expect(
            (before.samples["gatehouse_certificate_expiry_timestamp_seconds{certificate=\"server\"}"] ?? 0)
                > Date().timeIntervalSince1970
        )

        // 3 connections, 7 messages, 2 errors (UNKNOWN_COMMAND, NOAUTH), a failed handshake, a reload.
        let token = server.tokens["alice"]!
        for messages in [2, 2, 3] {
            let lines = (1...messages).map { "MSG m\($0)" }.joined(separator: "\n")
            _ = try server.sClient("AUTH alice \(token)\n\(lines)\nQUIT\n")
        }
        let errors = try server.sClient("NOPE\nMSG\nQUIT\n")
        #expect(replyLines(errors.stdout).count == 4)
        let failed = try server.sClient("QUIT\n", extra: ["-tls1_2", "-cipher", "AES128-SHA"])
        #expect(!failed.stdout.contains("HELLO"))
        #expect(server.signal(SIGHUP, waitUpTo: 0) == nil)
        #expect(server.waitForLog("tokens reloaded"))

        let after = try get(metricsPort, "/metrics")
        #expect(after.samples["gatehouse_messages_acknowledged_total"] == 7)
        #expect(after.samples["gatehouse_replies_error_total{code=\"UNKNOWN_COMMAND\"}"] == 1)
        #expect(after.samples["gatehouse_replies_error_total{code=\"NOAUTH\"}"] == 1)  // MSG before AUTH
        #expect(after.samples["gatehouse_replies_error_total{code=\"EMPTY\"}"] == 0)
        #expect(after.samples["gatehouse_connections_closed_total{reason=\"quit\"}"] == 4)
        #expect(after.samples["gatehouse_connections_closed_total{reason=\"handshake_failed\"}"] == 1)
        #expect(after.samples["gatehouse_auth_total{method=\"token\",result=\"ok\"}"] == 3)
        #expect(after.samples["gatehouse_auth_total{method=\"token\",result=\"failed\"}"] == 0)
        #expect(after.samples["gatehouse_tls_sessions_resumed_total"] == 0)
        #expect((after.samples["gatehouse_bytes_received_total"] ?? 0) > 100)
        #expect((after.samples["gatehouse_bytes_sent_total"] ?? 0) > 50)
        #expect(after.samples["gatehouse_handshake_seconds_count"] == 4)
        #expect(after.samples["gatehouse_ack_latency_seconds_count"] == 7)
        #expect(after.samples["gatehouse_journal_batch_messages_sum"] == 7)
        #expect((after.samples["gatehouse_journal_flush_seconds_count"] ?? 0) >= 1)
        #expect(after.samples["gatehouse_connections_total"] == 5)
        #expect(after.samples["gatehouse_handshakes_total{result=\"ok\"}"] == 4)
        #expect(after.samples["gatehouse_handshakes_total{result=\"failed\"}"] == 1)
        #expect(after.samples["gatehouse_reloads_total{result=\"ok\"}"] == 2)  // TLS material, tokens
        #expect(after.samples["gatehouse_journal_records_total"] == 7)
        #expect((after.samples["gatehouse_journal_flushes_total"] ?? 0) >= 1)
        #expect(after.samples["gatehouse_connections_open"] == 0)
        // A second scrape does not count anything twice.
        let again = try get(metricsPort, "/metrics")
        #expect(again.samples["gatehouse_messages_acknowledged_total"] == 7)
        #expect(try get(metricsPort, "/healthz").status == 200)
        #expect(try get(metricsPort, "/nothing").status == 404)
    }

    @Test func readyzIsServiceUnavailableWhileTheJournalFails() throws {
        let metricsPort = try Self.freePort()
        let server = try ServerProcess(
            arguments: ["--metrics-address", "127.0.0.1:\(metricsPort)"],
            environment: [
                "LD_PRELOAD": try FaultLibrary.path(), "GH_FAULT_PATH": "journal.jsonl", "GH_FAULT_FDATASYNC": "1-",
            ]
        )
        #expect(try get(metricsPort, "/readyz").status == 200)
        let conn = try server.authenticatedConnection()
        #expect(try conn.request("MSG lost").hasPrefix("ERR UNAVAILABLE"))
        let page = try get(metricsPort, "/readyz")
        #expect(page.status == 503)
        #expect(page.body.contains("store"), "\(page.body)")
        #expect(try get(metricsPort, "/metrics").samples["gatehouse_ready"] == 0)
    }

    @Test func readyzIsServiceUnavailableWhileDraining() throws {
        let metricsPort = try Self.freePort()
        let server = try ServerProcess(
            arguments: ["--metrics-address", "127.0.0.1:\(metricsPort)", "--drain-timeout", "5"]
        )
        #expect(try get(metricsPort, "/readyz").status == 200)
        // A client that never reads, with a tiny receive buffer, holds the drain open: its
        // replies cannot be delivered until the drain deadline.
        let flood = """
            import socket, ssl, sys, threading, time
            port, ca, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.connect(("127.0.0.1", port))
            tls = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost")
            tls.sendall(("AUTH alice %s\\n" % token).encode())
            sent = [0]
            def write():
                try:
                    for _ in range(256):
                        tls.sendall(b"PING\\n" * 16384)
                        sent[0] += 1
                except OSError:
                    pass
            threading.Thread(target=write, daemon=True).start()
            last, still = -1, 0
            while still < 5:  # no progress for 0.5 s: the server has stopped reading us
                time.sleep(0.1)
                still = still + 1 if sent[0] == last and sent[0] > 0 else 0
                last = sent[0]
            print("flooding", flush=True)
            time.sleep(15)
            """
        let client = Process()
        client.executableURL = URL(fileURLWithPath: try ProcessRunner.which("python3"))
        client.arguments = ["-c", flood, String(server.port), server.pki.caCertificate, server.tokens["alice"]!]
        let out = Pipe()
        client.standardOutput = out
        try client.run()
        defer { client.terminate() }
        _ = out.fileHandleForReading.availableData  // "flooding": the server has stopped reading it
        kill(server.pid, SIGTERM)
        #expect(server.waitForLog("draining"))
        let page = try get(metricsPort, "/readyz")
        #expect(page.status == 503)
        #expect(page.body.contains("draining"), "\(page.body)")
    }

    /// The alert rules and the Grafana dashboard in deploy/ use only metrics a server serves:
    /// every name in their expressions is on a real /metrics page (histograms by their base name).
    @Test func alertRulesAndDashboardNameOnlyServedMetrics() throws {
        let metricsPort = try Self.freePort()
        let server = try ServerProcess(arguments: ["--metrics-address", "127.0.0.1:\(metricsPort)"])
        _ = try server.sClient("QUIT\n")
        let served = Set(
            try get(metricsPort, "/metrics").samples.keys.map { key in
                let name = String(key.prefix { $0 != "{" })
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                    return String(name.dropLast(suffix.count))
                }
                return name
            }
        )
        let script = """
            import json, re, sys, yaml
            rules = yaml.safe_load(open(sys.argv[1]))
            exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
            dash = json.load(open(sys.argv[2]))
            exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
            names = set()
            for e in exprs:
                for n in re.findall(r"\\b((?:gatehouse|process)_[a-z_]+)", e):
                    names.add(re.sub(r"_(bucket|sum|count)$", "", n))
            print(json.dumps({"names": sorted(names), "rules": len(exprs)}))
            """
        let result = try ProcessRunner.run(
            "python3",
            [
                "-c", script, Repository.root + "/deploy/prometheus/gatehouse-alerts.yml",
                Repository.root + "/deploy/grafana/gatehouse-dashboard.json",
            ],
            timeout: 20
        )
        try #require(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let names = try #require(object["names"] as? [String])
        #expect(names.count >= 15)
        let missing = names.filter { !served.contains($0) }
        #expect(missing.isEmpty, "not served: \(missing)")
    }
}
