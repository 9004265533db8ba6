/// Base64url without padding (RFC 4648 §5, as RFC 7515 §2 uses it), decoded strictly.
///
/// Strict: only the 64 letters of the URL-safe alphabet, no `=`, no whitespace, no length that
/// cannot come from encoding (4n+1), and the unused low bits of the last letter must be zero, so
/// every byte string has exactly one accepted encoding.
public enum JWTBase64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 0xFF for bytes outside the alphabet.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// The bytes `text` encodes, or nil when it is not canonical unpadded base64url.
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        let count = text.count
        guard count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text {
            let v = values[Int(c)]
            guard v != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        // Left-over bits (2 or 4) must be zero: otherwise two texts would decode alike.
        guard accumulator == 0 else { return nil }
        return out
    }

    /// How many bytes a text of `length` letters decodes to (for limits checked before decoding).
    public static func decodedLength(ofEncodedLength length: Int) -> Int { length * 3 / 4 }

    /// Unpadded base64url of `bytes`.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var accumulator: UInt32 = 0
        var bits = 0
        for b in bytes {
            accumulator = accumulator << 8 | UInt32(b)
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[Int(accumulator >> UInt32(bits) & 63)])
            }
            accumulator &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 { out.append(alphabet[Int(accumulator << UInt32(6 - bits) & 63)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
