import GatehouseJournal
import GatehouseProtocol

/// Streams (PROTOCOL.md, Streams): opening one through the registry shared by the workers,
/// fencing its older connection, and answering `OK STREAM` with an exact last number: from the
/// journal's memory at once, or from the database through the store's thread (the connection
/// waits, reading stopped, as it does for an earlier holder; the worker never blocks).
extension Worker {
    /// The registry's name for `conn`.
    func holder(_ conn: Connection) -> StreamRegistry.Holder { .init(worker: index, token: conn.token) }

    /// A `STREAM <name>` line: registers the connection as the stream's holder, tells the
    /// previous holder (on any worker) to close, and answers now if no earlier holder has a
    /// message in flight and the store knows the stream's number at once; otherwise waits
    /// (reading stops) until the last earlier holder releases the stream and the store answers.
    func openStream(_ conn: Connection, name: String) -> ConnectionStateMachine.LineStep {
        guard let user = conn.machine.session.user else { return .stop }
        let key = StreamKey(user: user, name: name)
        guard shared.journal.canOpenStream(key) else {
            logger.warning(
                "stream refused: the server remembers --max-streams streams",
                metadata: ["conn": "\(conn.id)", "user": "\(user)", "stream": "\(name)"]
            )
            return conn.machine.streamRefused(
                "the server remembers as many streams as it may (--max-streams); not opened",
                now: now
            )
        }
        conn.streamKey = key
        conn.streamFields = JSON.streamFields(name: name)
        let (ready, previous) = shared.streams.withLock { $0.open(key, by: holder(conn)) }
        if let previous { shared.inboxes[previous.worker].post(.supersede(token: previous.token)) }
        logger.debug(
            "stream opened",
            metadata: ["conn": "\(conn.id)", "stream": "\(key)", "waits": "\(!ready)"]
        )
        guard ready else { return conn.machine.streamAwaited() }
        guard let last = shared.journal.streamLastNow(key) else {
            askStore(conn, key)
            return conn.machine.streamAwaited()
        }
        return conn.machine.streamOpened(last: Int(last), now: now)
    }

    /// Asks the store's thread where `key` stands; its answer comes back through the inbox
    /// (`streamLooked`). Only the database is asked here, after every earlier holder on this
    /// instance released the stream: the table then holds all they stored.
    private func askStore(_ conn: Connection, _ key: StreamKey) {
        let inbox = shared.inboxes[index]
        let token = conn.token
        shared.journal.lookUpStreamLast(key) { last in inbox.post(.streamLast(token: token, last: last)) }
    }

    /// Another connection took over `token`'s stream.
    func supersede(_ token: UInt64) {
        guard let conn = connection(for: token) else { return }  // closed: it releases on its own
        // Messages still in flight: the new connection's OK STREAM waits for their outcomes.
        let inFlight = conn.machine.replies.inFlight
        conn.machine.superseded(now: now)
        conn.heldInput = []
        logger.info(
            "stream superseded",
            metadata: [
                "conn": "\(conn.id)", "stream": "\(conn.streamKey?.description ?? "-")", "in_flight": "\(inFlight)",
            ]
        )
        releaseStreamIfDone(conn)
        sync(conn)
    }

    /// Every earlier holder of `token`'s stream released it: the store's last number is exact.
    func streamReady(_ token: UInt64) {
        guard let conn = connection(for: token), let key = conn.streamKey else { return }
        guard let last = shared.journal.streamLastNow(key) else {
            if conn.machine.isAwaitingStream { askStore(conn, key) }
            return
        }
        answerStream(conn, conn.machine.streamOpened(last: Int(last), now: now))
    }

    /// The store's answer to `askStore`: `OK STREAM`, or, when the store cannot tell (the
    /// database is unavailable), `ERR UNAVAILABLE` with the stream let go and the connection
    /// plain, as when the stream limit refuses it; the client tries again later.
    func streamLooked(_ token: UInt64, last: UInt64?) {
        // Closed or superseded meanwhile: nothing to answer.
        guard let conn = connection(for: token), let key = conn.streamKey, conn.machine.isAwaitingStream else { return }
        guard let last else {
            logger.warning(
                "stream refused: the store cannot tell where it stands",
                metadata: ["conn": "\(conn.id)", "stream": "\(key)"]
            )
            conn.streamKey = nil
            conn.streamFields = []
            let next = shared.streams.withLock { $0.release(key, by: holder(conn)) }
            if let next { shared.inboxes[next.worker].post(.streamReady(token: next.token)) }
            answerStream(
                conn,
                conn.machine.streamRefused("the store is unavailable; stream \(key.name) not opened", now: now)
            )
            return
        }
        answerStream(conn, conn.machine.streamOpened(last: Int(last), now: now))
    }

    /// Sends a waiting `STREAM`'s answer, then frames the lines that arrived behind it.
    private func answerStream(_ conn: Connection, _ step: ConnectionStateMachine.LineStep) {
        guard perform(step, conn, UnsafeRawBufferPointer(start: nil, count: 0)) else {
            sync(conn)
            return
        }
        // The lines that arrived behind the STREAM, then whatever TLS holds.
        if !conn.heldInput.isEmpty {
            let held = conn.heldInput
            conn.heldInput = []
            held.withUnsafeBytes { process(conn, $0) }
        }
        if conn.machine.wantsToRead { queueRead(conn) }
        markDirty(conn)
        sync(conn)
    }

    /// Tells the registry that `conn` let go of its stream once it has (closing, closed or
    /// superseded) and none of its messages is in flight; wakes the connection that waits.
    func releaseStreamIfDone(_ conn: Connection) {
        guard let key = conn.streamKey, conn.machine.canReleaseStream else { return }
        conn.machine.streamReleased()
        closedHolders[conn.token] = nil
        let next = shared.streams.withLock { $0.release(key, by: holder(conn)) }
        if let next { shared.inboxes[next.worker].post(.streamReady(token: next.token)) }
    }

    /// A journal outcome for a closed connection that held a stream.
    func outcomeAfterClose(_ conn: Connection) {
        conn.machine.outcomeAfterClose()
        releaseStreamIfDone(conn)
    }
}
