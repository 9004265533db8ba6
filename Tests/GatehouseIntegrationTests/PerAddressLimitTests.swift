import Foundation
import TestSupport
import Testing

/// `--max-connections-per-peer` counts an IPv6 /64 as one address, as the AUTH throttle does.
/// Loopback has only ::1, so the test runs the server and a Python `ssl` client in a network
/// namespace of their own (`unshare --net`, root only; CI runs as root) whose loopback holds
/// three addresses: two in one /64, one in the next.
@Suite("Per-address limit")
struct PerAddressLimitTests {
    static let client = """
        import socket, ssl, sys
        port, ca = int(sys.argv[1]), sys.argv[2]
        ctx = ssl.create_default_context(cafile=ca)
        def connect(source):
            raw = socket.create_connection(("2001:db8:1:2::1", port), timeout=5, source_address=(source, 0))
            try:
                tls = ctx.wrap_socket(raw, server_hostname="localhost")
                return tls, tls.recv(100).decode().strip()
            except (ssl.SSLError, OSError) as e:
                return None, "refused"
        held, first = connect("2001:db8:1:2::1")
        _, same64 = connect("2001:db8:1:2::2")
        other, next64 = connect("2001:db8:1:3::1")
        print("first=" + first)
        print("same64=" + same64)
        print("next64=" + next64)
        """

    @Test func twoAddressesInOneSlash64ShareTheLimit() throws {
        try #require(geteuid() == 0, "needs root for a network namespace (CI runs as root)")
        let folder = try TemporaryDirectory(prefix: "gatehouse-peer64")
        defer { folder.remove() }
        let pki = try TestPKI.make(in: folder.file("pki"))
        let tokens = folder.file("tokens")
        let issued = try ProcessRunner.run(Repository.serverBinary, ["token", "add", "alice", "--tokens", tokens])
        try #require(issued.status == 0, "\(issued.stderr)")
        try Data(Self.client.utf8).write(to: URL(fileURLWithPath: folder.file("client.py")))
        let script = """
            set -e
            ip link set lo up
            for a in 2001:db8:1:2::1 2001:db8:1:2::2 2001:db8:1:3::1; do ip -6 addr add $a/64 dev lo nodad; done
            "$SERVER" --cert "$PKI/server.crt" --key "$PKI/server.key" --tokens "$DIR/tokens" \\
                --journal "$DIR/journal.jsonl" --host :: --port 0 --workers 1 \\
                --max-connections-per-peer 1 >"$DIR/server.log" 2>&1 &
            server=$!
            trap 'kill -9 $server 2>/dev/null || true' EXIT
            for i in $(seq 1 300); do
                port=$(grep -o 'address=\\[::\\]:[0-9]*' "$DIR/server.log" | grep -o '[0-9]*$' || true)
                [ -n "$port" ] && break
                sleep 0.05
            done
            python3 "$DIR/client.py" "$port" "$PKI/ca.crt"
            """
        let result = try ProcessRunner.run(
            "unshare",
            ["--net", "--", "bash", "-c", script],
            environment: ProcessInfo.processInfo.environment.merging(
                ["SERVER": Repository.serverBinary, "PKI": pki.directory, "DIR": folder.path],
                uniquingKeysWith: { $1 }
            ),
            timeout: 60
        )
        let log = (try? String(contentsOfFile: folder.file("server.log"), encoding: .utf8)) ?? ""
        #expect(result.status == 0, "\(result.stderr)\n\(log)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines == ["first=HELLO gatehouse/1", "same64=refused", "next64=HELLO gatehouse/1"],
            "\(result.stdout)\n\(log)"
        )
    }
}
