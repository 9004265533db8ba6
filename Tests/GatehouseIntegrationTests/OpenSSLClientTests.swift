import Foundation
import TestSupport
import Testing

/// The server driven by real TLS peers, as a user would: `openssl s_client`, `gnutls-cli`, Python.
@Suite("Real TLS clients")
struct OpenSSLClientTests {
    @Test func sClientSessionGetsGreetingAcksAndBye() throws {
        let server = try ServerProcess()
        let token = server.tokens["alice"]!
        let result = try server.sClient("AUTH alice \(token)\nMSG hello\nMSG second message\nPING\nQUIT\n")
        #expect(result.status == 0, "s_client failed: \(result.stderr)")
        #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "ACK 2", "PONG", "BYE"])
        let records = try server.journalRecords()
        #expect(records.map { $0["text"] as? String } == ["hello", "second message"])
        #expect(records.map { $0["user"] as? String } == ["alice", "alice"])
    }

    @Test func sClientWithCRLFWorksTheSame() throws {
        let server = try ServerProcess()
        let token = server.tokens["alice"]!
        let result = try server.sClient("AUTH alice \(token)\nMSG with crlf\nQUIT\n", extra: ["-crlf"])
        #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "BYE"])
        // The CR before the LF is dropped: the journal holds the text without it.
        #expect(try server.journalRecords().map { $0["text"] as? String } == ["with crlf"])
    }

    @Test func sClientOverIPv6Loopback() throws {
        let server = try ServerProcess(host: "::1")
        let token = server.tokens["alice"]!
        let result = try server.sClient("AUTH alice \(token)\nMSG over v6\nQUIT\n")
        #expect(replyLines(result.stdout) == ["HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "BYE"])
        let peer = try #require(try server.journalRecords().first?["peer"] as? String)
        #expect(peer.hasPrefix("[::1]:"))
    }

    @Test func sClientRefusesTLS12ByDefault() throws {
        let server = try ServerProcess()
        let result = try server.sClient("PING\n", extra: ["-tls1_2"])
        #expect(!result.stdout.contains("HELLO gatehouse/1"))
        #expect(result.status != 0)
    }

    @Test func gnutlsCliSessionWorks() throws {
        guard (try? ProcessRunner.which("gnutls-cli")) != nil else {
            Issue.record("gnutls-cli is not installed (apt-get install gnutls-bin)")
            return
        }
        let server = try ServerProcess()
        let token = server.tokens["alice"]!
        let result = try ProcessRunner.run(
            "gnutls-cli",
            [
                "--x509cafile", server.pki.caCertificate, "--port", String(server.port), "--logfile=/dev/null",
                "localhost",
            ],
            stdin: Data("AUTH alice \(token)\nMSG from gnutls\nQUIT\n".utf8),
            timeout: 20
        )
        let lines = replyLines(result.stdout).filter { !$0.hasPrefix("-") && !$0.hasPrefix("*") && !$0.hasPrefix("|") }
        #expect(lines.suffix(4) == ["HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "BYE"], "\(result.stdout)")
    }

    @Test func pythonSSLClientWorks() throws {
        let server = try ServerProcess()
        let token = server.tokens["alice"]!
        let script = """
            import socket, ssl, sys
            ctx = ssl.create_default_context(cafile=sys.argv[1])
            with socket.create_connection(("127.0.0.1", int(sys.argv[2]))) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"AUTH alice " + sys.argv[3].encode() + b"\\nMSG caf\\xc3\\xa9\\nQUIT\\n")
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    print(s.version())
                    sys.stdout.write(data.decode())
            """
        let result = try ProcessRunner.run(
            "python3",
            ["-c", script, server.pki.caCertificate, String(server.port), token],
            timeout: 20
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(replyLines(result.stdout) == ["TLSv1.3", "HELLO gatehouse/1", "OK AUTH alice", "ACK 1", "BYE"])
        #expect(try server.journalRecords().first?["text"] as? String == "café")
    }
}
