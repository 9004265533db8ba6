import Foundation
import TestSupport
import Testing

/// `gatehouse send --token-command CMD`: the token comes from a command (an identity provider's
/// CLI; here `scripts/dev-idp.sh mint`), and a send that outlives the token runs the command again
/// and re-authenticates before the token expires.
@Suite("gatehouse send --token-command")
struct TokenCommandTests {
    /// `sh -c 'FEEDER | gatehouse ARGS'`, with the connection in GATEHOUSE_* variables as `Client`
    /// gives it, so that the input can arrive slowly.
    func runFed(_ client: Client, feeder: String, _ arguments: [String]) throws -> ProcessResult {
        var env = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": client.server.directory.path, "GATEHOUSE_HOST": client.server.host,
            "GATEHOUSE_PORT": String(client.server.port), "GATEHOUSE_SERVER_NAME": client.serverName,
            "GATEHOUSE_USER": client.user, "GH_CLIENT": Repository.clientBinary,
        ]
        if let ca = client.ca { env["GATEHOUSE_CA"] = ca }
        if let token = client.token { env["GATEHOUSE_TOKEN"] = token }
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(
            separator: " "
        )
        return try ProcessRunner.run(
            "/bin/sh",
            ["-c", "(\(feeder)) | \"$GH_CLIENT\" \(quoted)"],
            environment: env,
            currentDirectory: client.server.directory.path,
            timeout: 60
        )
    }

    @Test func aLongSendReauthenticatesBeforeItsTokenExpires() throws {
        let idp = try DevIdP()
        let server = try ServerProcess(arguments: idp.serverArguments(leeway: 0))
        var client = Client(server)
        client.token = nil
        // Tokens live 3 s; the input takes about 7 s to arrive.
        let feeder = "for i in 1 2 3 4 5 6 7 8; do echo \"line $i\"; sleep 0.9; done"
        let result = try runFed(
            client,
            feeder: feeder,
            ["send", "--token-command", idp.mintCommand(sub: "alice", ttl: 3)]
        )
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines == (1...8).map { "ACK \($0)" })
        #expect(try server.journalTexts() == (1...8).map { "line \($0)" })
        // One connection, authenticated at the start and at least twice more.
        #expect(server.log.components(separatedBy: "] authenticated").count - 1 >= 3, "\(server.log)")
        #expect(!server.log.contains("AUTH_EXPIRED") && !server.log.contains("access token expired"))
        #expect(server.log.components(separatedBy: "connection opened").count - 1 == 1)
    }

    @Test func withoutTheCommandTheSameSendEndsAtExpiry() throws {
        let idp = try DevIdP()
        let server = try ServerProcess(arguments: idp.serverArguments(leeway: 0))
        var client = Client(server)
        client.token = try idp.mint(["--ttl", "2"])
        let result = try runFed(client, feeder: "for i in 1 2 3 4 5; do echo \"line $i\"; sleep 0.9; done", ["send"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("ERR AUTH_EXPIRED"))
        #expect(result.stderr.contains("not sent: all input after line"))
    }

    @Test func aTokenFromACommandAuthenticatesAnOpaqueOneToo() throws {
        let server = try ServerProcess()
        var client = Client(server)
        client.token = nil
        let file = server.directory.file("token")
        try server.tokens["alice"]!.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try client.run(["send", "--token-command", "cat '\(file)'", "from a command"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutLines == ["ACK 1"])
        // Also through the environment, for send, shell and bench alike.
        client.extraEnvironment["GATEHOUSE_TOKEN_COMMAND"] = "cat '\(file)'"
        #expect(try client.run(["send", "via the environment"]).status == 0)
    }

    @Test func aFailingCommandIsReportedAndNothingIsSent() throws {
        let server = try ServerProcess()
        var client = Client(server)
        client.token = nil
        let failing = try client.run(["send", "--token-command", "echo oops >&2; exit 3", "x"])
        #expect(failing.status == 2)
        #expect(failing.stderr.contains("--token-command: exited with status 3"), "\(failing.stderr)")
        #expect(failing.stderr.contains("oops"))
        let empty = try client.run(["send", "--token-command", "true", "x"])
        #expect(empty.status == 2)
        #expect(empty.stderr.contains("did not print one token"), "\(empty.stderr)")
        let both = try client.run(["send", "--token-command", "true", "--token-file", "/dev/null", "x"])
        #expect(both.status != 0)
        #expect(both.stderr.contains("not both"))
        #expect(try server.journalTexts().isEmpty)
    }
}
