import Foundation
import TestSupport
import Testing

/// `--proxy-protocol`: a PROXY header (v1, v2) from a trusted address names the client for the
/// journal, the logs and the AUTH throttle; anything else is closed before TLS. Driven by a
/// Python `ssl` client that writes the header itself, and by a real HAProxy with send-proxy-v2.
@Suite("PROXY protocol")
struct ProxyProtocolTests {
    /// Connects (from `source`), writes `header` (in two parts when `split` > 0), then TLS and
    /// the `|`-separated lines; prints the greeting and each reply, or `REFUSED` when the TLS
    /// handshake does not complete.
    static let client = """
        import socket, ssl, sys, time
        port, ca, header, split, source, lines = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3]), \\
            int(sys.argv[4]), sys.argv[5], sys.argv[6]
        try:
            raw = socket.socket()
            raw.settimeout(10)
            if source: raw.bind((source, 0))
            raw.connect(("127.0.0.1", port))
            if split: raw.sendall(header[:split]); time.sleep(0.2); raw.sendall(header[split:])
            elif header: raw.sendall(header)
            tls = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, OSError) as e:
            print("REFUSED")
            sys.exit(0)
        f = tls.makefile("rwb")
        try:
            greeting = f.readline().decode().strip()
        except (ssl.SSLError, OSError):
            greeting = ""
        # A peer that closed before TLS can look like a finished handshake to the client (its
        # own flight is out): what counts is that no greeting comes.
        print(greeting if greeting.startswith("HELLO") else "REFUSED")
        for line in lines.split("|") if lines and greeting.startswith("HELLO") else []:
            f.write((line + "\\n").encode()); f.flush()
            print(f.readline().decode().strip())
        """

