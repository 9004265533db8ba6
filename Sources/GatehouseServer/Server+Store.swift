import GatehouseJournal
import GatehousePostgres
import Logging
import Synchronization

/// Building the store the workers submit to: the local journal (the default) or PostgreSQL.
extension Server {
    /// Opens and recovers the journal, with its events logged.
    static func makeJournal(
        _ config: ServerConfiguration,
        logger: Logger,
        health: ServerHealth,
        completion: @escaping @Sendable ([JournalBatch]) -> Void
    ) throws(ServerError) -> Journal {
        let journal: Journal
        do {
            let journalLogger = logger
            let journalPath = config.journalFile
            journal = try Journal(
                path: config.journalFile,
                policy: config.fsync,
                maxBytes: config.journalMaxBytes,
                maxQueuedRecords: config.journalMaxQueued,
                maxQueuedBytes: config.journalMaxQueuedBytes,
                streamRetention: config.streamRetentionSeconds,
                maxStreams: config.maxStreams,
                events: { event in
                    health.record(event)
                    switch event {
                    case .rotated(let segment):
                        journalLogger.info("journal rotated", metadata: ["segment": "\(segment)"])
                    case .reopened:
                        journalLogger.info("journal reopened", metadata: ["path": "\(journalPath)"])
                    case .writeFailed(let why):
                        journalLogger.error(
                            "journal write failed; messages are answered ERR UNAVAILABLE until it works again",
                            metadata: ["error": "\(why)"]
                        )
                    case .recovered:
                        journalLogger.notice("journal writes work again")
                    default:
                        JournalEventLog.log(event, to: journalLogger)
                    }
                },
                completion: completion
            )
        } catch { throw ServerError("journal: \(error)") }
        JournalEventLog.logRecovery(journal.recovery, path: config.journalFile, to: logger)
        if journal.recovery.truncatedBytes > 0 {
            logger.warning(
                "journal: cut a torn last record left by a crash",
                metadata: ["bytes": "\(journal.recovery.truncatedBytes)", "path": "\(config.journalFile)"]
            )
        }
        return journal
    }

    /// Starts the PostgreSQL store. It connects in the background: the server listens while the
    /// database is down, reads nothing until it is up, and logs each outage once.
    static func makePostgresStore(
        _ settings: PostgresSettings,
        config: ServerConfiguration,
        logger: Logger,
        health: ServerHealth,
        completion: @escaping @Sendable ([JournalBatch]) -> Void
    ) throws(ServerError) -> PostgresStore {
        // Not ready (/readyz) until the first connection works.
        health.storeFailing.store(true, ordering: .relaxed)
        let storeLogger = logger
        let table = settings.table
        let connections = PostgresConnectionCount()
        do {
            return try PostgresStore(
                settings: settings,
                maxQueuedRecords: config.journalMaxQueued,
                maxQueuedBytes: config.journalMaxQueuedBytes,
                events: { event in
                    switch event {
                    case .connected:
                        health.storeFailing.store(false, ordering: .relaxed)
                        if connections.next() == 1 {
                            storeLogger.info("postgresql connected", metadata: ["table": "\(table)"])
                        } else {
                            storeLogger.notice("postgresql works again", metadata: ["table": "\(table)"])
                        }
                    case .down(let why):
                        health.storeFailing.store(true, ordering: .relaxed)
                        storeLogger.error(
                            "postgresql unavailable; messages are answered ERR UNAVAILABLE and reading waits until it is back",
                            metadata: ["error": "\(why)"]
                        )
                    case .statementFailed(let why):
                        storeLogger.error(
                            "postgresql insert failed; its messages are answered ERR UNAVAILABLE",
                            metadata: ["error": "\(why)"]
                        )
                    }
                },
                completion: completion
            )
        } catch { throw ServerError("postgresql: \(error)") }
    }
}

/// Counts connections made, so that the first is logged as such and later ones as recoveries.
/// Touched only from the store's thread; the lock makes `Sendable` honest.
private final class PostgresConnectionCount: Sendable {
    private let count = Mutex(0)
    func next() -> Int {
        count.withLock {
            $0 += 1
            return $0
        }
    }
}
