import GatehouseProtocol
public import GatehouseSystem
public import GatehouseTLS
import Synchronization

/// Makes connections to one server with one TLS context (and, if asked, resumable sessions).
///
/// Thread-safe: the context is immutable and the kept session sits behind a mutex, so one client
/// may serve many threads.
public final class GatehouseClient: Sendable {
    public let configuration: ClientConfiguration
    public let context: TLSContext
    /// The latest resumable session, when `configuration.resumeSessions` is set.
    private let lastSession = Mutex<TLSSession?>(nil)

    public init(_ configuration: ClientConfiguration) throws(ClientError) {
        self.configuration = configuration
        // A write to a connection the server closed must be an error, not a dead process.
        Process.ignoreSIGPIPE()
        var tls = TLSClientConfiguration(caFile: configuration.caFile)
        tls.verifyPeer = configuration.verify
        tls.certificateChainFile = configuration.certificateFile
        tls.privateKeyFile = configuration.keyFile
        tls.enableResumption = configuration.resumeSessions
        do { context = try TLSContext(client: tls) } catch { throw ClientError(.configuration, "\(error)") }
    }

    /// The name sent as SNI and checked against the certificate.
    public var serverName: String { configuration.serverName ?? configuration.host }

    /// A new blocking connection, greeted.
    public func connect() throws(ClientError) -> GatehouseConnection {
        try GatehouseConnection(configuration, context: context)
    }

    /// The server's addresses, resolved once (blocking: getaddrinfo).
    public func resolve() throws(ClientError) -> [SocketAddress] {
        do { return try Socket.resolveForConnect(host: configuration.host, port: configuration.port) } catch {
            throw ClientError(.network, "cannot resolve \(configuration.host): \(error)")
        }
    }

    /// The session to offer on the next connection, if resumption is on and one is kept.
    public var sessionToResume: TLSSession? {
        configuration.resumeSessions ? lastSession.withLock { $0 } : nil
    }

    /// Keeps `connection`'s session for the next connection (after its first line arrived, so
    /// that a TLS 1.3 ticket has been received).
    public func keepSession(of connection: LineConnection) {
        guard configuration.resumeSessions, let session = connection.session, session.isResumable else { return }
        lastSession.withLock { $0 = session }
    }

    /// A new non-blocking line connection, greeted: tries each resolved address in turn.
    /// Returns the connection and its greeting line. `ERR BUSY` instead of a greeting is thrown
    /// as `.server(.busy)`.
    ///
    /// > Warning: blocks for up to `timeoutMs` per address.
    public func open(scratch: ReadScratch, timeoutMs: Int = 10_000) throws(ClientError) -> (LineConnection, String) {
        var lastError = ClientError(.network, "no address for \(configuration.host)")
        for address in try resolve() {
            let connection: LineConnection
            do {
                connection = try LineConnection(
                    address: address,
                    context: context,
                    serverName: serverName,
                    verify: configuration.verify,
                    session: sessionToResume
                )
            } catch {
                lastError = error
                continue
            }
            var lines: [String] = []
            do {
                try connection.waitForLine(&lines, scratch: scratch, timeoutMs: timeoutMs, what: "greeting")
            } catch {
                if error.kind == .network {
                    lastError = error
                    continue
                }  // refused: try the next address
                throw error
            }
            if let error = ClientError.fromReply(lines[0]) { throw error }
            guard case .hello? = Reply(line: lines[0]) else {
                throw ClientError(.protocolViolation, "unexpected greeting: \(lines[0])")
            }
            keepSession(of: connection)
            return (connection, lines[0])
        }
        throw lastError
    }
}
