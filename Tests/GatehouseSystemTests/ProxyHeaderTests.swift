import GatehouseSystem
import TestSupport
import Testing

/// The PROXY protocol reader, without sockets: whole headers, headers split at every byte,
/// and the refusals, each before a byte of what follows the header is taken.
@Suite("PROXY header")
struct ProxyHeaderTests {
    static let tls: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]  // the start of a ClientHello

    static func v2(command: UInt8 = 1, family: UInt8, body: [UInt8]) -> [UInt8] {
        [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20 | command, family]
            + [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    static let v2IPv4 = v2(family: 0x11, body: [192, 0, 2, 7, 10, 0, 0, 1, 0x13, 0x88, 0x27, 0x0F])
    static let v2IPv6 = v2(
        family: 0x21,
        body: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [7] + [UInt8](repeating: 0, count: 15)
            + [1] + [0x01, 0xBB, 0x27, 0x0F]
    )
    // With TLVs after the addresses (HAProxy's ALPN and unique-id): they are consumed, not parsed.
    static let v2WithTLVs = v2(
        family: 0x11,
        body: [198, 51, 100, 9, 10, 0, 0, 1, 0xC3, 0x50, 0x27, 0x0F] + [0x01, 0x00, 0x02, 0x68, 0x32]
            + [0x05, 0x00, 0x03, 0x61, 0x62, 0x63]
    )

    /// Feeds `stream` as a socket would, `chunks` bytes arriving at a time: each step peeks
    /// at everything arrived and not consumed. Returns the outcome and the bytes consumed.
    func read(_ stream: [UInt8], chunks: [Int]) -> (ProxyHeaderReader.Outcome, consumed: Int) {
        var reader = ProxyHeaderReader()
        var arrived = 0
        var consumed = 0
        var chunkIndex = 0
        while true {
            arrived = min(stream.count, arrived + max(1, chunks[chunkIndex % chunks.count]))
            chunkIndex += 1
            let outcome = stream[consumed..<arrived].withUnsafeBytes { reader.step(peeked: $0) }
            switch outcome {
            case .needMore(let n):
                consumed += n
                if arrived == stream.count && n == 0 { return (outcome, consumed) }
            case .done(_, let n):
                return (outcome, consumed + n)
            case .invalid:
                return (outcome, consumed)
            }
        }
    }

    func header(_ outcome: ProxyHeaderReader.Outcome) -> ProxyHeader? {
        if case .done(let header, _) = outcome { return header }
        return nil
    }

    @Test(arguments: [
        ("PROXY TCP4 192.0.2.7 10.0.0.1 5000 9999\r\n", "192.0.2.7:5000"),
        ("PROXY TCP6 2001:DB8:0:0:0:0:0:7 2001:db8::1 443 9999\r\n", "[2001:db8::7]:443"),
        ("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 9999\r\n", "[::ffff:192.0.2.1]:1"),
    ])
    func version1CarriesTheClientAddress(_ line: String, _ peer: String) {
        let stream = Array(line.utf8) + Self.tls
        let (outcome, consumed) = read(stream, chunks: [stream.count])
        #expect(header(outcome)?.peerDescription == peer)
        #expect(header(outcome)?.version == 1)
        #expect(consumed == line.utf8.count)
    }

    @Test func version1UnknownAndVersion2LocalStandForTheProxy() {
        let streams: [[UInt8]] = [
            Array("PROXY UNKNOWN\r\n".utf8), Array("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n".utf8),
            Self.v2(command: 0, family: 0x00, body: []),
            Self.v2(command: 0, family: 0x11, body: Array(repeating: 1, count: 12)), Self.v2(family: 0x00, body: []),
        ]
        for stream in streams {
            let (outcome, consumed) = read(stream + Self.tls, chunks: [1000])
            #expect(header(outcome)?.source == .proxy, "\(stream)")
            #expect(consumed == stream.count)
        }
    }

    static let version2Cases: [([UInt8], String)] = [
        (v2IPv4, "192.0.2.7:5000"), (v2IPv6, "[2001:db8::7]:443"), (v2WithTLVs, "198.51.100.9:50000"),
    ]

    @Test(arguments: version2Cases)
    func version2CarriesTheClientAddress(_ stream: [UInt8], _ peer: String) {
        let (outcome, consumed) = read(stream + Self.tls, chunks: [4096])
        #expect(header(outcome)?.peerDescription == peer)
        #expect(header(outcome)?.version == 2)
        #expect(consumed == stream.count)
    }

    /// Split at every size and at random: the same header, and never a byte past it taken.
    @Test func anySplitGivesTheSameHeaderAndTakesNothingAfterIt() {
        var random = SplitMix64(seed: 9)
        let headers: [[UInt8]] = [
            Array("PROXY TCP4 192.0.2.7 10.0.0.1 5000 9999\r\n".utf8), Self.v2IPv4, Self.v2IPv6, Self.v2WithTLVs,
            Array("PROXY UNKNOWN\r\n".utf8),
        ]
        for headerBytes in headers {
            let whole = header(read(headerBytes + Self.tls, chunks: [4096]).0)
            #expect(whole != nil)
            for size in 1...headerBytes.count {
                let (outcome, consumed) = read(headerBytes + Self.tls, chunks: [size])
                #expect(header(outcome) == whole, "chunks of \(size)")
                #expect(consumed == headerBytes.count, "chunks of \(size)")
            }
            for _ in 0..<50 {
                let chunks = (0..<8).map { _ in Int(random.next() % 9) + 1 }
                let (outcome, consumed) = read(headerBytes + Self.tls, chunks: chunks)
                #expect(header(outcome) == whole && consumed == headerBytes.count, "\(chunks)")
            }
        }
    }

    static let refused: [([UInt8], String)] = {
        let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        var cases: [([UInt8], String)] = [([0x16, 0x03, 0x01], "not a PROXY protocol header")]
        let lines: [(String, String)] = [
            ("GET / HTTP/1.1\r\n", "not a PROXY protocol header"),
            ("PROXY TCP4 192.0.2.999 10.0.0.1 5000 9999\r\n", "malformed"),
            ("PROXY TCP4 2001:db8::1 10.0.0.1 5000 9999\r\n", "malformed"),
            ("PROXY TCP4 192.0.2.7 10.0.0.1 65536 9999\r\n", "malformed"),
            ("PROXY TCP4 192.0.2.7 10.0.0.1 05000 9999\r\n", "malformed"),
            ("PROXY TCP4 192.0.2.7  10.0.0.1 5000 9999\r\n", "malformed"),
            ("PROXY TCP4 192.0.2.7 10.0.0.1 5000\r\n", "malformed"),
            ("PROXY UDP4 192.0.2.7 10.0.0.1 5000 9999\r\n", "malformed"),
            ("PROXY TCP6 " + String(repeating: "f", count: 120), "longer than 107"),
            ("PROXY TCP4 1.2.3.4\u{1}", "holds byte 1"),
        ]
        for (line, why) in lines { cases.append((Array(line.utf8), why)) }
        cases.append((v2(command: 2, family: 0x11, body: []), "command 2"))
        cases.append((v2(family: 0x12, body: Array(repeating: 0, count: 12)), "non-stream"))
        cases.append((v2(family: 0x11, body: Array(repeating: 0, count: 8)), "too short"))
        cases.append((v2(family: 0x41, body: []), "address family 4"))
        cases.append((v2Signature + [0x11, 0x11, 0, 12], "version 1"))
        cases.append((v2Signature + [0x21, 0x11, 0xFF, 0xFF], "bytes"))
        return cases
    }()

    @Test(arguments: refused)
    func aBadHeaderIsRefusedBeforeTLS(_ stream: [UInt8], _ reason: String) {
        let (outcome, _) = read(stream + Self.tls, chunks: [3])
        guard case .invalid(let why) = outcome else {
            Issue.record("accepted: \(outcome)")
            return
        }
        #expect(why.contains(reason), "\(why)")
    }
}
