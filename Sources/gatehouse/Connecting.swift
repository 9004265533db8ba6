import ArgumentParser
import GatehouseClient
import GatehouseSystem

/// Exit statuses shared by the commands (documented in `gatehouse --help`).
enum ExitStatus {
    /// Some message was refused by the server (the connection itself was fine).
    static let refused: Int32 = 1
    /// Could not connect, verify the server, or authenticate: nothing was sent.
    static let connectFailed: Int32 = 2
    /// The connection broke part-way: some messages are not acknowledged.
    static let interrupted: Int32 = 3
}

/// An open, authenticated (or certificate-authenticated) connection for send and shell.
struct OpenSession {
    let client: GatehouseClient
    let connection: LineConnection
    let greeting: String
    /// Who the server knows us as, or nil when nobody authenticated (shell without a token).
    let user: String?
    /// The token that authenticated the connection (nil: a client certificate, or nobody).
    var token: String? = nil
}

extension ConnectionOptions {
    /// Connects, verifies, reads the greeting and authenticates, turning each failure into a
    /// message a person can act on and `ExitStatus.connectFailed`.
    ///
    /// Pass the `client` of an earlier session to reconnect: it offers that session's TLS
    /// session (unless --no-resume), so the reconnect is a resumed handshake.
    func openSession(
        scratch: ReadScratch,
        requireAuth: Bool,
        client reused: GatehouseClient? = nil
    ) throws
        -> OpenSession
    {
        let config = try configuration()
        let client: GatehouseClient
        if let reused {
            client = reused
        } else {
            do { client = try GatehouseClient(config) } catch {
                Console.error("gatehouse: \(error.message)")
                throw ExitCode(ExitStatus.connectFailed)
            }
        }
        let where_ = "\(config.host):\(config.port)"
        let (connection, greeting): (LineConnection, String)
        do { (connection, greeting) = try client.open(scratch: scratch, timeoutMs: config.timeoutMs) } catch {
            Console.error("gatehouse: \(Self.explain(error, where: where_, config: config))")
            throw ExitCode(ExitStatus.connectFailed)
        }
        let words = greeting.split(separator: " ")
        if words.count >= 4, words[2] == "AUTHENTICATED" {
            return OpenSession(client: client, connection: connection, greeting: greeting, user: String(words[3]))
        }
        guard let token = try token() else {
            if !requireAuth {
                return OpenSession(client: client, connection: connection, greeting: greeting, user: nil)
            }
            Console.error(
                "gatehouse: no token: set GATEHOUSE_TOKEN, or pass --token-file FILE "
                    + "(the development server writes \(Defaults.tokenFile))"
            )
            throw ExitCode(ExitStatus.connectFailed)
        }
        let user = resolvedUser
        do {
            try connection.authenticate(user: user, token: token, scratch: scratch, timeoutMs: config.timeoutMs)
        } catch {
            if case .server(.authFailed) = error.kind {
                Console.error(
                    "gatehouse: authentication failed for user '\(user)': the server refused the user name or token "
                        + "(\(error.message))"
                )
            } else {
                Console.error("gatehouse: authentication failed: \(Self.explain(error, where: where_, config: config))")
            }
            throw ExitCode(ExitStatus.connectFailed)
        }
        // A TLS 1.3 ticket may come after the greeting: by the AUTH reply it has arrived.
        client.keepSession(of: connection)
        return OpenSession(client: client, connection: connection, greeting: greeting, user: user, token: token)
    }

    /// A failure to connect, with a hint at the usual cause.
    static func explain(_ error: ClientError, where place: String, config: ClientConfiguration) -> String {
        let text = error.message
        if text.contains("certificate required") || text.contains("alert handshake failure") {
            return "TLS with \(place) failed: \(text) (the server wants a client certificate: pass --cert and --key)"
        }
        switch error.kind {
        case .tls:
            var hint = ""
            if text.contains("verify") {
                hint =
                    " (the server's certificate did not verify against "
                    + (config.caFile.map { "CA \($0)" } ?? "the system's CA store")
                    + " for the name '\(config.serverName ?? config.host)'; check --ca and --server-name)"
            }
            return "TLS with \(place) failed: \(text)\(hint)"
        case .network:
            return "cannot connect to \(place): \(text)"
        case .server(.busy):
            return "the server at \(place) is at its connection limit: \(text)"
        default:
            return "\(place): \(text)"
        }
    }
}
