/// Messages one worker accepted in one wake-up, serialized and handed to the journal together.
///
/// Ownership moves with the batch: the worker fills it, `Journal.submit` hands it to the journal
/// thread, which sets `firstID` and `outcome` and hands it back through the completion handler.
/// Exactly one thread touches it at a time, which is why `@unchecked Sendable` holds.
public final class JournalBatch: @unchecked Sendable {
    /// The worker that made the batch and receives its completion.
    public let worker: Int
    /// Each record's bytes after its `{"id":N` prefix, up to and with its text's closing quote,
    /// back to back (the journal adds the id, the digest `,"h":"…"}` and the LF).
    public private(set) var tails: [UInt8] = []
    /// End offset in `tails` of each record.
    public private(set) var ends: [Int] = []
    /// An opaque tag per record, for the worker (its connection slot and generation).
    public private(set) var owners: [UInt64] = []

    /// Monotonic ns when the batch's first message was read (the worker's clock), for the ACK
    /// latency the metrics report; 0 when unknown.
    public var startedAt: UInt64 = 0
    /// Set by the journal: the id of the first record; the others follow consecutively.
    public internal(set) var firstID: UInt64 = 0
    /// Set by the journal: whether the records are stored under the policy, or why not.
    public internal(set) var outcome: Outcome = .pending

    public enum Outcome: Sendable, Equatable {
        case pending
        case stored
        case failed(String)
    }

    public init(worker: Int) {
        self.worker = worker
        tails.reserveCapacity(4096)
    }

    public var count: Int { ends.count }
    /// The bytes the batch's records take, as counted against the journal's queue budget.
    public var byteCount: Int { tails.count }
    public var isEmpty: Bool { ends.isEmpty }

    /// Appends one record.
    /// - Parameters:
    ///   - time: the batch's timestamp, already formatted (`JournalClock`).
    ///   - connectionFields: the connection's pre-encoded `,"user":…,"peer":…,"conn":…` fields.
    ///   - n: the message's number on its connection.
    ///   - text: the message text, exactly as received.
    ///   - owner: returned untouched with the completion.
    public func append(
        time: [UInt8],
        connectionFields: [UInt8],
        n: Int,
        text: UnsafeRawBufferPointer,
        owner: UInt64
    ) {
        appendRecord(time: time, connectionFields: connectionFields, n: n, text: text)
        ends.append(tails.count)
        owners.append(owner)
    }

    private func appendRecord(time: [UInt8], connectionFields: [UInt8], n: Int, text: UnsafeRawBufferPointer) {
        tails.append(contentsOf: JSON.timeKey)
        tails.append(contentsOf: time)
        tails.append(contentsOf: connectionFields)
        tails.append(contentsOf: JSON.nKey)
        JSON.appendDecimal(UInt64(n), to: &tails)
        tails.append(contentsOf: JSON.textKey)
        JSON.appendEscaped(text, to: &tails)
        tails.append(0x22)
    }
}

/// The small JSON writer the journal needs: numbers, and strings escaped per RFC 8259.
public enum JSON {
    public static let timeKey: [UInt8] = Array(#","time":""#.utf8)
    public static let nKey: [UInt8] = Array(#","n":"#.utf8)
    public static let textKey: [UInt8] = Array(#","text":""#.utf8)

    /// The fixed fields of one connection, encoded once per connection:
    /// `","user":"alice","peer":"127.0.0.1:5000","conn":17` — starting by closing the time string.
    public static func connectionFields(user: String, peer: String, connection: UInt64) -> [UInt8] {
        var out: [UInt8] = Array(#"","user":""#.utf8)
        Array(user.utf8).withUnsafeBytes { appendEscaped($0, to: &out) }
        out.append(contentsOf: Array(#"","peer":""#.utf8))
        Array(peer.utf8).withUnsafeBytes { appendEscaped($0, to: &out) }
        out.append(contentsOf: Array(#"","conn":"#.utf8))
        appendDecimal(connection, to: &out)
        return out
    }

    @inlinable
    public static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        if value < 10 {
            out.append(0x30 &+ UInt8(value))
            return
        }
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var v = value
        var count = 0
        withUnsafeMutableBytes(of: &scratch) { buf in
            while v > 0 {
                buf[23 - count] = 0x30 &+ UInt8(v % 10)
                v /= 10
                count += 1
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[(24 - count)...]))
        }
    }

    /// Whether any of eight bytes is '"', '\\' or below 0x20 (bytes with the high bit set are
    /// UTF-8 continuation or lead bytes and never need escaping).
    @usableFromInline @inline(__always)
    static func needsEscape(_ x: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ y: UInt64) -> Bool { (y &- ones) & ~y & highs != 0 }
        // Below 0x20: test on the low seven bits of bytes without the high bit.
        let low = x & ~highs
        let below = (low &- ones &* 0x20) & ~low & ~x & highs != 0
        return below || hasZero(x ^ (ones &* 0x22)) || hasZero(x ^ (ones &* 0x5C))
    }

    /// Appends `bytes` (UTF-8) as the inside of a JSON string: `"`, `\` and controls escaped.
    @inlinable
    public static func appendEscaped(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var runStart = 0
        var i = 0
        let n = bytes.count
        while i < n {
            // Eight bytes at a time while none needs escaping (no '"', no '\\', nothing below 0x20).
            if i + 8 <= n {
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                if !needsEscape(word) {
                    i += 8
                    continue
                }
            }
            let b = bytes[i]
            i += 1
            guard b < 0x20 || b == 0x22 || b == 0x5C else { continue }
            if runStart < i - 1 { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<(i - 1)])) }
            runStart = i
            switch b {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            default:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
            }
        }
        if runStart < bytes.count { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart...])) }
    }
}
