#if canImport(Glibc)
import Glibc
#endif

/// What a PROXY protocol header (HAProxy's, version 1 text or version 2 binary) says about a
/// connection that a load balancer relays.
public struct ProxyHeader: Equatable, Sendable {
    public enum Source: Equatable, Sendable {
        /// The balancer speaking for itself (v2 `LOCAL`, a health check) or not saying
        /// (v1 `UNKNOWN`, v2 `UNSPEC`/UNIX): the connection's own peer stands.
        case proxy
        /// The client the balancer relays: its address (IPv4 dotted, IPv6 canonical) and port.
        case client(host: String, port: Int)
    }

    public let version: Int
    public let source: Source

    /// `192.0.2.7:5000` or `[2001:db8::7]:5000`, as the server prints peers; nil for `.proxy`.
    public var peerDescription: String? {
        guard case .client(let host, let port) = source else { return nil }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Reads a PROXY header off a socket without ever taking a byte of what follows it (the TLS
/// ClientHello), whatever way the header is split across reads.
///
/// The caller peeks at the socket (`recv` with `MSG_PEEK`), hands what it saw to `step`, and
/// then consumes exactly `consume` bytes: for version 1 the bytes up to the CRLF (or all it saw,
/// when no CRLF is there yet: they can only be header), for version 2 the 16-byte preamble and
/// then its announced length. Bounded: a version 1 line is at most 107 bytes, a version 2
/// header at most `maxBytes`. Pure: no I/O.
public struct ProxyHeaderReader: Sendable {
    public enum Outcome: Equatable, Sendable {
        /// Consume `consume` bytes and peek again when more arrive.
        case needMore(consume: Int)
        /// Consume `consume` bytes: the header ends there.
        case done(ProxyHeader, consume: Int)
        /// Not a valid header: close the connection before TLS. The reason is for the log.
        case invalid(String)
    }

    static let v1Prefix = Array("PROXY ".utf8)
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1MaxBytes = 107

    public let maxBytes: Int
    /// Header bytes consumed so far.
    public private(set) var buffer: [UInt8] = []

    public init(maxBytes: Int = 1536) {
        precondition(maxBytes >= 16 + 216)
        self.maxBytes = maxBytes
    }

    /// `peeked`: the bytes now waiting on the socket (at least one), not yet consumed.
    public mutating func step(peeked: UnsafeRawBufferPointer) -> Outcome {
        guard !peeked.isEmpty else { return .needMore(consume: 0) }
        let seen = buffer + peeked.prefix(maxBytes)
        // Decide the version as soon as the bytes allow ("P" against 0x0D: the first byte does);
        // anything else (a TLS ClientHello starts 0x16 0x03) is refused at its first wrong byte.
        let v1 = min(seen.count, Self.v1Prefix.count)
        if seen.prefix(v1).elementsEqual(Self.v1Prefix.prefix(v1)) {
            return v1 < Self.v1Prefix.count ? take(seen) : stepV1(seen)
        }
        let v2 = min(seen.count, Self.v2Signature.count)
        if seen.prefix(v2).elementsEqual(Self.v2Signature.prefix(v2)) {
            return v2 < Self.v2Signature.count ? take(seen) : stepV2(seen)
        }
        return .invalid("not a PROXY protocol header")
    }

    /// Consumes everything seen so far: all of it is header.
    private mutating func take(_ seen: [UInt8]) -> Outcome {
        let consume = seen.count - buffer.count
        buffer = seen
        return .needMore(consume: consume)
    }

    private mutating func stepV1(_ seen: [UInt8]) -> Outcome {
        let limit = min(seen.count, Self.v1MaxBytes)
        var end: Int?
        for i in 1..<max(1, limit) where seen[i - 1] == 0x0D && seen[i] == 0x0A {
            end = i + 1
            break
        }
        guard let end else {
            if seen.count >= Self.v1MaxBytes { return .invalid("version 1 header longer than 107 bytes") }
            if let bad = seen.firstIndex(where: { $0 < 0x20 && $0 != 0x0D || $0 > 0x7E }) {
                return .invalid("version 1 header holds byte \(seen[bad])")
            }
            return take(seen)
        }
        let consume = end - buffer.count
        buffer = []
        guard let header = Self.parseV1(Array(seen[0..<(end - 2)])) else {
            return .invalid("malformed version 1 header")
        }
        return .done(header, consume: consume)
    }

    /// `PROXY TCP4|TCP6 SRC DST SPORT DPORT` or `PROXY UNKNOWN …`, without the CRLF.
    static func parseV1(_ line: [UInt8]) -> ProxyHeader? {
        let fields = line.split(separator: 0x20, omittingEmptySubsequences: false).map { Array($0) }
        guard fields.count >= 2, fields[0] == Array("PROXY".utf8) else { return nil }
        let family = String(decoding: fields[1], as: UTF8.self)
        if family == "UNKNOWN" { return ProxyHeader(version: 1, source: .proxy) }
        guard fields.count == 6, family == "TCP4" || family == "TCP6" else { return nil }
        let af = family == "TCP4" ? AF_INET : AF_INET6
        guard let source = canonicalAddress(String(decoding: fields[2], as: UTF8.self), family: af),
            canonicalAddress(String(decoding: fields[3], as: UTF8.self), family: af) != nil,
            let sourcePort = port(fields[4]), port(fields[5]) != nil
        else { return nil }
        return ProxyHeader(version: 1, source: .client(host: source, port: sourcePort))
    }

    private static func port(_ digits: [UInt8]) -> Int? {
        guard (1...5).contains(digits.count), digits.allSatisfy({ (0x30...0x39).contains($0) }),
            digits.count == 1 || digits[0] != 0x30
        else { return nil }
        let value = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return value <= 65535 ? value : nil
    }

    private mutating func stepV2(_ seen: [UInt8]) -> Outcome {
        guard seen.count >= 16 else { return take(seen) }
        let versionCommand = seen[12]
        guard versionCommand >> 4 == 2 else { return .invalid("version 2 header with version \(versionCommand >> 4)") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid("version 2 header with command \(command)") }
        let length = Int(seen[14]) << 8 | Int(seen[15])
        guard 16 + length <= maxBytes else { return .invalid("version 2 header of \(16 + length) bytes") }
        guard seen.count >= 16 + length else {
            // The preamble is known: take it, then exactly what it announces, never more.
            let want = min(seen.count, 16 + length)
            let consume = want - buffer.count
            buffer = Array(seen[0..<want])
            return .needMore(consume: consume)
        }
        let consume = 16 + length - buffer.count
        let body = Array(seen[16..<(16 + length)])
        buffer = []
        if command == 0 { return .done(ProxyHeader(version: 2, source: .proxy), consume: consume) }
        let family = seen[13] >> 4
        let transport = seen[13] & 0x0F
        switch family {
        case 0, 3:  // UNSPEC, UNIX: no IP address to carry
            return .done(ProxyHeader(version: 2, source: .proxy), consume: consume)
        case 1, 2:
            guard transport == 1 else { return .invalid("version 2 header for a non-stream transport") }
            let size = family == 1 ? 4 : 16
            guard body.count >= 2 * size + 4 else { return .invalid("version 2 address block too short") }
            let host = Self.format(Array(body[0..<size]))
            let port = Int(body[2 * size]) << 8 | Int(body[2 * size + 1])
            return .done(ProxyHeader(version: 2, source: .client(host: host, port: port)), consume: consume)
        default:
            return .invalid("version 2 header with address family \(family)")
        }
    }

    /// The canonical text of an address in `family`, or nil if `text` is not one.
    static func canonicalAddress(_ text: String, family: Int32) -> String? {
        var bytes = [UInt8](repeating: 0, count: family == AF_INET ? 4 : 16)
        guard bytes.withUnsafeMutableBytes({ inet_pton(family, text, $0.baseAddress) }) == 1 else { return nil }
        return format(bytes)
    }

    static func format(_ address: [UInt8]) -> String {
        let family = address.count == 4 ? AF_INET : AF_INET6
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = address.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(cString: text)
    }
}
