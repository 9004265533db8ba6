import ArgumentParser
import GatehouseAuth
import GatehouseJournal
import GatehouseServer
import GatehouseTLS
import Logging

#if canImport(Glibc)
import Glibc
#endif

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server (the default command).",
        discussion: """
            Durability (--fsync):
              always        an ACK leaves only after the message is on stable storage (fdatasync);
                            messages arriving together share one flush (group commit). Default.
              interval=MS   the journal is flushed at least every MS milliseconds; an ACK may
                            leave up to MS ms before its message is on stable storage, so a power
                            loss can lose acknowledged messages of that window. A crash of the
                            server process alone loses nothing.
              never         the kernel writes back when it likes; an ACK means the message is in
                            the operating system's cache. Survives a server crash, not a power loss.

            Signals: SIGTERM or SIGINT drains (answers what was read, ERR SHUTTING_DOWN, exit 0 within
            --drain-timeout); a second one exits at once. SIGHUP reloads the certificate chain and key, the client CA, the CRL, the client map,
            the tokens file and the JWKS (a broken file is refused and the old material stays), and reopens
            the journal by path (for external rotation tools).

            Access tokens (--jwt-jwks, --jwt-issuer, --jwt-audience): AUTH <user> <jwt>
            accepts a JWT signed by a key of the JWKS, with matching iss and aud, within
            exp and nbf (give or take --jwt-leeway), whose --jwt-user-claim is <user>.
            Such a connection may AUTH again with a fresh token for the same user; at
            expiry it gets ERR AUTH_EXPIRED and is closed. See SECURITY.md.
            """
    )

    @Option(help: "Address to listen on: '::' (all, IPv4 and IPv6), '0.0.0.0', '127.0.0.1', '::1' or a name.")
    var host: String = "::"
    @Option(help: "TCP port (0: any free port, printed at start).")
    var port: Int = 9999
    @Option(help: "PEM certificate chain, server certificate first.")
    var cert: String?
    @Option(help: "PEM private key of the certificate (must not be readable by other users).")
    var key: String?
    @Option(help: "Tokens file (see 'gatehouse-server token').")
    var tokens: String?
    @Option(help: "Journal file (JSON lines), created if missing.")
    var journal: String = Defaults.journal
    @Option(help: "Durability policy: always, interval=<ms> or never.")
    var fsync: String = "always"
    @Option(
        name: .customLong("journal-queue"),
        help: "Messages waiting for the journal (all clients) past which the server stops reading until it catches up."
    )
    var journalQueue: Int = 65_536
    @Option(
        name: .customLong("journal-max-bytes"),
        help:
            "Roll the journal into numbered segments (FILE.000001, …) past this size; 0 never rolls. The active file is checked in full at start, so this also bounds start-up time."
    )
    var journalMaxBytes: Int = 1 << 30
    @Option(help: "Worker threads (default: one per core).")
    var workers: Int = 0
    @Option(name: .customLong("min-tls"), help: "Lowest TLS version: 1.3, or 1.2 (then AEAD suites with ECDHE only).")
    var minTLS: String = "1.3"
    @Option(name: .customLong("max-line"), help: "Longest request line in bytes, CR and LF included.")
    var maxLine: Int = 65_536
    @Option(name: .customLong("error-budget"), help: "ERR replies a connection may get before it is closed.")
    var errorBudget: Int = 10
    @Option(name: .customLong("handshake-timeout"), help: "Seconds a client has to finish the TLS handshake.")
    var handshakeTimeout: Double = 10
    @Option(name: .customLong("idle-timeout"), help: "Seconds without a complete line before ERR IDLE_TIMEOUT.")
    var idleTimeout: Double = 300
    @Option(name: .customLong("drain-timeout"), help: "Seconds a graceful shutdown may take.")
    var drainTimeout: Double = 10
    @Option(name: .customLong("max-connections"), help: "Connections past which new clients get ERR BUSY.")
    var maxConnections: Int = 10_000
    @Option(
        name: .customLong("max-connections-per-peer"),
        help: "Concurrent connections from one address (0: no limit)."
    )
    var maxConnectionsPerPeer: Int = 0
    @Option(name: .customLong("client-ca"), help: "PEM bundle of CAs for client certificates.")
    var clientCA: String?
    @Option(name: .customLong("client-auth"), help: "Client certificates: off, optional or required.")
    var clientAuth: String = "off"
    @Option(help: "PEM file of CRLs for the client CA(s): revoked client certificates are refused.")
    var crl: String?
    @Option(
        name: .customLong("client-map"),
        help: "Map of client-certificate names (CN:, DNS:, email:, URI:) to users."
    )
    var clientMap: String?
    @Option(
        name: .customLong("auth-failure-limit"),
        help: "Failed AUTHs per peer address before AUTH gets ERR RATE_LIMITED (0: no limit)."
    )
    var authFailureLimit: Int = 10
    @Option(
        name: .customLong("auth-failure-window"),
        help: "Seconds over which a peer's allowance of failed AUTHs refills."
    )
    var authFailureWindow: Double = 60
    @Option(name: .customLong("max-msg-rate"), help: "MSG lines per second per connection, as N or N/s (0: no limit).")
    var maxMsgRate: String = "0"
    @Option(
        name: .customLong("session-tickets"),
        help: "TLS 1.3 session tickets sent per handshake (0 disables resumption)."
    )
    var sessionTickets: Int = 1
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
    @OptionGroup(title: "OAuth 2.0 access tokens (JWT)") var jwt: JWTOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard workers >= 0 && workers <= 256 else { throw ValidationError("--workers must be 0 to 256") }
        guard TLSMinimumVersion(rawValue: minTLS) != nil else { throw ValidationError("--min-tls must be 1.3 or 1.2") }
        guard maxLine >= 16 && maxLine <= 16 << 20 else { throw ValidationError("--max-line must be 16 to 16777216") }
        guard errorBudget >= 1 else { throw ValidationError("--error-budget must be at least 1") }
        guard handshakeTimeout > 0, idleTimeout > 0, drainTimeout > 0 else {
            throw ValidationError("timeouts must be positive")
        }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard maxConnectionsPerPeer >= 0 else { throw ValidationError("--max-connections-per-peer must be 0 or more") }
        guard journalQueue >= 1 else { throw ValidationError("--journal-queue must be at least 1") }
        if journalMaxBytes != 0 && journalMaxBytes < 4096 {
            throw ValidationError("--journal-max-bytes must be 0 (never roll) or at least 4096")
        }
        guard FsyncPolicy(parsing: fsync) != nil else {
            throw ValidationError("--fsync must be always, never or interval=<ms> (1 to 60000)")
        }
        guard let mode = ClientAuthMode(rawValue: clientAuth) else {
            throw ValidationError("--client-auth must be off, optional or required")
        }
        if mode != .off && clientCA == nil {
            throw ValidationError("--client-auth \(clientAuth) needs --client-ca FILE")
        }
        if crl != nil && mode == .off { throw ValidationError("--crl needs --client-auth optional or required") }
        if clientMap != nil && mode == .off {
            throw ValidationError("--client-map needs --client-auth optional or required")
        }
        guard authFailureLimit >= 0 else { throw ValidationError("--auth-failure-limit must be 0 or more") }
        guard authFailureWindow > 0 else { throw ValidationError("--auth-failure-window must be positive") }
        guard Serve.messageRate(maxMsgRate) != nil else {
            throw ValidationError("--max-msg-rate must be N or N/s with N from 0 to 1000000")
        }
        guard (0...10).contains(sessionTickets) else { throw ValidationError("--session-tickets must be 0 to 10") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "gatehouse")

        let certPath = cert ?? Defaults.certificate
        let keyPath = key ?? Defaults.key
        let tokensPath = tokens ?? Defaults.tokens
        if cert == nil && key == nil {
            try DevelopmentSetup.ensureCertificates(cert: certPath, key: keyPath)
        }
        if tokens == nil {
            // Shown at once: should the start fail below, the token is not lost with it.
            if let token = try DevelopmentSetup.ensureTokens(tokensPath) {
                DevelopmentSetup.printWelcome(port: port, token: token, caPath: Defaults.caCertificate)
            }
        } else if !Directories.exists(tokensPath) {
            throw ValidationError(
                "tokens file \(tokensPath) does not exist; create it with: gatehouse-server token add USER --tokens \(tokensPath)"
            )
        }
        try Directories.createParent(of: journal)

        var tls = TLSServerConfiguration(certificateChainFile: certPath, privateKeyFile: keyPath)
        tls.minimumVersion = TLSMinimumVersion(rawValue: minTLS)!
        tls.clientAuth = ClientAuthMode(rawValue: clientAuth)!
        tls.clientCAFile = clientCA
        tls.crlFile = crl
        tls.sessionTickets = sessionTickets
        var config = ServerConfiguration(tls: tls, tokensFile: tokensPath, journalFile: journal)
        config.host = host
        config.port = port
        config.workers = workers
        config.fsync = FsyncPolicy(parsing: fsync)!
        config.journalMaxBytes = journalMaxBytes == 0 ? nil : journalMaxBytes
        config.journalMaxQueued = journalQueue
        config.maxLine = maxLine
        config.errorBudget = errorBudget
        config.handshakeTimeoutMs = Int(handshakeTimeout * 1000)
        config.idleTimeoutMs = Int(idleTimeout * 1000)
        config.drainTimeoutMs = Int(drainTimeout * 1000)
        config.maxConnections = maxConnections
        config.maxConnectionsPerPeer = maxConnectionsPerPeer
        config.clientMapFile = clientMap
        config.authFailureLimit = authFailureLimit
        config.authFailureWindowSeconds = authFailureWindow
        config.maxMessageRate = Serve.messageRate(maxMsgRate)!
        config.jwt = jwt.configuration

        // Block the signals before any thread starts, so that every thread inherits the mask and
        // only the main thread's sigtimedwait sees them.
        let signals = SignalWaiter(SIGTERM, SIGINT, SIGHUP)

        let server: Server
        do { server = try Server(config: config, logger: logger) } catch {
            throw CleanExit.message("gatehouse-server: \(error.message)", code: 1)
        }

        let finished = Finished()
        let waiter = ServerWaiter(server: server, finished: finished)
        var drainDeadline: UInt64?
        while !finished.isSet {
            let signal = signals.wait(timeoutMs: 100)
            switch signal {
            case SIGHUP:
                server.reload()
                server.reopenJournal()
            case SIGTERM, SIGINT:
                if drainDeadline == nil {
                    logger.info("draining", metadata: ["signal": "\(signal == SIGTERM ? "SIGTERM" : "SIGINT")"])
                    server.drain()
                    drainDeadline = monotonicMs() + UInt64(config.drainTimeoutMs)
                } else {
                    // Second signal: leave now. Every ACK already sent is on disk under the policy.
                    logger.warning("second signal: exiting at once")
                    Glibc.exit(1)
                }
            default:
                break
            }
            if let deadline = drainDeadline, monotonicMs() > deadline {
                logger.warning("drain deadline passed; closing the remaining connections")
                server.stopNow()
                drainDeadline = UInt64.max
            }
        }
        waiter.join()
    }
}

extension Serve {
    /// `N` or `N/s` as messages per second; nil if malformed.
    static func messageRate(_ text: String) -> Int? {
        let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
        guard let n = Int(number), (0...1_000_000).contains(n) else { return nil }
        return n
    }
}

private func monotonicMs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}

/// A clean exit with a message and a status, for start-up errors.
enum CleanExit {
    static func message(_ text: String, code: Int32) -> ExitCode {
        Console.error(text)
        return ExitCode(code)
    }
}
