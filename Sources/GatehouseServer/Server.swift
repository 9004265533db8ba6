import GatehouseAuth
import GatehouseJournal
import GatehouseSystem
import GatehouseTLS
public import Logging
import Synchronization

/// The Gatehouse server: listeners, worker threads, journal; started once, stopped once.
///
/// `start` builds everything and returns once the workers accept; `drain` begins a graceful
/// shutdown; `wait` blocks until the workers are gone. Safe to call from any thread.
public final class Server: Sendable {
    private let shared: ServerShared
    private let metricsEndpoint: MetricsEndpoint?
    private let workers: [WorkerHandle]
    /// The address the listeners are bound to (with the real port when 0 was asked for).
    public let boundAddress: String
    public let port: Int

    struct WorkerHandle: Sendable {
        let inbox: WorkerInbox
        let thread: OSThread
    }

    /// Loads TLS material and tokens, recovers the journal, binds, and starts the workers.
    ///
    /// > Warning: blocks on file I/O (keys, tokens, journal recovery) and on the bind.
    public init(config: ServerConfiguration, logger: Logger) throws(ServerError) {
        Process.ignoreSIGPIPE()
        let fdLimit = Process.raiseDescriptorLimit()
        var config = config
        // Keep descriptors in reserve (journal, listeners, epoll, eventfds, busy handshakes,
        // files opened on reload), so that reaching the connection limit never means EMFILE.
        let reserve = 64 + 4 * max(1, config.workers) + config.busyHandshakes
        if config.maxConnections + reserve > fdLimit {
            let lowered = max(1, fdLimit - reserve)
            logger.warning(
                "the descriptor limit is too low for --max-connections; lowering it",
                metadata: ["fd_limit": "\(fdLimit)", "max_connections": "\(lowered)"]
            )
            config.maxConnections = lowered
        }

        // One ring of ticket keys for the life of the process: every context, reloaded ones too.
        config.tls.ticketKeys = TicketKeyRing()
        let tls = try Server.makeTLSContext(config)
        let groupRead = config.allowGroupReadableSecrets
        let tokens: TokenStore
        do { tokens = try TokenFile.load(config.tokensFile, allowGroupRead: groupRead) } catch {
            throw ServerError(error.message)
        }
        let clientMap: ClientIdentityMap?
        do {
            clientMap = try config.clientMapFile.map { path throws(AuthError) in
                try ClientIdentityMap.load(path, allowGroupRead: groupRead)
            }
        } catch {
            throw ServerError(error.message)
        }
        let jwt: JWTVerifier?
        do { jwt = try config.jwt.map(JWTVerifier.load) } catch { throw ServerError(error.message) }
        if let jwt { Server.logJWKS(jwt, logger: logger, message: "JWKS loaded") }
        if Process.effectiveUserID == 0 {
            logger.warning(
                "running as root: gatehouse-server needs no privilege; run it as an unprivileged user (see SECURITY.md)"
            )
        }

        let workerCount = config.workers > 0 ? config.workers : Process.processorCount
        // Inboxes exist before the journal so that its completion handler can reach them.
        var inboxes: [WorkerInbox] = []
        for _ in 0..<workerCount {
            do { inboxes.append(WorkerInbox(wake: try EventFD.create())) } catch {
                throw ServerError("\(error)", cause: error)
            }
        }
        let routes = inboxes
        let health = ServerHealth()
        let deliver: @Sendable ([JournalBatch]) -> Void = { batches in
            // Group the stored batches by worker: one lock and one wake-up per worker.
            var byWorker = [[JournalBatch]](repeating: [], count: routes.count)
            for batch in batches { byWorker[batch.worker].append(batch) }
            for (index, group) in byWorker.enumerated() where !group.isEmpty {
                routes[index].post(batches: group)
            }
        }
        let journal: any MessageStore
        let storeDescription: String
        if let settings = config.postgres {
            journal = try Server.makePostgresStore(
                settings,
                config: config,
                logger: logger,
                health: health,
                completion: deliver
            )
            storeDescription = "postgresql table \(settings.table)"
        } else {
            let local = try Server.makeJournal(config, logger: logger, health: health, completion: deliver)
            journal = local
            storeDescription = "journal \(config.journalFile) next_id \(local.nextID)"
        }

        // One listening socket per worker, all on one port (SO_REUSEPORT): the kernel spreads
        // new connections across workers, with no accept thread and no hand-off.
        var address: SocketAddress
        do {
            guard let first = try SocketAddress.resolve(host: config.host, port: config.port).first else {
                throw ServerError("cannot resolve \(config.host)")
            }
            address = first
        } catch let error as ServerError { throw error } catch {
            throw ServerError("\(error)")
        }
        // SO_REUSEPORT would also let this server share a port that another server (a second
        // gatehouse-server of the same user, an old instance still draining) holds: the kernel
        // would then split clients between two journals. Bind alone once first to be sure the
        // port is free.
        if address.port != 0 {
            do {
                let probe = try Socket.listen(on: address, reusePort: false)
                probe.close()
            } catch {
                journal.shutdown()
                throw ServerError("cannot listen on \(address): \(error)")
            }
        }
        var listeners: [Int32] = []
        for _ in 0..<workerCount {
            do {
                let fd = try Socket.listen(on: address).release()
                if address.port == 0 { address = try Socket.localAddress(fd) }
                listeners.append(fd)
            } catch {
                journal.shutdown()
                throw ServerError("cannot listen on \(address): \(error)")
            }
        }
        self.boundAddress = address.description
        self.port = address.port

        let shared = ServerShared(
            config: config,
            logger: logger,
            tls: tls,
            tokens: tokens,
            clientMap: clientMap,
            jwt: jwt,
            journal: journal,
            health: health,
            workerStats: (0..<workerCount).map { _ in WorkerStats() },
            inboxes: inboxes
        )
        self.shared = shared
        if let (host, port) = config.metricsAddress {
            let exposition = Exposition(shared: shared)
            let notReady: @Sendable () -> String? = {
                shared.health.notReady(
                    openConnections: shared.metrics.connectionsOpen.load(ordering: .relaxed),
                    maxConnections: shared.config.maxConnections
                )
            }
            let routes = MetricsEndpoint.Routes(
                metrics: { exposition.render(ready: notReady() == nil) },
                notReady: notReady
            )
            do {
                // Bound now (a busy port stops the start), served once the workers run.
                metricsEndpoint = try MetricsEndpoint(host: host, port: port, routes: routes)
            } catch {
                journal.shutdown()
                throw ServerError("cannot listen for metrics on \(host) port \(port): \(error)")
            }
        } else {
            metricsEndpoint = nil
        }
        var handles: [WorkerHandle] = []
        for index in 0..<workerCount {
            let worker: Worker
            do {
                worker = try Worker(
                    index: index,
                    shared: shared,
                    listener: OwnedFD(taking: listeners[index]),
                    epoll: try Epoll.create(),
                    inbox: inboxes[index]
                )
            } catch { throw ServerError("worker \(index): \(error)", cause: error) }
            let box = UncheckedBox(worker)
            let thread = OSThread(name: "gh-worker-\(index)") { box.value.run() }
            handles.append(WorkerHandle(inbox: inboxes[index], thread: thread))
        }
        self.workers = handles
        if let metricsEndpoint {
            metricsEndpoint.start()
            logger.info("metrics listening", metadata: ["metrics": "\(metricsEndpoint.address)"])
        }
        logger.info(
            "gatehouse listening",
            metadata: [
                "address": "\(boundAddress)", "workers": "\(workerCount)",
                "tls_min": "\(config.tls.minimumVersion.rawValue)",
                "client_auth": "\(config.tls.clientAuth.rawValue)",
                "certificate": "\(tls.certificateFingerprint ?? "-")", "store": "\(storeDescription)",
                "fsync": "\(config.fsync)", "users": "\(tokens.users.count)",
                "max_connections": "\(config.maxConnections)", "fd_limit": "\(fdLimit)",
            ]
        )
    }

