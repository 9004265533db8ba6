import Foundation
import TestSupport

/// Runs the built `gatehouse` client against a `ServerProcess`, with a clean environment and a
/// working directory of the server's own, so the development defaults of the repository
/// (data/dev-token, certs/dev/ca.crt) never leak into a test.
struct Client {
    let server: ServerProcess
    var user = "alice"
    var token: String?
    var ca: String?
    var serverName = "localhost"
    var extraEnvironment: [String: String] = [:]

    init(_ server: ServerProcess, user: String = "alice") {
        self.server = server
        self.user = user
        self.token = server.tokens[user]
        self.ca = server.pki.caCertificate
    }

    /// `gatehouse ARGS` with the connection given through GATEHOUSE_* variables, as a user would.
    func run(
        _ arguments: [String],
        stdin: String? = nil,
        stdinBytes: [UInt8]? = nil,
        timeout: TimeInterval = 60
    )
        throws -> ProcessResult
    {
        var env = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": server.directory.path,
            "GATEHOUSE_HOST": server.host,
            "GATEHOUSE_PORT": String(server.port),
            "GATEHOUSE_SERVER_NAME": serverName,
            "GATEHOUSE_USER": user,
        ]
        if let token { env["GATEHOUSE_TOKEN"] = token }
        if let ca { env["GATEHOUSE_CA"] = ca }
        env.merge(extraEnvironment) { $1 }
        let input = stdinBytes.map { Data($0) } ?? stdin.map { Data($0.utf8) } ?? Data()
        return try ProcessRunner.run(
            Repository.clientBinary,
            arguments,
            stdin: input,
            environment: env,
            currentDirectory: server.directory.path,
            timeout: timeout
        )
    }
}

extension ProcessResult {
    var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
}

extension ServerProcess {
    /// The texts of the journal's records, in order.
    func journalTexts() throws -> [String] {
        try journalRecords().map { $0["text"] as? String ?? "<no text>" }
    }
}

/// Parses the one JSON object `gatehouse bench --json` prints.
func benchJSON(_ result: ProcessResult) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
        throw TestSupportError("bench --json printed no object: \(result.stdout) \(result.stderr)")
    }
    return object
}
