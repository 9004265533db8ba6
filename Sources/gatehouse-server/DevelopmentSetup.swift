import ArgumentParser
import GatehouseAuth
import GatehouseSystem

/// First-run conveniences of the default command: certificates and a first token.
enum DevelopmentSetup {
    /// Generates development certificates with the project's script if the default ones are missing.
    static func ensureCertificates(cert: String, key: String) throws {
        if Directories.exists(cert) && Directories.exists(key) { return }
        guard Directories.exists(Defaults.generator) else {
            throw ValidationError(
                "no certificate at \(cert) and no \(Defaults.generator) here to make one; "
                    + "run from the repository root, or pass --cert and --key"
            )
        }
        Console.error("gatehouse-server: no development certificate yet; running \(Defaults.generator)")
        let status = GatehouseSystem.Process.runShell("bash \(Defaults.generator) --quiet --out certs/dev")
        guard status == 0, Directories.exists(cert), Directories.exists(key) else {
            throw ValidationError("\(Defaults.generator) failed (status \(status)); see its message above")
        }
    }

    /// Creates the default tokens file with a first user if it is missing; returns that token.
    static func ensureTokens(_ path: String) throws -> String? {
        if Directories.exists(path) { return nil }
        var store = try loadForUpdate(path)
        let token = try store.issueToken(for: Defaults.firstUser)
        try TokenFile.save(store, to: path)
        saveClientToken(token, nextTo: path)
        return token
    }

    /// Keeps the development token for the `gatehouse` client in a 0600 file `dev-token` beside
    /// the tokens file, so that `gatehouse send hello` needs no flag. Development setup only: a
    /// server given --tokens never writes a token anywhere.
    private static func saveClientToken(_ token: String, nextTo tokensPath: String) {
        let dir = tokensPath.lastIndex(of: "/").map { String(tokensPath[..<$0]) + "/" } ?? ""
        let path = dir + "dev-token"
        do {
            let fd = try FileIO.create(path, mode: 0o600)
            try FileIO.writeAll(fd.raw, Array((token + "\n").utf8))
        } catch {
            Console.error("gatehouse-server: cannot write \(path): \(error.reason)")
        }
    }

    /// Tells a new user how to connect. The token is printed here once and never logged.
    static func printWelcome(port: Int, token: String, caPath: String) {
        Console.out(
            """

            Gatehouse is running with development settings.
              user:  \(Defaults.firstUser)
              token: \(token)
            This token is shown only once; its hash is in \(Defaults.tokens).
            Connect with:
              openssl s_client -connect localhost:\(port) -CAfile \(caPath) -quiet
            then type:
              AUTH \(Defaults.firstUser) \(token)
              MSG hello
            """
        )
    }
}
