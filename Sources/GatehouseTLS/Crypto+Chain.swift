import COpenSSL

extension Crypto {
    /// The first 16 bytes of SHA-256 over `previous` then `record`, written to `out` (16 bytes).
    /// The journal's chained record digest; no allocation, any thread.
    public static func chainedDigest(
        previous: UnsafeRawBufferPointer,
        record: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) {
        precondition(out.count >= 16)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { full in
            COpenSSL_SHA256_two(
                previous.baseAddress,
                previous.count,
                record.baseAddress,
                record.count,
                full.baseAddress
            )
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(full)[0..<16]))
        }
    }
}
