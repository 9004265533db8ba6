import Testing

@testable import GatehouseServer

@Suite("Address ranges (--throttle-exempt)")
struct AddressRangeTests {
    @Test func ipv4BlocksMatchTheirAddressesOnly() throws {
        let range = try #require(AddressRange("10.1.0.0/16"))
        #expect(range.contains(host: "10.1.255.7"))
        #expect(range.contains(host: "10.1.0.0"))
        #expect(!range.contains(host: "10.2.0.1"))
        #expect(!range.contains(host: "::1"))
        #expect(range.description == "10.1.0.0/16")
    }

    @Test func ipv6BlocksAndMappedIPv4Peers() throws {
        let v6 = try #require(AddressRange("2001:db8::/32"))
        #expect(v6.contains(host: "2001:db8:ffff::1"))
        #expect(!v6.contains(host: "2001:db9::1"))
        #expect(!v6.contains(host: "10.0.0.1"))
        let v4 = try #require(AddressRange("192.0.2.0/24"))
        #expect(v4.contains(host: "::ffff:192.0.2.44"))
    }

    @Test func aBareAddressIsABlockOfOneAndHostBitsAreIgnored() throws {
        #expect(try #require(AddressRange("127.0.0.1")).contains(host: "127.0.0.1"))
        #expect(try !#require(AddressRange("127.0.0.1")).contains(host: "127.0.0.2"))
        #expect(AddressRange("10.9.9.9/8") == AddressRange("10.0.0.0/8"))
        #expect(try #require(AddressRange("0.0.0.0/0")).contains(host: "203.0.113.9"))
        #expect(try #require(AddressRange("10.0.0.0/13")).contains(host: "10.7.1.1"))
        #expect(try !#require(AddressRange("10.0.0.0/13")).contains(host: "10.8.1.1"))
    }

    @Test(arguments: ["", "10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "host.example", "10.0.0.0/-1", "10.0.0.0/x"])
    func malformedBlocksAreRefused(_ text: String) {
        #expect(AddressRange(text) == nil)
    }

    @Test func listsAreCommaSeparated() {
        #expect(AddressRange.list("10.0.0.0/8, 2001:db8::/32")?.count == 2)
        #expect(AddressRange.list("10.0.0.0/8,nonsense") == nil)
    }
}
