#if canImport(Glibc)
import Glibc
#endif

/// The process's one monotonic clock (`CLOCK_MONOTONIC`): every duration, deadline and timer —
/// the workers' timer heaps, the journal's flush timing, the clients' reply deadlines, the bench
/// — is measured on it, so no two of them can disagree about how much time has passed.
extension Process {
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    public static func monotonicMilliseconds() -> UInt64 { monotonicNanoseconds() / 1_000_000 }
}

/// The wall clock (`CLOCK_REALTIME`), for what is stamped with a date: journal records, JWT
/// claims. Never for durations: it jumps when the system time is set.
public enum WallClock {
    /// Seconds since the epoch, with a fraction.
    public static func now() -> Double {
        let (seconds, nanoseconds) = read()
        return Double(seconds) + Double(nanoseconds) / 1e9
    }

    /// Whole seconds since the epoch.
    public static func seconds() -> Int64 { read().seconds }

    /// Seconds and nanoseconds since the epoch, as one reading.
    public static func read() -> (seconds: Int64, nanoseconds: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (Int64(ts.tv_sec), Int(ts.tv_nsec))
    }

    /// A UTC calendar time: year (e.g. 2026), month 1–12, day 1–31, hour, minute, second.
    public struct UTC: Equatable, Sendable {
        public var year, month, day, hour, minute, second: Int

        public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
            (self.year, self.month, self.day) = (year, month, day)
            (self.hour, self.minute, self.second) = (hour, minute, second)
        }
    }

    /// The UTC calendar time of `seconds` since the epoch (`gmtime_r`).
    public static func utc(_ seconds: Int64) -> UTC {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        return UTC(
            year: Int(parts.tm_year) + 1900,
            month: Int(parts.tm_mon) + 1,
            day: Int(parts.tm_mday),
            hour: Int(parts.tm_hour),
            minute: Int(parts.tm_min),
            second: Int(parts.tm_sec)
        )
    }

    /// Seconds since the epoch of a UTC calendar time (`timegm`; out-of-range fields carry over).
    public static func seconds(of time: UTC) -> Int64 {
        var parts = tm()
        parts.tm_year = Int32(truncatingIfNeeded: time.year - 1900)
        parts.tm_mon = Int32(truncatingIfNeeded: time.month - 1)
        parts.tm_mday = Int32(truncatingIfNeeded: time.day)
        parts.tm_hour = Int32(truncatingIfNeeded: time.hour)
        parts.tm_min = Int32(truncatingIfNeeded: time.minute)
        parts.tm_sec = Int32(truncatingIfNeeded: time.second)
        return Int64(timegm(&parts))
    }
}
