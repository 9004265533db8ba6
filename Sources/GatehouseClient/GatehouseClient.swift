public import GatehouseTLS

/// Makes connections to one server with one TLS context (and, if asked, resumable sessions).
public final class GatehouseClient: Sendable {
    public let configuration: ClientConfiguration
    public let context: TLSContext

    public init(_ configuration: ClientConfiguration) throws(ClientError) {
        self.configuration = configuration
        var tls = TLSClientConfiguration(caFile: configuration.caFile)
        tls.verifyPeer = configuration.verify
        tls.certificateChainFile = configuration.certificateFile
        tls.privateKeyFile = configuration.keyFile
        tls.enableResumption = configuration.resumeSessions
        do { context = try TLSContext(client: tls) } catch { throw ClientError(.configuration, "\(error)") }
    }

    /// A new connection, greeted.
    public func connect() throws(ClientError) -> GatehouseConnection {
        try GatehouseConnection(configuration, context: context)
    }
}
