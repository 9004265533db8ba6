import COpenSSL

/// The few primitives the rest of Gatehouse needs from libcrypto, without exposing OpenSSL types.
public enum Crypto {
    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        let input = Array(bytes)
        input.withUnsafeBytes { inp in
            digest.withUnsafeMutableBytes { out in
                var len: UInt32 = 32
                _ = EVP_Digest(inp.baseAddress, inp.count, out.baseAddress, &len, EVP_sha256(), nil)
            }
        }
        return digest
    }

    /// `count` bytes from OpenSSL's CSPRNG. Traps if the generator fails: there is no safe fallback.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let rc = out.withUnsafeMutableBytes { RAND_bytes($0.baseAddress, Int32(count)) }
        precondition(rc == 1, "RAND_bytes failed")
        return out
    }

    /// Compares two equal-length byte strings in time independent of where they differ.
    /// Different lengths compare unequal (the length is not secret here: digests are fixed-size).
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 }
        }
    }
}
