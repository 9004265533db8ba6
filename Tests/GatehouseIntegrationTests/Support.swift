import Foundation
import GatehouseClient
import TestSupport

extension ServerProcess {
    /// A client for this server, verifying against its CA.
    func client(user: String? = nil) throws -> GatehouseClient {
        var config = ClientConfiguration(host: host, port: port, caFile: pki.caCertificate)
        config.serverName = "localhost"
        if let user {
            config.certificateFile = pki.clientCertificate(user)
            config.keyFile = pki.clientKey(user)
        }
        return try GatehouseClient(config)
    }

    /// A connection already authenticated as `user`.
    func authenticatedConnection(_ user: String = "alice") throws -> GatehouseConnection {
        let conn = try client().connect()
        try conn.authenticate(user: user, token: tokens[user]!)
        return conn
    }

    /// Runs `openssl s_client` against this server with `input` on its standard input.
    func sClient(_ input: String, extra: [String] = []) throws -> ProcessResult {
        try ProcessRunner.run(
            "openssl",
            [
                "s_client", "-connect", host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)", "-CAfile",
                pki.caCertificate, "-verify_return_error",
                "-verify_hostname", "localhost", "-quiet",
            ] + extra,
            stdin: Data(input.utf8),
            timeout: 20
        )
    }
}

/// Reply lines of a transcript (s_client's stdout), without blank lines.
func replyLines(_ stdout: String) -> [String] {
    stdout.split(separator: "\n", omittingEmptySubsequences: true).map {
        String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
    }
}