    /// Begins a graceful shutdown: stop accepting, answer what was read, SHUTTING_DOWN, close.
    public func drain() {
        shared.health.draining.store(true, ordering: .relaxed)
        for worker in workers { worker.inbox.post(.drain) }
    }

    /// Closes every connection now.
    public func stopNow() {
        for worker in workers { worker.inbox.post(.stop) }
    }

    /// Waits for every worker to finish, then flushes and closes the journal.
    public func wait() {
        for worker in workers { worker.thread.join() }
        metricsEndpoint?.stop()
        shared.journal.shutdown()
        let stats = shared.journal.statistics
        shared.logger.info(
            "gatehouse stopped",
            metadata: [
                "records": "\(stats.records)", "flushes": "\(stats.flushes)",
                "acknowledged": "\(shared.metrics.messagesAcknowledged.load(ordering: .relaxed))",
            ]
        )
    }

    /// Reloads what SIGHUP reloads: the TLS material (certificate chain, key, client CA, CRL),
    /// the client map, the tokens file and the JWKS. Each part is loaded and checked in full before it
    /// replaces the old one; a part that fails is refused with a log line and the old one stays
    /// in force. New handshakes use the new TLS context; established connections keep theirs.
    ///
    /// > Warning: blocking file I/O; call from the signal-handling thread, not a worker.
    public func reload() {
        reloadTLS()
        reloadClientMap()
        reloadTokens()
        reloadJWKS()
    }

