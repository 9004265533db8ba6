/// A JSON value as RFC 8259 defines it, as far as JOSE needs: numbers are doubles.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var number: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    public var object: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}

/// Why a document is not the JSON this parser accepts; `offset` is the byte where it stopped.
public struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict, bounded JSON parser (RFC 8259) for untrusted input: JOSE headers and claims, and
/// JWKS files.
///
/// Strict where lenient parsers are a known source of JOSE bugs: a member name twice in one
/// object is an error (RFC 7515 §5.2 allows rejecting it, and two readers taking different
/// copies is how signature checks get bypassed); strings must be valid UTF-8 with no raw control
/// characters and no lone surrogate escapes; numbers follow the grammar exactly; nothing may
/// follow the value. Bounded: nesting depth and members per container are limited, so a small
/// document cannot cost much. Pure and allocation-bounded by the input; no Foundation.
public struct JSONParser {
    public var maxDepth: Int
    /// Members of one object or elements of one array.
    public var maxContainerCount: Int

    public init(maxDepth: Int = 16, maxContainerCount: Int = 1024) {
        self.maxDepth = maxDepth
        self.maxContainerCount = maxContainerCount
    }

    /// Parses `bytes` as one JSON value with optional whitespace around it.
    public func parse(_ bytes: some Collection<UInt8>) throws(JSONError) -> JSONValue {
        var reader = Reader(bytes: Array(bytes), limits: self)
        reader.skipWhitespace()
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.index == reader.bytes.count else { throw reader.error("trailing characters") }
        return value
    }

    private struct Reader {
        let bytes: [UInt8]
        let limits: JSONParser
        var index = 0

        init(bytes: [UInt8], limits: JSONParser) {
            self.bytes = bytes
            self.limits = limits
        }

        func error(_ reason: String) -> JSONError { JSONError(offset: index, reason: reason) }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws(JSONError) -> JSONValue {
            guard let c = peek else { throw error("unexpected end") }
            switch c {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return .number(try number())
            default:
                throw error("unexpected character")
            }
        }

        mutating func literal(_ word: StaticString) throws(JSONError) {
            let count = word.utf8CodeUnitCount
            guard bytes.count - index >= count else { throw error("unexpected end") }
            for i in 0..<count where bytes[index + i] != word.utf8Start[i] {
                throw error("invalid literal")
            }
            index += count
        }

        mutating func object(depth: Int) throws(JSONError) -> JSONValue {
            guard depth <= limits.maxDepth else { throw error("nested too deeply") }
            index += 1  // {
            var members: [String: JSONValue] = [:]
            skipWhitespace()
            if peek == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard peek == UInt8(ascii: "\"") else { throw error("expected a member name") }
                let nameOffset = index
                let name = try string()
                skipWhitespace()
                guard peek == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
                let member = try value(depth: depth)
                guard members.updateValue(member, forKey: name) == nil else {
                    throw JSONError(offset: nameOffset, reason: "duplicate member name")
                }
                guard members.count <= limits.maxContainerCount else { throw error("too many members") }
                skipWhitespace()
                switch peek {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return .object(members)
                default: throw error("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws(JSONError) -> JSONValue {
            guard depth <= limits.maxDepth else { throw error("nested too deeply") }
            index += 1  // [
            var elements: [JSONValue] = []
            skipWhitespace()
            if peek == UInt8(ascii: "]") {
                index += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth))
                guard elements.count <= limits.maxContainerCount else { throw error("too many elements") }
                skipWhitespace()
                switch peek {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return .array(elements)
                default: throw error("expected ',' or ']'")
                }
            }
        }

        mutating func string() throws(JSONError) -> String {
            index += 1  // opening quote
            var out: [UInt8] = []
            while true {
                guard let c = peek else { throw error("unterminated string") }
                switch c {
                case UInt8(ascii: "\""):
                    index += 1
                    // Raw bytes were copied as they came; the escapes were appended as UTF-8.
                    guard let text = String(validating: out, as: UTF8.self) else {
                        throw error("string is not valid UTF-8")
                    }
                    return text
                case UInt8(ascii: "\\"):
                    index += 1
                    try escape(into: &out)
                case 0x00..<0x20:
                    throw error("control character in string")
                default:
                    out.append(c)
                    index += 1
                }
            }
        }

        mutating func escape(into out: inout [UInt8]) throws(JSONError) {
            guard let c = peek else { throw error("unterminated escape") }
            index += 1
            switch c {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one.
                    guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    else { throw error("lone surrogate") }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("lone surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("lone surrogate")
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid code point") }
                out.append(contentsOf: UTF8.encode(unicode)!)
            default:
                throw error("invalid escape")
            }
        }

        mutating func hex4() throws(JSONError) -> UInt32 {
            guard bytes.count - index >= 4 else { throw error("short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let digit: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
                default: throw error("invalid \\u escape")
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, as a finite double.
        mutating func number() throws(JSONError) -> Double {
            let start = index
            if peek == UInt8(ascii: "-") { index += 1 }
            guard let first = peek, isDigit(first) else { throw error("invalid number") }
            index += 1
            if first != UInt8(ascii: "0") { skipDigits() }
            if peek == UInt8(ascii: ".") {
                index += 1
                guard let d = peek, isDigit(d) else { throw error("invalid number") }
                skipDigits()
            }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                index += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
                guard let d = peek, isDigit(d) else { throw error("invalid number") }
                skipDigits()
            }
            guard index - start <= 64 else { throw JSONError(offset: start, reason: "number too long") }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw JSONError(offset: start, reason: "number out of range")
            }
            return value
        }

        mutating func skipDigits() {
            while let c = peek, isDigit(c) { index += 1 }
        }

        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    }
}
