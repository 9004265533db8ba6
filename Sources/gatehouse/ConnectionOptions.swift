import ArgumentParser
import GatehouseClient
import GatehouseSystem

/// The development defaults that `swift run gatehouse-server` (run from the repository root)
/// sets up: its CA, its first user and the token file it keeps for this client.
enum Defaults {
    static let host = "localhost"
    static let port = 9999
    static let caFile = "certs/dev/ca.crt"
    static let user = "dev"
    static let tokenFile = "data/dev-token"
}

/// Options shared by every command. Each falls back to a `GATEHOUSE_*` environment variable,
/// then to the development defaults, so that no flag is needed against the development server.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Server host name or address (env GATEHOUSE_HOST; default localhost).")
    var host: String?
    @Option(help: "Server TCP port (env GATEHOUSE_PORT; default 9999).")
    var port: Int?
    @Option(
        help:
            "PEM CA bundle to verify the server (env GATEHOUSE_CA; default certs/dev/ca.crt if present, else the system store)."
    )
    var ca: String?
    @Option(
        name: .customLong("server-name"),
        help: "Name for SNI and certificate verification (env GATEHOUSE_SERVER_NAME; default: --host)."
    )
    var serverName: String?
    @Option(help: "PEM client certificate for mutual TLS (env GATEHOUSE_CERT).")
    var cert: String?
    @Option(help: "PEM private key of --cert (env GATEHOUSE_KEY; default: --cert).")
    var key: String?
    @Option(help: "User name for AUTH (env GATEHOUSE_USER; default dev).")
    var user: String?
    @Option(
        name: .customLong("token-file"),
        help:
            "File holding the token (env GATEHOUSE_TOKEN_FILE; the token itself may be in env GATEHOUSE_TOKEN; default data/dev-token if present)."
    )
    var tokenFile: String?
    @Option(
        name: .customLong("token-command"),
        help: ArgumentHelp(
            "Command whose output is the token, e.g. an OAuth 2.0 access token from your identity provider (env GATEHOUSE_TOKEN_COMMAND); 'send' runs it again to re-authenticate before the token expires.",
            valueName: "command"
        )
    )
    var tokenCommand: String?
    @Option(
        name: .customLong("timeout"),
        help: "Seconds to wait for connect, handshake and each reply (env GATEHOUSE_TIMEOUT; default 10)."
    )
    var timeout: Double?
    @Flag(
        name: .customLong("no-resume"),
        help: "Do a full TLS handshake on every reconnect instead of offering the previous session."
    )
    var noResume = false

    static func env(_ name: String) -> String? {
        guard let text = GatehouseSystem.Process.environment("GATEHOUSE_" + name) else { return nil }
        return text.isEmpty ? nil : text
    }

    var resolvedHost: String { host ?? Self.env("HOST") ?? Defaults.host }

    func resolvedPort() throws -> Int {
        if let port { return port }
        guard let text = Self.env("PORT") else { return Defaults.port }
        guard let value = Int(text), (1...65535).contains(value) else {
            throw ValidationError("GATEHOUSE_PORT must be a port number, not '\(text)'")
        }
        return value
    }

    var resolvedUser: String { user ?? Self.env("USER") ?? Defaults.user }

    func validate() throws {
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be 1 to 65535") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if tokenFile != nil && tokenCommand != nil {
            throw ValidationError("give --token-file or --token-command, not both")
        }
        _ = try resolvedPort()
    }

    /// The client configuration these options describe.
    /// `resume` nil: resume unless --no-resume (bench modes decide for themselves).
    func configuration(resume: Bool? = nil) throws -> ClientConfiguration {
        var config = ClientConfiguration(host: resolvedHost, port: try resolvedPort())
        config.caFile = ca ?? Self.env("CA") ?? (fileExists(Defaults.caFile) ? Defaults.caFile : nil)
        config.serverName = serverName ?? Self.env("SERVER_NAME")
        config.certificateFile = cert ?? Self.env("CERT")
        config.keyFile = key ?? Self.env("KEY")
        if config.keyFile != nil && config.certificateFile == nil {
            throw ValidationError("--key needs --cert")
        }
        let seconds =
            try timeout ?? Self.env("TIMEOUT").map { text in
                guard let value = Double(text), value > 0 else {
                    throw ValidationError("GATEHOUSE_TIMEOUT must be seconds")
                }
                return value
            } ?? 10
        config.timeoutMs = Int(seconds * 1000)
        config.resumeSessions = resume ?? !noResume
        return config
    }

    /// The command that prints the token, when that is where the token comes from: --token-command,
    /// else GATEHOUSE_TOKEN_COMMAND unless --token-file or GATEHOUSE_TOKEN gives the token itself.
    var resolvedTokenCommand: String? {
        if let tokenCommand { return tokenCommand }
        if tokenFile != nil || Self.env("TOKEN") != nil { return nil }
        return Self.env("TOKEN_COMMAND")
    }

    /// The token: --token-file, --token-command, else GATEHOUSE_TOKEN, GATEHOUSE_TOKEN_COMMAND,
    /// GATEHOUSE_TOKEN_FILE, else the development server's data/dev-token. Nil when none is set
    /// (a client certificate may do).
    ///
    /// > Warning: runs the token command, if that is where the token comes from (up to 30 s).
    func token() throws -> String? {
        if let path = tokenFile { return try readToken(path) }
        if let command = resolvedTokenCommand {
            do { return try TokenCommand.run(command) } catch {
                // Like a refused AUTH: nothing was sent (exit status 2).
                Console.error("gatehouse: \(error.message)")
                throw ExitCode(ExitStatus.connectFailed)
            }
        }
        if let value = Self.env("TOKEN") { return value.trimmingWhitespace() }
        if let path = Self.env("TOKEN_FILE") { return try readToken(path) }
        if fileExists(Defaults.tokenFile) { return try readToken(Defaults.tokenFile) }
        return nil
    }

    private func readToken(_ path: String) throws -> String {
        let bytes: [UInt8]
        let status: FileStatus
        do { (bytes, status) = try FileIO.readFile(path) } catch {
            throw ValidationError("cannot read token file \(path): \(error.reason)")
        }
        if status.permissions & 0o077 != 0 {
            Console.error("gatehouse: warning: token file \(path) is readable by other users (chmod 600 \(path))")
        }
        let token = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty, !token.contains(" ") else { throw ValidationError("token file \(path) holds no token") }
        return token
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

func fileExists(_ path: String) -> Bool { FileIO.exists(path) }
