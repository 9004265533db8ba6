/// Ciphertext a server session has produced and not yet handed to the kernel: bounded, in order,
/// and holding no memory while empty (an idle connection keeps nothing here).
///
/// Why it exists: OpenSSL writes each handshake flight, each session ticket and each record to
/// its BIO as soon as it has it, and a socket BIO turns every one into a `write`. Collecting
/// them here lets the worker send a whole turn's output for a connection (the server's flight;
/// or the ticket with the greeting behind it; or a batch of ACKs) with one `send`.
///
/// Pure: no system calls. The socket side is `TLSConnection.sendPendingCiphertext()`.
public struct CiphertextBuffer: ~Copyable {
    /// At most this many bytes are held; `append` takes less when it is full.
    public let limit: Int
    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private var start = 0
    private var end = 0

    /// The first allocation: a server flight with a two-certificate chain fits.
    static let initialCapacity = 4096

    public init(limit: Int) {
        precondition(limit > 0, "a ciphertext buffer needs room for at least one byte")
        self.limit = limit
    }

    deinit {
        storage?.deallocate()
    }

    /// Bytes waiting to be sent.
    public var count: Int { end - start }
    public var isEmpty: Bool { end == start }
    /// Whether memory is held (only while bytes wait).
    public var holdsMemory: Bool { storage != nil }

    /// Appends as much of `bytes` as the limit allows, in order; returns how many it took (0
    /// when full: the caller retries after sending).
    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = min(bytes.count, limit - count)
        guard n > 0, let source = bytes.baseAddress else { return 0 }
        if end + n > capacity { makeRoom(for: n) }
        (storage! + end).copyMemory(from: source, byteCount: n)
        end += n
        return n
    }

    /// The waiting bytes, oldest first, for one `send`.
    public func withPending<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.map { UnsafeRawPointer($0 + start) }, count: count))
    }

    /// Drops the first `n` waiting bytes (they were sent). Frees the memory once all are gone.
    public mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= count, "consumed more ciphertext than was waiting")
        start += n
        if start == end { release() }
    }

    /// Forgets everything waiting (the connection is closing) and frees the memory.
    public mutating func discard() {
        release()
    }

    private mutating func release() {
        storage?.deallocate()
        storage = nil
        capacity = 0
        start = 0
        end = 0
    }

    /// Moves the waiting bytes to the front, or into a larger block, so that `n` more fit.
    /// Never beyond `limit`: `append` has already cut `n` to what the limit allows.
    private mutating func makeRoom(for n: Int) {
        let waiting = count
        if let storage, waiting + n <= capacity {
            storage.copyMemory(from: storage + start, byteCount: waiting)
        } else {
            var size = max(capacity, CiphertextBuffer.initialCapacity)
            while size < waiting + n { size *= 2 }
            size = min(size, limit)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            if let storage {
                grown.copyMemory(from: storage + start, byteCount: waiting)
                storage.deallocate()
            }
            storage = grown
            capacity = size
        }
        start = 0
        end = waiting
    }
}