    /// Builds a new TLS context from the configured files and swaps it in.
    public func reloadTLS() {
        do {
            let tls = try Server.makeTLSContext(shared.config)
            let old = shared.currentTLSContext()
            shared.replace(tls: tls)
            shared.metrics.reloadsSucceeded.add(1, ordering: .relaxed)
            shared.logger.info(
                "TLS material reloaded",
                metadata: [
                    "certificate": "\(tls.certificateFingerprint ?? "-")", "crl": "\(shared.config.tls.crlFile ?? "-")",
                    // Changed when the client CA, the CRL or the mode changed: older sessions no longer resume.
                    "sessions_kept": "\(old.sessionIDContext == tls.sessionIDContext)",
                ]
            )
        } catch {
            shared.metrics.reloadsFailed.add(1, ordering: .relaxed)
            shared.logger.error(
                "TLS material not reloaded; the old one stays in force",
                metadata: ["error": "\(error.message)"]
            )
        }
    }

    /// A server TLS context from `config`, its private key read through `SecretFile` (owner and
    /// mode checked on the open descriptor) and handed to OpenSSL from memory.
    ///
    /// > Warning: blocking file I/O.
    static func makeTLSContext(_ config: ServerConfiguration) throws(ServerError) -> TLSContext {
        var tls = config.tls
        do {
            tls.privateKeyPEM = try SecretFile.read(
                tls.privateKeyFile,
                what: "private key",
                allowGroupRead: config.allowGroupReadableSecrets
            )
        } catch { throw ServerError(error.message) }
        do { return try TLSContext(server: tls) } catch { throw ServerError("TLS: \(error)", cause: error) }
    }

    /// Reloads the client map, when one is configured.
    public func reloadClientMap() {
        guard let path = shared.config.clientMapFile else { return }
        do {
            let map = try ClientIdentityMap.load(path, allowGroupRead: shared.config.allowGroupReadableSecrets)
            shared.replace(clientMap: map)
            shared.metrics.reloadsSucceeded.add(1, ordering: .relaxed)
            shared.logger.info("client map reloaded", metadata: ["rules": "\(map.rules.count)"])
        } catch {
            shared.metrics.reloadsFailed.add(1, ordering: .relaxed)
            shared.logger.error(
                "client map not reloaded; the old one stays in force",
                metadata: ["error": "\(error.message)"]
            )
        }
    }

    /// Reloads the tokens file. A broken file is refused and the old tokens stay.
    public func reloadTokens() {
        do {
            let tokens = try TokenFile.load(
                shared.config.tokensFile,
                allowGroupRead: shared.config.allowGroupReadableSecrets
            )
            shared.replace(tokens: tokens)
            shared.metrics.reloadsSucceeded.add(1, ordering: .relaxed)
            shared.logger.info("tokens reloaded", metadata: ["users": "\(tokens.users.count)"])
        } catch {
            shared.metrics.reloadsFailed.add(1, ordering: .relaxed)
            shared.logger.error(
                "tokens not reloaded; the old ones stay in force",
                metadata: ["error": "\(error.message)"]
            )
        }
    }

    /// Reloads the JWKS file, when one is configured. A broken file is refused and the old keys
    /// stay; connections authenticated by a key that is gone keep going until their token expires.
    public func reloadJWKS() {
        guard let config = shared.config.jwt else { return }
        do {
            let jwt = try JWTVerifier.load(config)
            shared.replace(jwt: jwt)
            Server.logJWKS(jwt, logger: shared.logger, message: "JWKS reloaded")
        } catch {
            shared.logger.error(
                "JWKS not reloaded; the old keys stay in force",
                metadata: ["error": "\(error.message)"]
            )
        }
    }

    static func logJWKS(_ jwt: JWTVerifier, logger: Logger, message: Logger.Message) {
        logger.info(
            message,
            metadata: [
                "file": "\(jwt.configuration.jwksFile)", "keys": "\(jwt.keyIDs.joined(separator: ","))",
                "issuer": "\(jwt.policy.issuer)", "audience": "\(jwt.policy.audience)",
            ]
        )
        for note in jwt.skipped {
            logger.warning("JWKS key skipped", metadata: ["file": "\(jwt.configuration.jwksFile)", "why": "\(note)"])
        }
    }

    /// Closes the journal file and opens it again by path (SIGHUP, after an external rotation).
    public func reopenJournal() {
        shared.journal.reopen()
    }

    public var metrics: [String: Int] { shared.metrics.snapshot }
}

/// Moves a non-Sendable value into the one thread that will own it from then on.
private final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
