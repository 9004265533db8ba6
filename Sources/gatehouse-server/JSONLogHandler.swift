import GatehouseJournal
import GatehouseSystem
import Logging
import Synchronization

/// `--log-format json`: one JSON object per line on standard error, for log shippers:
/// `{"time":"…Z","level":"info","message":"connection opened","conn":"7","peer":"…",…}`.
/// Metadata keys become fields (a key that would clash with `time`, `level`, `message` or
/// `source` gets a `meta_` prefix); nested metadata becomes JSON objects and arrays.
///
/// Thread-safe: each record is built on the calling thread and written with one `write(2)`,
/// so records from different threads never interleave within a line.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    let label: String

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        write(level: event.level, message: event.message, metadata: event.metadata, source: event.source)
    }

    private func write(
        level: Logger.Level,
        message: Logger.Message,
        metadata explicit: Logger.Metadata?,
        source: String
    ) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let explicit { fields.merge(explicit) { $1 } }
        var clock = JournalClock()
        var out: [UInt8] = Array(#"{"time":""#.utf8) + clock.now()
        out += Array(#"","level":""#.utf8) + Array(level.rawValue.utf8)
        out += Array(#"","message":"#.utf8)
        Self.appendString(message.description, to: &out)
        out += Array(#","source":"#.utf8)
        Self.appendString(source, to: &out)
        for key in fields.keys.sorted() {
            let name = ["time", "level", "message", "source"].contains(key) ? "meta_" + key : key
            out.append(UInt8(ascii: ","))
            Self.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            Self.append(fields[key]!, to: &out)
        }
        out += Array("}\n".utf8)
        try? FileIO.writeAll(2, out)  // a closed stderr: nowhere left to say so
    }

    static func append(_ value: Logger.Metadata.Value, to out: inout [UInt8]) {
        switch value {
        case .string(let s): appendString(s, to: &out)
        case .stringConvertible(let c): appendString(c.description, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (i, v) in values.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                append(v, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let dict):
            out.append(UInt8(ascii: "{"))
            for (i, key) in dict.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(dict[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string with the journal's escaping (quotes, backslash, control characters).
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var copy = text
        copy.withUTF8 { JSON.appendEscaped(UnsafeRawBufferPointer($0), to: &out) }
        out.append(UInt8(ascii: "\""))
    }
}
