import Foundation
import TestSupport

/// Certificates the project's script does not make (expired ones, ones with SAN entries), signed
/// with the test CA by the `openssl` command line, and fingerprints of what a server presents.
extension TestPKI {
    /// Issues `client-NAME.crt`/`.key` signed by this CA with clientAuth. `days` may be negative
    /// (`openssl x509 -days -1` makes a certificate whose notAfter has passed); `san` is an
    /// OpenSSL subjectAltName value such as `email:a@example.org, URI:spiffe://x/a`.
    func issueClient(_ name: String, subject: String? = nil, days: Int = 30, san: String? = nil) throws {
        let key = clientKey(name)
        let csr = directory + "/client-\(name).csr"
        let ext = directory + "/client-\(name).ext"
        var extensions = "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
        extensions += "extendedKeyUsage = clientAuth\n"
        if let san { extensions += "subjectAltName = \(san)\n" }
        try Data("[ext]\n\(extensions)".utf8).write(to: URL(fileURLWithPath: ext))
        try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
        try openssl(["req", "-new", "-key", key, "-subj", subject ?? "/CN=\(name)", "-out", csr])
        try openssl([
            "x509", "-req", "-in", csr, "-CA", caCertificate, "-CAkey", directory + "/ca.key", "-set_serial",
            String(Int.random(in: 1_000_000...9_999_999)), "-days", String(days), "-sha256", "-extfile", ext,
            "-extensions", "ext", "-out", clientCertificate(name),
        ])
    }
}

@discardableResult
func openssl(_ arguments: [String]) throws -> String {
    let result = try ProcessRunner.run("openssl", arguments, timeout: 30)
    guard result.status == 0 else {
        throw TestSupportError("openssl \(arguments.joined(separator: " ")) failed: \(result.stderr)")
    }
    return result.stdout
}

/// SHA-256 fingerprint of a PEM certificate, as `openssl x509 -fingerprint` prints it.
func fingerprint(ofCertificateFile path: String) throws -> String {
    let out = try openssl(["x509", "-in", path, "-noout", "-fingerprint", "-sha256"])
    return String(out.split(separator: "=").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
}

extension ServerProcess {
    /// The fingerprint of the certificate the server presents to a new handshake (via s_client).
    func presentedFingerprint() throws -> String {
        let result = try ProcessRunner.run(
            "openssl",
            ["s_client", "-connect", "\(host):\(port)", "-CAfile", pki.caCertificate],
            stdin: Data("QUIT\n".utf8),
            timeout: 20
        )
        guard let begin = result.stdout.range(of: "-----BEGIN CERTIFICATE-----"),
            let end = result.stdout.range(of: "-----END CERTIFICATE-----")
        else { throw TestSupportError("no certificate in s_client output: \(result.stdout) \(result.stderr)") }
        let pem = String(result.stdout[begin.lowerBound..<end.upperBound]) + "\n"
        let file = directory.file("presented-\(UUID().uuidString).pem")
        try Data(pem.utf8).write(to: URL(fileURLWithPath: file))
        return try fingerprint(ofCertificateFile: file)
    }

    /// Waits until the server's log holds `text` `count` times; false after `timeout` seconds.
    func waitForLog(_ text: String, count: Int = 1, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log.components(separatedBy: text).count - 1 >= count { return true }
            usleep(20_000)
        }
        return false
    }

    /// `s_client` with the client certificate `name` of this server's PKI (nil: none).
    func sClient(_ input: String, certificate name: String?, extra: [String] = []) throws -> ProcessResult {
        let cert = name.map { ["-cert", pki.clientCertificate($0), "-key", pki.clientKey($0)] } ?? []
        return try sClient(input, extra: cert + extra)
    }
}
