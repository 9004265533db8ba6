import GatehouseSystem
import Logging

/// The PROXY protocol header a trusted load balancer sends before the TLS ClientHello.
extension Worker {
    /// Reads the header without taking a byte of what follows it (peek, then take exactly the
    /// header's bytes), under the handshake deadline. Once it is complete the connection's peer
    /// is the client it names, the per-address checks run on that address, and the TLS
    /// handshake starts; a bad header, or a peer that leaves, closes the connection before TLS.
    func readProxyHeader(_ conn: Connection) {
        guard var reader = conn.proxyReader else { return }
        let peeked = UnsafeMutableRawBufferPointer(rebasing: readBuffer[0..<reader.maxBytes])
        let outcome: ProxyHeaderReader.Outcome
        switch Socket.peek(conn.fd, into: peeked) {
        case .wouldBlock?:
            return
        case .done(let n)? where n > 0:
            outcome = reader.step(peeked: UnsafeRawBufferPointer(rebasing: peeked[0..<n]))
        default:
            close(conn, conn.machine.close(.peerClosedDuringHandshake))
            return
        }
        let scratch = UnsafeMutableRawBufferPointer(rebasing: readBuffer[reader.maxBytes...])
        switch outcome {
        case .needMore(let consume):
            guard Socket.discard(conn.fd, count: consume, scratch: scratch) else {
                close(conn, conn.machine.close(.peerWentAway))
                return
            }
            conn.proxyReader = reader
        case .done(let header, let consume):
            guard Socket.discard(conn.fd, count: consume, scratch: scratch) else {
                close(conn, conn.machine.close(.peerWentAway))
                return
            }
            conn.proxyReader = nil
            if case .client(let host, _) = header.source, let described = header.peerDescription {
                logger.debug(
                    "PROXY header",
                    metadata: ["conn": "\(conn.id)", "proxy": "\(conn.peer)", "peer": "\(described)"]
                )
                conn.peer = described
                conn.peerHost = host
            }
            guard admitProxied(conn) else { return }
            advanceHandshake(conn)
        case .invalid(let why):
            logger.info(
                "PROXY header refused; closed before TLS",
                metadata: ["conn": "\(conn.id)", "peer": "\(conn.peer)", "reason": "\(why)"]
            )
            close(conn, conn.machine.close(.proxyHeaderRefused))
        }
    }

    /// The per-address checks of `open`, on the address the header carried.
    private func admitProxied(_ conn: Connection) -> Bool {
        if refusedAsThrottled(peer: conn.peer, host: conn.peerHost) {
            shared.metrics.throttleRefusals.add(1, ordering: .relaxed)
            logger.debug("connection refused: address throttled", metadata: ["peer": "\(conn.peer)"])
            close(conn, conn.machine.close(.proxyHeaderRefused))
            return false
        }
        guard shared.admit(peer: conn.peerHost) else {
            shared.metrics.peerLimitRefusals.add(1, ordering: .relaxed)
            logger.debug("connection refused: per-address limit", metadata: ["peer": "\(conn.peer)"])
            close(conn, conn.machine.close(.proxyHeaderRefused))
            return false
        }
        conn.admitted = true
        return true
    }
}
