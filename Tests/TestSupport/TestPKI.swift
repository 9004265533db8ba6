public import Foundation

/// Certificates made for one test run by the project's own script, in a temporary folder.
public struct TestPKI: Sendable {
    public let directory: String
    public var caCertificate: String { directory + "/ca.crt" }
    public var serverCertificate: String { directory + "/server.crt" }
    public var serverKey: String { directory + "/server.key" }
    public func clientCertificate(_ name: String) -> String { directory + "/client-\(name).crt" }
    public func clientKey(_ name: String) -> String { directory + "/client-\(name).key" }

    /// Runs `scripts/gen-certs.sh --out DIR --quiet` plus `extraArguments`.
    public static func make(in directory: String, extraArguments: [String] = []) throws -> TestPKI {
        let result = try ProcessRunner.run(
            "/bin/bash",
            [Repository.genCerts, "--out", directory, "--quiet"] + extraArguments,
            timeout: 60
        )
        guard result.status == 0 else {
            throw TestSupportError("gen-certs.sh failed (\(result.status)): \(result.stderr)")
        }
        return TestPKI(directory: directory)
    }

    /// Runs `scripts/gen-certs.sh --out <this directory> --quiet` with `arguments` (same CA).
    public func regenerate(_ arguments: [String]) throws {
        let result = try ProcessRunner.run(
            "/bin/bash",
            [Repository.genCerts, "--out", directory, "--quiet"] + arguments,
            timeout: 60
        )
        guard result.status == 0 else { throw TestSupportError("gen-certs.sh \(arguments): \(result.stderr)") }
    }

    /// The CRL `gen-certs.sh --revoke` writes.
    public var crlFile: String { directory + "/crl.pem" }
}
