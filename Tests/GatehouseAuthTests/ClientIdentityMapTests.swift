import Foundation
import GatehouseAuth
import GatehouseTLS
import TestSupport
import Testing

/// Client-certificate names to users: the default CN rule, the map file and its errors.
@Suite struct ClientIdentityMapTests {
    static let alice = CertificateIdentity(
        commonName: "Alice Example",
        dnsNames: ["Laptop-7.Example.org"],
        emails: ["Alice@Example.org"],
        uris: ["spiffe://example.org/alice"]
    )

    @Test func withoutAMapTheCommonNameIsTheUserWhenItIsAValidName() {
        #expect(ClientIdentityMap.user(for: CertificateIdentity(commonName: "alice"), map: nil) == "alice")
        #expect(ClientIdentityMap.user(for: Self.alice, map: nil) == nil)  // a space: not a user name
        #expect(ClientIdentityMap.user(for: CertificateIdentity(commonName: nil), map: nil) == nil)
    }

    @Test(arguments: [
        ("CN:Alice Example  alice", "alice"),
        ("cn:Alice Example\talice", "alice"),
        ("DNS:laptop-7.example.org alice", "alice"),
        ("email:alice@example.org ops", "ops"),
        ("URI:spiffe://example.org/alice svc", "svc"),
    ])
    func eachSelectorMatches(_ line: String, _ user: String) throws {
        let map = try ClientIdentityMap(parsing: "# comment\n\n\(line)\n")
        #expect(map.user(for: Self.alice) == user)
    }

    @Test func valuesMustMatchWhole() throws {
        let map = try ClientIdentityMap(
            parsing: "CN:Alice alice\nDNS:example.org a\nURI:spiffe://example.org/ALICE b\nemail:alice@example x\n"
        )
        #expect(map.user(for: Self.alice) == nil)
    }

    @Test func firstMatchingLineWinsAndAMapReplacesTheCNRule() throws {
        let map = try ClientIdentityMap(parsing: "URI:spiffe://example.org/alice first\nCN:Alice Example second\r\n")
        #expect(ClientIdentityMap.user(for: Self.alice, map: map) == "first")
        #expect(ClientIdentityMap.user(for: CertificateIdentity(commonName: "bob"), map: map) == nil)
    }

    @Test(arguments: [
        ("alice", "expected"),
        ("CN:x", "expected"),
        ("CN:x bad/user", "invalid user name"),
        ("IP:127.0.0.1 alice", "unknown selector"),
        ("CN: alice", "empty value"),
        ("noselector alice", "expected"),
        ("CN:x a\n# CN:x a\nCN:x b", "mapped twice"),
    ])
    func malformedLinesAreRefusedWithTheLineNumber(_ text: String, _ why: String) {
        #expect {
            _ = try ClientIdentityMap(parsing: "# first\n" + text, source: "map")
        } throws: { error in
            let message = (error as? AuthError)?.message ?? ""
            return message.hasPrefix(why == "mapped twice" ? "map:4:" : "map:2:") && message.contains(why)
        }
    }

    @Test func loadRefusesAFileOtherUsersCanRead() throws {
        let dir = try TemporaryDirectory(prefix: "gatehouse-map")
        let path = dir.file("map")
        try Data("CN:a alice\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        #expect {
            _ = try ClientIdentityMap.load(path)
        } throws: { error in
            ((error as? AuthError)?.message ?? "").contains("chmod 600")
        }
        chmod(path, 0o600)
        #expect(try ClientIdentityMap.load(path).rules.count == 1)
    }

    /// CN values compare byte for byte: "Zoë" composed (NFC) and decomposed (NFD) are equal
    /// Swift Strings but different certificate names; a rule matches only the bytes it names.
    @Test func commonNamesCompareByteForByteNotByCanonicalEquivalence() throws {
        let nfc = "Zo\u{00EB}"
        let nfd = "Zoe\u{0308}"
        #expect(nfc == nfd)  // what Swift's == would have matched
        let map = try ClientIdentityMap(parsing: "CN:\(nfc) zoe\n")
        #expect(map.user(for: CertificateIdentity(commonName: nfc)) == "zoe")
        #expect(map.user(for: CertificateIdentity(commonName: nfd)) == nil)
    }
}
