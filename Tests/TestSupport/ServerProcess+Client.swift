public import Foundation

extension ServerProcess {
    /// The environment a `gatehouse` client process needs to reach this server as `user` with
    /// its token (the server's CA, server name `localhost`, a home in the test's folder); `port`
    /// replaces the server's own, for a proxy in between.
    public func clientEnvironment(user: String = "alice", port: Int? = nil) -> [String: String] {
        [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": directory.path, "GATEHOUSE_HOST": host, "GATEHOUSE_PORT": String(port ?? self.port),
            "GATEHOUSE_SERVER_NAME": "localhost", "GATEHOUSE_USER": user,
            "GATEHOUSE_TOKEN": tokens[user]!, "GATEHOUSE_CA": pki.caCertificate,
        ]
    }

    /// A `gatehouse` client process for this server, not started: `arguments`, the environment of
    /// `clientEnvironment(user:port:)`, the test's folder as its directory. The caller sets its
    /// standard streams and runs it.
    public func clientProcess(_ arguments: [String], user: String = "alice", port: Int? = nil) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Repository.clientBinary)
        process.arguments = arguments
        process.environment = clientEnvironment(user: user, port: port)
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        return process
    }
}
