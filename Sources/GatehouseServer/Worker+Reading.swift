import GatehouseJWT
import GatehouseJournal
import GatehouseProtocol
import GatehouseSystem
import GatehouseTLS
import Logging

/// Reading: TLS records in, lines framed and answered, within the read budget of a turn.
extension Worker {
    // MARK: reading

    /// Reads what the machine lets it read this turn: lines are framed and answered while the
    /// connection is open, input is dropped while it closes. Stops at want-read, a pause, a close
    /// or the end of the turn's read budget (then the connection is read again next turn).
    func readAvailable(_ conn: Connection) {
        guard !conn.isClosed else { return }
        conn.machine.beginReadTurn(turn)
        // An access token that expired ends the connection before anything more is read.
        if conn.machine.expireCredentialIfDue(now: now) {
            sync(conn)
            return
        }
        reading: while conn.machine.wantsToRead {
            guard conn.machine.hasReadBudget else {
                queueRead(conn)
                break
            }
            if conn.machine.isLingering {
                discardInput(conn)
                return
            }
            if conn.machine.isOpen && shared.journal.isSaturated(adding: batch.byteCount) {
                // Backpressure: the journal is behind. Read nothing more until it catches up;
                // the client is not dropped and nothing it sent is lost.
                if conn.machine.journalSaturated() { stalled.append(conn) }
                break
            }
            switch conn.tls.read(into: readBuffer) {
            case .done(let n):
                stats.count(stats.bytesReceived, n)
                let open = conn.machine.isOpen
                if open { process(conn, UnsafeRawBufferPointer(rebasing: readBuffer[0..<n])) }
                // While closing, what arrives is dropped unread.
                switch conn.machine.bytesRead(n, linePending: open && conn.framer.hasPartialLine, now: now) {
                case .more: continue
                case .yield:
                    queueRead(conn)
                    break reading
                case .stop: break reading
                }
            case .wantRead:
                break reading
            case .wantWrite:
                conn.tlsWantsWrite = true
                break reading
            case .closed:
                // The client is done sending; answer what it sent, then close. Flushing now
                // lingers at once when nothing is in flight, instead of at the closing deadline.
                perform(conn.machine.peerClosed(now: now), conn)
                flush(conn)
                break reading
            case .failed(let error):
                logger.info(
                    "connection failed",
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(error)"]
                )
                close(conn, conn.machine.close(.tlsError))
                return
            }
        }
        sync(conn)
    }

    /// A lingering connection: its close_notify and FIN are sent; read the socket itself (no
    /// TLS any more) and drop what comes, until EOF, an error, or the end of the turn's budget.
    func discardInput(_ conn: Connection) {
        while conn.machine.hasReadBudget {
            switch Socket.receive(conn.fd, into: readBuffer) {
            case .done(0)?, nil:
                // EOF (or a reset): the client has everything it was going to read.
                close(conn, conn.machine.peerClosed(now: now))
                return
            case .done(let n)?:
                _ = conn.machine.bytesRead(n, linePending: false, now: now)
            case .wouldBlock?:
                sync(conn)
                return
            }
        }
        queueRead(conn)
        sync(conn)
    }

    /// Reads `conn` again on the next loop turn.
    func queueRead(_ conn: Connection) {
        guard !conn.isQueuedForRead else { return }
        conn.isQueuedForRead = true
        readAgain.append(conn)
    }

    /// Frames `bytes` into lines and acts on each.
    @inline(__always)
    func process(_ conn: Connection, _ bytes: UnsafeRawBufferPointer) {
        let used = conn.framer.feed(bytes) { event in
            switch event {
            case .line(let line):
                return perform(conn.machine.lineFramed(line, now: now), conn, line)
            case .tooLong:
                return perform(conn.machine.lineTooLong(now: now), conn, UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
        // A STREAM waits for the stream's other connection: the lines after it are framed later.
        if used < bytes.count && conn.machine.isAwaitingStream {
            conn.heldInput.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
        }
    }

    /// Does what the machine asked for one line. Returns false when the connection stops reading.
    @inline(__always)
    func perform(_ step: ConnectionStateMachine.LineStep, _ conn: Connection, _ line: UnsafeRawBufferPointer) -> Bool {
        switch step {
        case .next:
            return true
        case .journal(let text, let n):
            if batchTime.isEmpty { batchTime = clock.now() }
            if batch.startedAt == 0 { batch.startedAt = now }
            if let key = conn.streamKey {
                batch.append(
                    time: batchTime,
                    connectionFields: conn.journalFields,
                    n: n,
                    text: UnsafeRawBufferPointer(rebasing: line[text]),
                    owner: conn.token,
                    stream: key,
                    streamFields: conn.streamFields,
                    seq: UInt64(n)
                )
                return true
            }
            batch.append(
                time: batchTime,
                connectionFields: conn.journalFields,
                n: n,
                text: UnsafeRawBufferPointer(rebasing: line[text]),
                owner: conn.token
            )
            return true
        case .authenticate(let user, let tokenRange):
            // The token is checked first, always: a correct one authenticates even from a
            // throttled address. Only a failure asks whether the address is throttled.
            let token = UnsafeRawBufferPointer(rebasing: line[tokenRange])
            let failure = checkCredential(conn, user: user, token: token)  // nil: accepted (Worker+Credentials)
            let ok = failure == nil
            var throttled = false
            defer {
                let method: WorkerStats.AuthMethod = CompactJWS.looksLikeJWT(token) ? .jwt : .token
                stats.auth(method, ok ? .ok : throttled ? .throttled : .failed)
            }
            if let failure {
                throttled = shared.authenticationThrottled(peer: conn.peer, now: now)
                if !throttled { shared.recordAuthenticationFailure(peer: conn.peer, now: now) }
                logger.info(
                    throttled ? "authentication failed from a throttled address; closing" : "authentication failed",
                    metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "user": "\(user)", "reason": "\(failure)"]
                )
            } else {
                authenticated(conn, user: user)
            }
            let next = conn.machine.authenticationChecked(
                user: user,
                succeeded: ok,
                addressThrottled: throttled,
                now: now,
                expiresAt: ok ? conn.credentialExpiry : nil
            )
            return perform(next, conn, line)
        case .openStream(let name):
            return perform(openStream(conn, name: name), conn, line)
        case .stop:
            return false
        }
    }
}
