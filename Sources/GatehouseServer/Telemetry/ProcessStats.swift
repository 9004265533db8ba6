import GatehouseSystem

/// The standard `process_*` figures, read from `/proc/self` at scrape time.
///
/// > Warning: file I/O; runs on the metrics thread only.
struct ProcessStats {
    var cpuSeconds: Double = 0
    var residentBytes: Int = 0
    var virtualBytes: Int = 0
    var openDescriptors: Int = 0
    var maxDescriptors: Int = 0
    var startTimeSeconds: Double = 0

    static func read() -> ProcessStats {
        var stats = ProcessStats()
        let ticks = Double(Process.clockTicksPerSecond)
        let pageSize = Process.pageSize
        // /proc/self/stat: the command name (field 2) may hold spaces; fields count from after ')'.
        if let text = contents("/proc/self/stat"), let close = text.lastIndex(of: ")") {
            let fields = text[text.index(after: close)...].split(separator: " ")
            // After ')': state is index 0, so field N of proc(5) is index N - 3.
            if fields.count > 21 {
                let utime = Double(fields[11]) ?? 0
                let stime = Double(fields[12]) ?? 0
                stats.cpuSeconds = (utime + stime) / ticks
                let startTicks = Double(fields[19]) ?? 0
                stats.startTimeSeconds = bootTime() + startTicks / ticks
                stats.virtualBytes = Int(fields[20]) ?? 0
                stats.residentBytes = (Int(fields[21]) ?? 0) * pageSize
            }
        }
        let entries = FileIO.directoryEntries("/proc/self/fd")
        if !entries.isEmpty {
            stats.openDescriptors = max(0, entries.count - 3)  // ".", "..", and the descriptor listing it
        }
        if let limit = Process.descriptorLimit { stats.maxDescriptors = limit }
        return stats
    }

    private static func bootTime() -> Double {
        guard let text = contents("/proc/stat") else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6)) ?? 0
        }
        return 0
    }

    private static func contents(_ path: String) -> String? {
        guard let fd = try? FileIO.openForReading(path), let bytes = try? FileIO.readAll(fd.raw, limit: 1 << 20)
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
