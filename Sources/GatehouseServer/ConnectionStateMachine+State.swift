/// What the worker reads off the machine after each event: the deadline, whether to read, the
/// phase in short, and the bounds. Computed from the state; nothing here changes it.
extension ConnectionStateMachine {
    /// When the timer must fire, from the phase and the clock readings the events carried.
    var deadline: UInt64 {
        switch phase {
        case .handshaking(let deadline, _):
            return deadline
        case .open(let open):
            // Idle: since the last complete line or written reply. Line: a line must end within
            // the idle timeout from its first byte, whatever trickles in meanwhile.
            var d = lastActivity &+ limits.idleTimeout
            if let started = lineStartedAt { d = min(d, started &+ limits.idleTimeout) }
            if let auth = open.authDeadline { d = min(d, auth) }
            if let expiry = open.credentialExpiry { d = min(d, expiry) }
            return d
        case .closing(_, let deadline, _), .lingering(_, let deadline):
            return deadline
        case .closed:
            return .max
        }
    }

    /// Whether the worker should read the socket now.
    var wantsToRead: Bool {
        switch phase {
        case .open(let open): open.reading == .active
        case .closing(_, _, let reading): reading
        case .lingering: true
        case .handshaking, .closed: false
        }
    }

    var isOpen: Bool {
        if case .open = phase { return true }
        return false
    }

    var isHandshaking: Bool {
        if case .handshaking = phase { return true }
        return false
    }

    var isLingering: Bool {
        if case .lingering = phase { return true }
        return false
    }

    var isClosed: Bool {
        if case .closed = phase { return true }
        return false
    }

    var isBusyRefusal: Bool {
        if case .handshaking(_, true) = phase { return true }
        return false
    }

    /// The reason the connection is closing or closed, if it is.
    var closeReason: CloseReason? {
        switch phase {
        case .closing(let reason, _, _), .lingering(let reason, _), .closed(let reason): reason
        case .handshaking, .open: nil
        }
    }

    /// Whether what this connection holds is over one of its bounds.
    var isOverBounds: Bool {
        replies.queuedBytes > limits.maxQueuedReplyBytes || replies.inFlight >= limits.maxInFlightMessages
            || replies.inFlightBytes > limits.maxInFlightBytes
    }

    /// Whether it is back under half of every bound (the hysteresis keeps pause and resume apart).
    var isUnderHalfBounds: Bool {
        replies.queuedBytes <= limits.maxQueuedReplyBytes / 2 && replies.inFlight <= limits.maxInFlightMessages / 2
            && replies.inFlightBytes <= limits.maxInFlightBytes / 2
    }
}
