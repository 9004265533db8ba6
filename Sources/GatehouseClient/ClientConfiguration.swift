/// Where and how a client connects.
public struct ClientConfiguration: Sendable {
    public var host: String = "localhost"
    public var port: Int = 9999
    /// PEM bundle to verify the server against; nil uses the system store.
    public var caFile: String?
    /// SNI and the name the certificate must carry; defaults to `host`.
    public var serverName: String?
    /// Verify the server's certificate chain and name (on unless a test probes the server itself).
    public var verify: Bool = true
    public var certificateFile: String?
    public var keyFile: String?
    /// Keep TLS sessions for resumption across connections made from the same `GatehouseClient`
    /// (on by default: a reconnect then costs the server about half a full handshake, which is
    /// what a reconnect storm is made of).
    public var resumeSessions: Bool = true
    /// How long connect, handshake and greeting, and each awaited reply, may take.
    public var timeoutMs: Int = 10_000

    public init(host: String = "localhost", port: Int = 9999, caFile: String? = nil) {
        self.host = host
        self.port = port
        self.caFile = caFile
    }
}
