import ArgumentParser
import GatehouseAuth
import GatehouseJournal
import GatehouseServer
import GatehouseSystem
import GatehouseTLS
import Logging

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

            Limits and closing: a client has --handshake-timeout for TLS, then --auth-timeout from
            the greeting to authenticate (ERR AUTH_TIMEOUT; PING does not extend it). A line must
            end within --idle-timeout of its first byte, and a connection with no complete line and
            no reply for --idle-timeout gets ERR IDLE_TIMEOUT. Replies queued for one client (unsent,
            or waiting behind an ACK) are bounded at 256 KiB, its messages waiting for the journal at
            4096 and --max-in-flight-bytes: past a bound the server stops reading that client until
            it drains. Each turn of a worker's loop reads at most one TLS record (16 KiB) from a
            client, so one fast client cannot starve the others. After the last reply (BYE, ERR ...)
            the server sends close_notify and FIN, reads and drops input until EOF or for up to 2 s,
            then closes, so the client reads everything sent to it.

            Access tokens (--jwt-jwks, --jwt-issuer, --jwt-audience): AUTH <user> <jwt>
            accepts a JWT signed by a key of the JWKS, with matching iss and aud, within
            exp and nbf (give or take --jwt-leeway), whose --jwt-user-claim is <user>.
            Such a connection may AUTH again with a fresh token for the same user; at
            expiry it gets ERR AUTH_EXPIRED and is closed. See SECURITY.md.
            """
    )

    @Option(
        help: """
            JSON file of settings, keyed by flag name ({"idle-timeout": 30}); flags and GATEHOUSE_SERVER_<FLAG> \
            environment variables take precedence over it. Example: deploy/gatehouse.json.
            """
    )
    var config: String?
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
        name: .customLong("journal-queue-bytes"),
        help:
            "Bytes of messages waiting for the journal (all clients) past which the server stops reading until it catches up (65536 to 17179869184; default 64 MiB)."
    )
    var journalQueueBytes: Int = Journal.defaultMaxQueuedBytes
    static let journalQueueBytesRange = 65_536...(16 << 30)
    @Option(
        name: .customLong("journal-max-bytes"),
        help:
            "Roll the journal into numbered segments (FILE.000001, …) past this size; 0 never rolls. The active file is checked in full at start, so this also bounds start-up time."
    )
    var journalMaxBytes: Int = 1 << 30
    @Option(
        name: .customLong("stream-retention"),
        help:
            "Seconds after a stream's last message before the server may forget the stream (1 to 315360000; default 7 days)."
    )
    var streamRetention: Double = Double(Journal.defaultStreamRetention)
    @Option(
        name: .customLong("max-streams"),
        help:
            "Streams the server remembers at most (about 250 bytes each); a STREAM for a new one past it is refused (1 to 10000000)."
    )
    var maxStreams: Int = Journal.defaultMaxStreams
    @Option(
        help:
            "Where messages are stored: journal (the local file, default) or postgresql (a table shared by several instances; see --postgresql)."
    )
    var store: String = "journal"
    @Option(
        help:
            "With --store postgresql: a libpq connection string or URL (postgresql://user@host:5432/db), without a password: it comes from PGPASSWORD, PGPASSFILE (~/.pgpass) or --postgresql-password-file."
    )
    var postgresql: String = ""
    @Option(
        name: .customLong("postgresql-table"),
        help: "Table for messages (NAME or SCHEMA.NAME), created if missing."
    )
    var postgresqlTable: String = "gatehouse_messages"
    @Option(
        name: .customLong("postgresql-password-file"),
        help: "File holding the database password (one line; owned by the server's user, mode 0600)."
    )
    var postgresqlPasswordFile: String = ""
    @Option(
        name: .customLong("node-name"),
        help: "This instance's name in each row's node column (default: the host name)."
    )
    var nodeName: String = ""
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
    @Option(
        name: .customLong("auth-timeout"),
        help:
            "Seconds from the greeting within which a client must authenticate, else ERR AUTH_TIMEOUT (PING does not extend it)."
    )
    var authTimeout: Double = 10
    @Option(
        name: .customLong("idle-timeout"),
        help:
            "Seconds without a complete line or a reply before ERR IDLE_TIMEOUT; a line must also end within this time of its first byte."
    )
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
    @Option(
        name: .customLong("max-in-flight-bytes"),
        help:
            "Bytes of one connection's messages waiting for the journal past which the server stops reading that client until they are stored."
    )
    var maxInFlightBytes: Int = 1 << 20
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
        help:
            "Failed AUTHs per peer address (IPv4, IPv6 /64) before it is throttled: then a wrong token gets ERR RATE_LIMITED and the connection closes; a right one still authenticates (0: no limit)."
    )
    var authFailureLimit: Int = 10
    @Option(
        name: .customLong("auth-failure-window"),
        help: "Seconds over which a peer's allowance of failed AUTHs refills."
    )
    var authFailureWindow: Double = 60
    @Flag(
        name: .customLong("throttle-refuse-connections"),
        help:
            "Close new connections from a throttled address before TLS (off by default: it also refuses a legitimate client behind the same NAT)."
    )
    var throttleRefuseConnections = false
    @Option(
        name: .customLong("throttle-exempt"),
        help: "Addresses --throttle-refuse-connections never refuses, as CIDR,… (e.g. 10.0.0.0/8,2001:db8::/32)."
    )
    var throttleExempt: String?
    @Option(name: .customLong("max-msg-rate"), help: "MSG lines per second per connection, as N or N/s (0: no limit).")
    var maxMsgRate: String = "0"
    @Option(
        name: .customLong("session-tickets"),
        help: "TLS 1.3 session tickets sent per handshake (0 disables resumption)."
    )
    var sessionTickets: Int = 1
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"
    @Flag(
        name: .customLong("proxy-protocol"),
        help:
            "Behind a load balancer: every connection must come from a --proxy-from address and begin with a PROXY protocol header (v1 or v2) naming the client, whose address is then the peer for the journal, throttling, limits and logs."
    )
    var proxyProtocol = false
    @Option(
        name: .customLong("proxy-from"),
        help: "The load balancers' addresses, as CIDR,… (e.g. 10.0.0.5,10.0.1.0/24); needed with --proxy-protocol."
    )
    var proxyFrom: String?
    @Option(
        name: .customLong("metrics-address"),
        help:
            "Serve /metrics (Prometheus), /healthz and /readyz over plain HTTP on HOST:PORT ([::1]:9100 for IPv6). Off by default; bind it to loopback or a private address."
    )
    var metricsAddress: String?
    @Option(
        name: .customLong("log-format"),
        help: "Log lines as text (key=value) or json (one object per line, for log shippers)."
    )
    var logFormat: String = "text"
    @Flag(
        name: .customLong("allow-group-read"),
        help:
            "Accept a private key, tokens file and client map that their group may read (mode 0640, e.g. Debian's ssl-cert group). Never group-writable, never readable by others."
    )
    var allowGroupRead = false
    @OptionGroup(title: "OAuth 2.0 access tokens (JWT)") var jwt: JWTOptions

    func validate() throws {
        // Every number gets a range here, at start: a value that passes is one the server can
        // compute with (timeouts become nanosecond deadlines; 1e11 s would overflow them).
        try FlagRange.check("--port", port, 0...65535)
        try FlagRange.check("--workers", workers, 0...256)
        try FlagRange.check("--max-line", maxLine, 16...16 << 20, unit: "bytes")
        try FlagRange.check("--error-budget", errorBudget, 1...1_000_000)
        try FlagRange.check("--handshake-timeout", handshakeTimeout, 0.01...3600, unit: "seconds")
        try FlagRange.check("--idle-timeout", idleTimeout, 0.01...604_800, unit: "seconds")
        try FlagRange.check("--drain-timeout", drainTimeout, 0.01...3600, unit: "seconds")
        try FlagRange.check("--max-connections", maxConnections, 1...1_000_000)
        try FlagRange.check("--max-connections-per-peer", maxConnectionsPerPeer, 0...1_000_000)
        try FlagRange.check("--journal-queue", journalQueue, 1...16 << 20, unit: "messages")
        if journalMaxBytes != 0 {
            try FlagRange.check(
                "--journal-max-bytes",
                journalMaxBytes,
                4096...1 << 50,
                unit: "bytes (or 0: never roll)"
            )
        }
        try FlagRange.check("--auth-timeout", authTimeout, 0.001...86_400, unit: "seconds")
        try FlagRange.check("--max-in-flight-bytes", maxInFlightBytes, 4096...(1 << 30), unit: "bytes")
        try FlagRange.check("--journal-queue-bytes", journalQueueBytes, Serve.journalQueueBytesRange, unit: "bytes")
        try FlagRange.check("--auth-failure-limit", authFailureLimit, 0...1_000_000)
        try FlagRange.check("--auth-failure-window", authFailureWindow, 0.001...86_400, unit: "seconds")
        try FlagRange.check("--session-tickets", sessionTickets, 0...10)
        try FlagRange.check("--stream-retention", streamRetention, 1...315_360_000, unit: "seconds")
        try FlagRange.check("--max-streams", maxStreams, 1...10_000_000)
        guard Serve.messageRate(maxMsgRate) != nil else {
            throw FlagRange.Error("--max-msg-rate must be N or N/s with N from 0 to 1000000 (got \(maxMsgRate))")
        }
        guard TLSMinimumVersion(rawValue: minTLS) != nil else {
            throw FlagRange.Error("--min-tls must be 1.3 or 1.2 (got \(minTLS))")
        }
        guard FsyncPolicy(parsing: fsync) != nil else {
            throw FlagRange.Error(
                "--fsync must be always, never or interval=<ms> with ms from 1 to 60000 (got \(fsync))"
            )
        }
        guard let mode = ClientAuthMode(rawValue: clientAuth) else {
            throw FlagRange.Error("--client-auth must be off, optional or required (got \(clientAuth))")
        }
        if mode != .off && clientCA == nil {
            throw FlagRange.Error("--client-auth \(clientAuth) needs --client-ca FILE")
        }
        if crl != nil && mode == .off { throw FlagRange.Error("--crl needs --client-auth optional or required") }
        if clientMap != nil && mode == .off {
            throw FlagRange.Error("--client-map needs --client-auth optional or required")
        }
        try validateStore()
        if let throttleExempt {
            guard AddressRange.list(throttleExempt) != nil else {
                throw FlagRange.Error("--throttle-exempt must be CIDR,… (e.g. 10.0.0.0/8,2001:db8::/32)")
            }
            guard throttleRefuseConnections else {
                throw FlagRange.Error("--throttle-exempt needs --throttle-refuse-connections")
            }
        }
        if proxyProtocol {
            guard let proxyFrom, let ranges = AddressRange.list(proxyFrom), !ranges.isEmpty else {
                throw FlagRange.Error("--proxy-protocol needs --proxy-from CIDR,… (the load balancers' addresses)")
            }
        } else if proxyFrom != nil {
            throw FlagRange.Error("--proxy-from needs --proxy-protocol")
        }
        if let metricsAddress, Serve.hostAndPort(metricsAddress) == nil {
            throw FlagRange.Error(
                "--metrics-address must be HOST:PORT with PORT from 0 to 65535 (got \(metricsAddress))"
            )
        }
        guard ["text", "json"].contains(logFormat) else {
            throw FlagRange.Error("--log-format must be text or json (got \(logFormat))")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw FlagRange.Error("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel)!
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
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
        var config = configuration()
        config.postgres = try postgresSettings()

        // Block the signals before any thread starts, so that every thread inherits the mask and
        // only the main thread's sigtimedwait sees them.
        let signals = SignalWaiter(Signal.terminate, Signal.interrupt, Signal.hangup)

        let server: Server
        do { server = try Server(config: config, logger: logger) } catch {
            throw CleanExit.message("gatehouse-server: \(error.message)", code: 1)
        }

        let finished = Finished()
        let waiter = ServerWaiter(server: server, finished: finished)
        // systemd (Type=notify): ready once the listeners are bound, reloading around SIGHUP,
        // stopping on SIGTERM, and a status line with the counters every few seconds.
        let systemd = SystemdNotifier.fromEnvironment()
        systemd.send("READY=1\nMAINPID=\(GatehouseSystem.Process.id)\nSTATUS=\(Serve.status(server))")
        var nextStatus = monotonicMs() + 5000
        var drainDeadline: UInt64?
        while !finished.isSet {
            let signal = signals.wait(timeoutMs: 100)
            switch signal {
            case Signal.hangup:
                systemd.send("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())")
                server.reload()
                server.reopenJournal()
                systemd.send("READY=1\nSTATUS=\(Serve.status(server))")
            case Signal.terminate, Signal.interrupt:
                if drainDeadline == nil {
                    systemd.send("STOPPING=1\nSTATUS=draining")
                    logger.info(
                        "draining",
                        metadata: ["signal": "\(signal == Signal.terminate ? "SIGTERM" : "SIGINT")"]
                    )
                    server.drain()
                    drainDeadline = monotonicMs() + UInt64(config.drainTimeoutMs)
                } else {
                    // Second signal: leave now. Every ACK already sent is on disk under the policy.
                    // _exit, not exit: exit would run atexit handlers (OpenSSL's cleanup among
                    // them) while workers are still inside OpenSSL.
                    logger.warning("second signal: exiting at once")
                    GatehouseSystem.Process.exitImmediately(1)
                }
            default:
                break
            }
            if systemd.isEnabled && drainDeadline == nil && monotonicMs() >= nextStatus {
                systemd.send("STATUS=\(Serve.status(server))")
                nextStatus = monotonicMs() + 5000
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
    /// The server's configuration from the (validated) flags, with the development defaults for
    /// the files not named.
    func configuration() -> ServerConfiguration {
        var tls = TLSServerConfiguration(
            certificateChainFile: cert ?? Defaults.certificate,
            privateKeyFile: key ?? Defaults.key
        )
        tls.minimumVersion = TLSMinimumVersion(rawValue: minTLS)!
        tls.clientAuth = ClientAuthMode(rawValue: clientAuth)!
        tls.clientCAFile = clientCA
        tls.crlFile = crl
        tls.sessionTickets = sessionTickets
        var config = ServerConfiguration(tls: tls, tokensFile: tokens ?? Defaults.tokens, journalFile: journal)
        config.host = host
        config.port = port
        config.workers = workers
        config.fsync = FsyncPolicy(parsing: fsync)!
        config.journalMaxBytes = journalMaxBytes == 0 ? nil : journalMaxBytes
        config.journalMaxQueued = journalQueue
        config.journalMaxQueuedBytes = journalQueueBytes
        config.streamRetentionSeconds = Int64(streamRetention.rounded(.up))
        config.maxStreams = maxStreams
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
        config.allowGroupReadableSecrets = allowGroupRead
        config.authTimeoutMs = max(1, Int(authTimeout * 1000))
        config.maxInFlightBytesPerConnection = maxInFlightBytes
        config.throttleRefuseConnections = throttleRefuseConnections
        config.throttleExempt = throttleExempt.flatMap(AddressRange.list) ?? []
        config.jwt = jwt.configuration
        config.proxyProtocol = proxyProtocol
        config.proxyFrom = proxyFrom.flatMap(AddressRange.list) ?? []
        config.metricsAddress = metricsAddress.flatMap(Serve.hostAndPort)
        return config
    }

    /// The one-line status systemd shows (`systemctl status`).
    static func status(_ server: Server) -> String {
        let m = server.metrics
        return "listening on \(server.boundAddress); \(m["connections_open"] ?? 0) connections, "
            + "\(m["messages_acknowledged"] ?? 0) messages acknowledged"
    }

    /// `HOST:PORT` or `[IPV6]:PORT`; nil if malformed.
    static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }

    /// `N` or `N/s` as messages per second; nil if malformed.
    static func messageRate(_ text: String) -> Int? {
        let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
        guard let n = Int(number), (0...1_000_000).contains(n) else { return nil }
        return n
    }
}

private func monotonicMs() -> UInt64 { GatehouseSystem.Process.monotonicMilliseconds() }

/// Range checks for numeric flags, each failure one line naming the flag and its range.
enum FlagRange {
    /// A flag value out of range: printed as one line (no usage dump), exit status 1.
    struct Error: Swift.Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func check<T: Comparable>(_ flag: String, _ value: T, _ range: ClosedRange<T>, unit: String = "") throws {
        guard range.contains(value) else {
            let unitText = unit.isEmpty ? "" : " \(unit)"
            throw Error("\(flag) must be from \(range.lowerBound) to \(range.upperBound)\(unitText) (got \(value))")
        }
    }
}

/// A clean exit with a message and a status, for start-up errors.
enum CleanExit {
    static func message(_ text: String, code: Int32) -> ExitCode {
        Console.error(text)
        return ExitCode(code)
    }
}
