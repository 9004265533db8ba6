import GatehouseTLS

/// A record's chained digest, the `"h"` field: the first 16 bytes of SHA-256 over the previous
/// record's digest (16 bytes, binary; zeros before the first record) and this record's bytes up
/// to the `,"h":` that ends it. The chain runs through every segment, so a changed, removed or
/// reordered record breaks it from there on.
public struct JournalDigest: Sendable, Equatable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    /// The digest "before" the first record of a journal.
    public static let genesis = JournalDigest(high: 0, low: 0)

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The digest of a record whose bytes (without its `h` field) are `record`, after `self`.
    public func next(_ record: UnsafeRawBufferPointer) -> JournalDigest {
        var previous = (high.bigEndian, low.bigEndian)
        var out: (UInt64, UInt64) = (0, 0)
        withUnsafeBytes(of: &previous) { prev in
            withUnsafeMutableBytes(of: &out) { Crypto.chainedDigest(previous: prev, record: record, into: $0) }
        }
        return JournalDigest(high: UInt64(bigEndian: out.0), low: UInt64(bigEndian: out.1))
    }

    /// Appends the 32 lowercase hex digits. Once per record on the journal thread: no table,
    /// no allocation, one append.
    public func appendHex(to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            for i in 0..<32 {
                let word = i < 16 ? high : low
                let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * (i & 15))) & 15
                buffer[i] = nibble < 10 ? 0x30 &+ nibble : 0x57 &+ nibble
            }
            out.append(contentsOf: UnsafeRawBufferPointer(buffer))
        }
    }

    /// Parses 32 hex digits; nil if `hex` is anything else.
    public init?(hex: some Collection<UInt8>) {
        guard hex.count == 32 else { return nil }
        var words: [UInt64] = [0, 0]
        for (i, c) in hex.enumerated() {
            let v: UInt8
            switch c {
            case 0x30...0x39: v = c - 0x30
            case 0x61...0x66: v = c - 0x61 + 10
            default: return nil
            }
            words[i / 16] = words[i / 16] << 4 | UInt64(v)
        }
        self.init(high: words[0], low: words[1])
    }

    public var description: String {
        var out: [UInt8] = []
        appendHex(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// How a record line is laid out around its digest: `{"id":N,…,"text":"…","h":"<32 hex>"}`.
enum RecordLine {
    static let hKey: [UInt8] = Array(#","h":""#.utf8)
    static let end: [UInt8] = Array("\"}\n".utf8)
    /// `,"h":"` + 32 hex + `"}`: the bytes after the hashed part of a line (LF not counted).
    static let suffixLength = 6 + 32 + 2

    /// Splits a line (without its LF) into the hashed part and the stored digest; nil when the
    /// line does not end with a well-formed `h` field.
    static func split(_ line: UnsafeRawBufferPointer) -> (hashed: UnsafeRawBufferPointer, digest: JournalDigest)? {
        let n = line.count
        guard n > suffixLength + 8, line[n - 1] == 0x7D, line[n - 2] == 0x22 else { return nil }
        let keyStart = n - suffixLength
        for (i, b) in hKey.enumerated() where line[keyStart + i] != b { return nil }
        guard let digest = JournalDigest(hex: UnsafeRawBufferPointer(rebasing: line[(keyStart + 6)..<(n - 2)])) else {
            return nil
        }
        return (UnsafeRawBufferPointer(rebasing: line[0..<keyStart]), digest)
    }
}