    static func v2(command: UInt8 = 1, family: UInt8, body: [UInt8]) -> [UInt8] {
        [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20 | command, family]
            + [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    func run(
        _ server: ServerProcess,
        header: [UInt8],
        split: Int = 0,
        source: String = "",
        lines: [String] = [],
        port: Int? = nil
    ) throws -> [String] {
        let hex = header.map { String(format: "%02x", $0) }.joined()
        let result = try ProcessRunner.run(
            "python3",
            [
                "-c", Self.client, String(port ?? server.port), server.pki.caCertificate, hex, String(split), source,
                lines.joined(separator: "|"),
            ],
            timeout: 30
        )
        guard result.status == 0 else { throw TestSupportError("client failed: \(result.stderr)") }
        return result.stdout.split(separator: "\n").map(String.init)
    }

    func proxiedServer(_ extra: [String] = []) throws -> ServerProcess {
        try ServerProcess(arguments: ["--proxy-protocol", "--proxy-from", "127.0.0.0/8"] + extra)
    }

    @Test func aVersion1HeaderNamesTheClientInTheJournalAndTheLog() throws {
        let server = try proxiedServer()
        let token = server.tokens["alice"]!
        let header = Array("PROXY TCP4 203.0.113.7 127.0.0.1 4242 9999\r\n".utf8)
        let replies = try run(server, header: header, lines: ["AUTH alice \(token)", "MSG via v1", "QUIT"])
        #expect(replies == ["HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "BYE"])
        #expect(try server.journalRecords().map { $0["peer"] as? String } == ["203.0.113.7:4242"])
        #expect(server.waitForLog("peer=203.0.113.7:4242"))
    }

    @Test func aVersion2HeaderSplitAcrossReadsNamesAnIPv6Client() throws {
        let server = try proxiedServer()
        let token = server.tokens["alice"]!
        let address: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7]
        let header = Self.v2(
            family: 0x21,
            body: address + [UInt8](repeating: 0, count: 15) + [1] + [0x01, 0xBB, 0x27, 0x0F]
        )
        let replies = try run(server, header: header, split: 9, lines: ["AUTH alice \(token)", "MSG via v2", "QUIT"])
        #expect(replies == ["HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "BYE"])
        #expect(try server.journalRecords().map { $0["peer"] as? String } == ["[2001:db8::7]:443"])
    }

    @Test func aVersion2LocalHeaderIsTheProxyItself() throws {
        let server = try proxiedServer()
        let replies = try run(server, header: Self.v2(command: 0, family: 0, body: []), lines: ["PING", "QUIT"])
        #expect(replies == ["HELLO gatehouse/1", "PONG", "BYE"])
        #expect(server.waitForLog("peer=127.0.0.1:"))
    }

    /// The throttle counts the address the header carries: guesses "from" one client address
    /// throttle it, and another client behind the same balancer is not affected.
    @Test func theThrottleKeysOnTheCarriedAddress() throws {
        let server = try proxiedServer(["--auth-failure-limit", "2"])
        let guesser = Array("PROXY TCP4 198.51.100.1 127.0.0.1 1000 9999\r\n".utf8)
        let other = Array("PROXY TCP4 198.51.100.2 127.0.0.1 1000 9999\r\n".utf8)
        for _ in 0..<2 {
            #expect(
                try run(server, header: guesser, lines: ["AUTH alice wrong"]).last?.hasPrefix("ERR AUTH_FAILED") == true
            )
        }
        #expect(
            try run(server, header: guesser, lines: ["AUTH alice wrong"]).last?.hasPrefix("ERR RATE_LIMITED") == true
        )
        #expect(try run(server, header: other, lines: ["AUTH alice wrong"]).last?.hasPrefix("ERR AUTH_FAILED") == true)
    }

    @Test(arguments: [
        ("a ClientHello without a header", ""),
        ("a malformed header", "PROXY TCP4 203.0.113.999 127.0.0.1 1 2\r\n"),
        ("an oversized header", "PROXY TCP6 " + String(repeating: "f", count: 200)),
        ("an HTTP request", "GET / HTTP/1.1\r\n\r\n"),
    ])
    func anythingButAHeaderIsClosedBeforeTLS(_ what: String, _ header: String) throws {
        let server = try proxiedServer()
        #expect(try run(server, header: Array(header.utf8)) == ["REFUSED"], "\(what)")
        #expect(server.waitForLog("PROXY header refused; closed before TLS"), "\(what)")
        #expect(!server.log.contains("connection opened"))
    }

    @Test func aSenderNotInProxyFromIsClosedBeforeTLS() throws {
        let server = try ServerProcess(arguments: ["--proxy-protocol", "--proxy-from", "10.0.0.0/8"])
        let header = Array("PROXY TCP4 203.0.113.7 127.0.0.1 4242 9999\r\n".utf8)
        let replies = try run(server, header: header)
        #expect(replies == ["REFUSED"])
        #expect(server.waitForLog("not from a --proxy-from address"))
    }

    /// A real HAProxy in TCP mode with send-proxy-v2 in front: the client's address (127.0.0.2,
    /// not HAProxy's 127.0.0.1) reaches the journal.
    @Test func haproxyPassesTheClientAddressThrough() throws {
        let haproxy = "/usr/sbin/haproxy"
        try #require(FileManager.default.isExecutableFile(atPath: haproxy), "haproxy is not installed")
        let server = try proxiedServer()
        let token = server.tokens["alice"]!
        let front = try MetricsTests.freePort()
        let folder = try TemporaryDirectory(prefix: "gatehouse-haproxy")
        defer { folder.remove() }
        let config = """
            global
                maxconn 100
            defaults
                mode tcp
                timeout connect 5s
                timeout client 30s
                timeout server 30s
            frontend gatehouse
                bind 127.0.0.1:\(front)
                default_backend servers
            backend servers
                server one 127.0.0.1:\(server.port) send-proxy-v2
            """
        try Data((config + "\n").utf8).write(to: URL(fileURLWithPath: folder.file("haproxy.cfg")))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: haproxy)
        process.arguments = ["-db", "-f", folder.file("haproxy.cfg")]
        _ = FileManager.default.createFile(atPath: folder.file("haproxy.log"), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: folder.file("haproxy.log")))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        // HAProxy binds at once, but give it a moment to listen: retry the first connection.
        var replies: [String] = []
        for _ in 0..<50 where process.isRunning {
            replies = try run(
                server,
                header: [],
                source: "127.0.0.2",
                lines: ["AUTH alice \(token)", "MSG through haproxy", "QUIT"],
                port: front
            )
            if replies.first == "HELLO gatehouse/1" { break }
            usleep(100_000)
        }
        let haproxyLog = (try? String(contentsOfFile: folder.file("haproxy.log"), encoding: .utf8)) ?? ""
        #expect(replies == ["HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "BYE"], "\(haproxyLog)\n\(server.log)")
        let peer = try server.journalRecords().first?["peer"] as? String
        #expect(peer?.hasPrefix("127.0.0.2:") == true, "\(peer ?? "-")")
    }
}
