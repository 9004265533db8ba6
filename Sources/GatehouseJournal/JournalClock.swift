import GatehouseSystem

/// Formats the wall clock as `2026-11-25T20:49:47.123Z` for journal records, cheaply: the
/// part up to the seconds is formatted once per second and reused. One per worker thread.
public struct JournalClock {
    private var cachedSecond: Int64 = -1
    private var cachedPrefix: [UInt8] = []

    public init() {}

    /// The current UTC time with milliseconds.
    public mutating func now() -> [UInt8] {
        let (second, nanoseconds) = WallClock.read()
        if second != cachedSecond {
            let t = WallClock.utc(second)
            let text =
                "\(t.year)-\(pad(t.month))-\(pad(t.day))T" + "\(pad(t.hour)):\(pad(t.minute)):\(pad(t.second))."
            cachedPrefix = Array(text.utf8)
            cachedSecond = second
        }
        let ms = nanoseconds / 1_000_000
        var out = cachedPrefix
        out.append(0x30 + UInt8(ms / 100))
        out.append(0x30 + UInt8(ms / 10 % 10))
        out.append(0x30 + UInt8(ms % 10))
        out.append(0x5A)  // Z
        return out
    }

    private func pad(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
