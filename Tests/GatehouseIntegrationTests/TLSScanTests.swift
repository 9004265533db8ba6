import Foundation
import TestSupport
import Testing

/// `scripts/tls-scan.sh` runs sslscan and testssl.sh (Debian packages) against a server it
/// starts; these tests read the scanners' own findings from its output, not just its verdict.
@Suite("TLS scan")
struct TLSScanTests {
    struct Scan {
        var status: Int32
        var lines: [String]

        func sslscan(_ prefix: String) -> [String] {
            lines.filter { $0.hasPrefix("sslscan: \(prefix)") }
        }

        /// testssl.sh findings as (id, severity, text).
        var testssl: [(id: String, severity: String, text: String)] {
            lines.filter { $0.hasPrefix("testssl: ") }.map { line in
                let fields = line.split(separator: " ", maxSplits: 3).map(String.init)
                return (fields[1], fields.count > 2 ? fields[2] : "", fields.count > 3 ? fields[3] : "")
            }
        }

        /// The cipher suite names sslscan saw accepted.
        var acceptedCiphers: [String] {
            lines.compactMap { line -> String? in
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                guard f.count >= 6, f[0] == "sslscan:", f[1] == "Preferred" || f[1] == "Accepted" else { return nil }
                return String(f[5])
            }
        }
    }

    static func scan(_ arguments: [String]) throws -> Scan {
        for tool in ["sslscan", "testssl"] where (try? ProcessRunner.which(tool)) == nil {
            throw TestSupportError("\(tool) is not installed (apt-get install sslscan testssl.sh)")
        }
        let result = try ProcessRunner.run(
            "/bin/bash",
            [Repository.root + "/scripts/tls-scan.sh", "--server", Repository.serverBinary] + arguments,
            timeout: 240
        )
        return Scan(
            status: result.status,
            lines: (result.stdout + result.stderr).split(separator: "\n").map(String.init)
        )
    }

    static let aead13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
    static let aead12 = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305",
    ]

    @Test(arguments: ["1.3", "1.2"])
    func scannersFindNoWeakProtocolNoWeakCipherAndNoVulnerability(_ minTLS: String) throws {
        let scan = try Self.scan(["--min-tls", minTLS])
        let output = scan.lines.joined(separator: "\n")
        #expect(scan.status == 0, "\(output)")
        #expect(scan.lines.last?.hasPrefix("tls-scan: PASS") == true, "\(output)")

        // sslscan: protocols.
        for old in ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"] {
            #expect(scan.sslscan(old).first?.hasSuffix("disabled") == true, "\(old): \(output)")
        }
        #expect(scan.sslscan("TLSv1.2   ").first?.hasSuffix(minTLS == "1.2" ? "enabled" : "disabled") == true)
        #expect(scan.sslscan("TLSv1.3   ").first?.hasSuffix("enabled") == true)
        // sslscan: every accepted suite is an AEAD one (and, in TLS 1.2, ECDHE).
        let allowed = Set(Self.aead13 + (minTLS == "1.2" ? Self.aead12 : []))
        #expect(Set(scan.acceptedCiphers) == allowed, "\(scan.acceptedCiphers)")
        #expect(scan.lines.contains("sslscan: Session renegotiation not supported"))
        #expect(!scan.lines.contains { $0.contains("vulnerable to heartbleed") && !$0.contains("not vulnerable") })

        // testssl.sh: old protocols not offered, weak cipher categories not offered, and no
        // finding above OK/INFO in its vulnerability battery.
        let findings = scan.testssl
        let byID = Dictionary(findings.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for id in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
            #expect(byID[id]?.text.hasPrefix("not offered") == true, "\(id): \(String(describing: byID[id]))")
        }
        #expect(byID["TLS1_2"]?.text.hasPrefix(minTLS == "1.2" ? "offered" : "not offered") == true)
        for id in [
            "cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA",
            "cipherlist_AVERAGE",
        ] {
            #expect(byID[id]?.text.hasPrefix("not offered") == true, "\(id): \(String(describing: byID[id]))")
        }
        for id in [
            "heartbleed", "CCS", "ROBOT", "secure_renego", "secure_client_renego", "CRIME_TLS", "POODLE_SSL",
            "FREAK", "DROWN", "LOGJAM", "BEAST", "LUCKY13", "RC4",
        ] {
            #expect(byID[id]?.severity == "OK", "\(id): \(String(describing: byID[id]))")
        }
        // testssl.sh reports SWEET32 only when a protocol that could carry 64-bit block ciphers is on.
        if let sweet32 = byID["SWEET32"] { #expect(sweet32.severity == "OK", "\(sweet32)") }
        let bad = findings.filter { ["LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL"].contains($0.severity) }
        #expect(bad.isEmpty, "\(bad)")
    }
}
