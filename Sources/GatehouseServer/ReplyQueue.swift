import DequeModule
import GatehouseProtocol

/// The replies of one connection, in the order of the lines they answer, and its messages in
/// flight to the journal. Pure: no I/O.
///
/// A reply with nothing unresolved before it is encoded straight into `bytes`, ready to write.
/// A `MSG` puts its ACK in line as a slot, and every reply after it is encoded behind that
/// slot, until the journal's outcome for it arrives (outcomes of one connection come in the
/// order its messages were submitted). Then `ACK n`, or `ERR UNAVAILABLE`, and the replies
/// behind the slot move to `bytes`. Everything it holds is counted in bytes, so the connection
/// can bound it.
struct ReplyQueue {
    /// One message handed to the journal whose outcome has not arrived.
    struct Slot {
        var n: Int
        /// What the message costs the journal until its outcome arrives (`inFlightBytes`).
        var journalBytes: Int
        /// Replies to later lines, encoded, waiting for this slot's outcome.
        var behind: [UInt8]
    }

    /// Encoded replies; `bytes[start...]` is not yet written.
    private(set) var bytes: [UInt8] = []
    private(set) var start = 0
    private var slots = Deque<Slot>()
    /// Encoded replies waiting behind slots.
    private(set) var waitingBytes = 0
    /// Journal bytes of the messages in flight.
    private(set) var inFlightBytes = 0

    /// Bytes ready and not yet written.
    var unsentBytes: Int { bytes.count - start }
    /// Messages handed to the journal whose outcome has not arrived.
    var inFlight: Int { slots.count }
    /// Every reply byte this connection holds for its client: unsent, and waiting behind ACKs.
    var queuedBytes: Int { unsentBytes + waitingBytes }
    /// Nothing to write and nothing to wait for.
    var isEmpty: Bool { unsentBytes == 0 && slots.isEmpty }

    /// Puts `reply` in line after everything queued so far.
    @inline(__always)
    mutating func push(_ reply: Reply) {
        if slots.isEmpty {
            reply.encode(into: &bytes)
        } else {
            let last = slots.index(before: slots.endIndex)
            let before = slots[last].behind.count
            reply.encode(into: &slots[last].behind)  // in place: Deque's subscript yields it
            waitingBytes += slots[last].behind.count - before
        }
    }

    /// Puts the ACK of message `n` in line; its outcome comes with `resolve`.
    @inline(__always)
    mutating func pushMessage(n: Int, journalBytes: Int) {
        slots.append(Slot(n: n, journalBytes: journalBytes, behind: []))
        inFlightBytes += journalBytes
    }

    /// The journal's outcome for the oldest message in flight: `ACK n`, or `failure`, then the
    /// replies that waited behind it. Returns the message's number.
    @discardableResult
    mutating func resolve(stored: Bool, failure: @autoclosure () -> Reply) -> Int? {
        guard let slot = popSlot() else { return nil }
        inFlightBytes -= slot.journalBytes
        waitingBytes -= slot.behind.count
        if stored {
            Reply.ack(slot.n).encode(into: &bytes)
        } else {
            failure().encode(into: &bytes)
        }
        if !slot.behind.isEmpty { bytes.append(contentsOf: slot.behind) }
        return slot.n
    }

    /// Forgets the oldest message in flight without a reply (its connection is closed).
    mutating func dropOldest() {
        guard let slot = popSlot() else { return }
        inFlightBytes -= slot.journalBytes
        waitingBytes -= slot.behind.count
    }

    /// The oldest slot. A drained queue gives its memory back, so an idle connection holds none.
    @inline(__always)
    private mutating func popSlot() -> Slot? {
        let slot = slots.popFirst()
        if slots.isEmpty && slot != nil { slots = Deque() }
        return slot
    }

    /// Calls `body` with the bytes not yet written.
    @inline(__always)
    func withUnsent<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start...])) }
    }

    /// Drops `n` written bytes; gives the buffer back once everything is written, so an idle
    /// connection holds none (one allocation per written batch is far below the write's cost).
    mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= unsentBytes)
        start += n
        if start == bytes.count {
            bytes = []
            start = 0
        }
    }
}
