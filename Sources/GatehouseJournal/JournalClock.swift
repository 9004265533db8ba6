#if canImport(Glibc)
import Glibc
#endif

/// Formats the wall clock as `2026-11-25T20:49:47.123Z` for journal records, cheaply: the
/// part up to the seconds is formatted once per second and reused. One per worker thread.
public struct JournalClock {
    private var cachedSecond: Int = -1
    private var cachedPrefix: [UInt8] = []

    public init() {}

    /// The current UTC time with milliseconds.
    public mutating func now() -> [UInt8] {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let second = ts.tv_sec
        if second != cachedSecond {
            var t = time_t(second)
            var parts = tm()
            gmtime_r(&t, &parts)
            let text =
                "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T"
                + "\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec))."
            cachedPrefix = Array(text.utf8)
            cachedSecond = second
        }
        let ms = Int(ts.tv_nsec / 1_000_000)
        var out = cachedPrefix
        out.append(0x30 + UInt8(ms / 100))
        out.append(0x30 + UInt8(ms / 10 % 10))
        out.append(0x30 + UInt8(ms % 10))
        out.append(0x5A)  // Z
        return out
    }

    private func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
