#if canImport(Glibc)
import Glibc
#endif

/// Numeric IP addresses from text (`inet_pton`), for the modules that key limits by address
/// (the AUTH throttle, the exempt ranges) without calling Glibc themselves.
public enum IPAddress {
    /// The 4 bytes of a dotted IPv4 address, or nil if `text` is not one.
    public static func v4(_ text: String) -> [UInt8]? { parse(text, family: AF_INET, count: 4) }

    /// The 16 bytes of an IPv6 address (any form `inet_pton` reads, `::ffff:192.0.2.1`
    /// included), or nil if `text` is not one.
    public static func v6(_ text: String) -> [UInt8]? { parse(text, family: AF_INET6, count: 16) }

    private static func parse(_ text: String, family: Int32, count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        guard bytes.withUnsafeMutableBytes({ inet_pton(family, text, $0.baseAddress) }) == 1 else { return nil }
        return bytes
    }
}
