import GatehouseSystem

/// A CIDR block, IPv4 (`10.0.0.0/8`) or IPv6 (`2001:db8::/32`), for `--throttle-exempt`. An
/// address alone is a block of one. An IPv4-mapped IPv6 peer (`::ffff:10.1.2.3`) is matched
/// against IPv4 blocks.
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// Network bytes: 4 for IPv4, 16 for IPv6.
    let network: [UInt8]
    let prefix: Int

    /// Parses `address/prefix` or a bare address; nil when it is neither.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = AddressRange.bytes(of: String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...bits).contains(p) else { return nil }
            prefix = p
        }
        self.network = AddressRange.masked(bytes, prefix)
        self.prefix = prefix
    }

    /// A comma-separated list of blocks; nil if any is malformed.
    public static func list(_ text: String) -> [AddressRange]? {
        var ranges: [AddressRange] = []
        for item in text.split(separator: ",") {
            guard let range = AddressRange(item.trimmingSpaces) else { return nil }
            ranges.append(range)
        }
        return ranges
    }

    /// Whether `host` (an address as `SocketAddress.host` prints it) is in this block.
    public func contains(host: String) -> Bool {
        guard var bytes = AddressRange.bytes(of: host) else { return false }
        if bytes.count == 16 && network.count == 4 && bytes[0..<10].allSatisfy({ $0 == 0 })
            && bytes[10] == 0xFF && bytes[11] == 0xFF
        {
            bytes = Array(bytes[12..<16])
        }
        guard bytes.count == network.count else { return false }
        return AddressRange.masked(bytes, prefix) == network
    }

    public var description: String {
        let text: String
        if network.count == 4 {
            text = network.map(String.init).joined(separator: ".")
        } else {
            text = stride(from: 0, to: 16, by: 2).map {
                String(UInt16(network[$0]) << 8 | UInt16(network[$0 + 1]), radix: 16)
            }
            .joined(separator: ":")
        }
        return "\(text)/\(prefix)"
    }

    private static func bytes(of address: String) -> [UInt8]? {
        IPAddress.v4(address) ?? IPAddress.v6(address)
    }

    private static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var out = bytes
        for i in 0..<out.count {
            let keep = max(0, min(8, prefix - 8 * i))
            out[i] &= keep == 8 ? 0xFF : ~(0xFF >> UInt8(keep))
        }
        return out
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
