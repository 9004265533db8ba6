import GatehouseTLS
import Synchronization
import Testing

/// TLS 1.3 resumption against server contexts: in every client-auth mode, across a reload that
/// keeps who may resume, refused after one that changes it, and across ticket-key rotation.
@Suite("Resumption")
struct ResumptionTests {
    /// A full handshake, one byte each way (so the client reads the ticket), and the session.
    func firstSession(_ client: TLSContext, _ server: TLSContext) throws -> (TLSSession, InMemoryTLSPair) {
        let pair = try InMemoryTLSPair(client: client, server: server)
        let result = pair.handshake()
        try #require(result.succeeded, "client: \(result.client), server: \(result.server)")
        #expect(!pair.server.sessionReused)
        _ = try pair.send(Array("x".utf8), from: pair.server, to: pair.client)
        let session = try #require(pair.client.session)
        // A client session whose connection is freed without close_notify is marked not
        // resumable by OpenSSL (a truncated session may be an attack): close as clients do.
        pair.client.shutdown()
        return (session, pair)
    }

    /// A second handshake offering `session`; whether the server resumed it.
    func resumes(_ session: TLSSession, _ client: TLSContext, _ server: TLSContext) throws -> InMemoryTLSPair {
        let pair = try InMemoryTLSPair(client: client, server: server)
        try pair.client.setSession(session)
        let result = pair.handshake()
        try #require(result.succeeded, "client: \(result.client), server: \(result.server)")
        return pair
    }

    func client(_ certs: Certificates, certificate: Bool) throws -> TLSContext {
        try certs.clientContext {
            $0.enableResumption = true
            if certificate {
                $0.certificateChainFile = certs.pki.clientCertificate("alice")
                $0.privateKeyFile = certs.pki.clientKey("alice")
            }
        }
    }

    func server(_ certs: Certificates, _ mode: ClientAuthMode, ring: TicketKeyRing? = nil) throws -> TLSContext {
        try certs.serverContext {
            $0.clientAuth = mode
            if mode != .off { $0.clientCAFile = certs.pki.caCertificate }
            $0.ticketKeys = ring
        }
    }

    @Test(arguments: [ClientAuthMode.off, .optional, .required])
    func aClientResumesInEveryClientAuthMode(_ mode: ClientAuthMode) throws {
        let certs = try Certificates()
        let client = try client(certs, certificate: mode != .off)
        let server = try server(certs, mode)
        let (session, first) = try firstSession(client, server)
        #expect(session.isResumable)
        let second = try resumes(session, client, server)
        #expect(second.server.sessionReused)
        #expect(second.client.sessionReused)
        // The resumed session still names the certificate's holder: the same user authenticates.
        #expect(second.server.verifiedPeerIdentity == first.server.verifiedPeerIdentity)
        if mode != .off { #expect(second.server.verifiedPeerIdentity?.commonName == "alice") }
    }

    /// Each resumption brings a fresh ticket, which resumes in turn (clients keep the newest).
    @Test func aResumedConnectionGetsATicketThatResumesAgain() throws {
        let certs = try Certificates()
        let client = try client(certs, certificate: true)
        let server = try server(certs, .required)
        var (session, _) = try firstSession(client, server)
        for _ in 0..<3 {
            let pair = try resumes(session, client, server)
            #expect(pair.server.sessionReused)
            _ = try pair.send(Array("x".utf8), from: pair.server, to: pair.client)
            let next = try #require(pair.client.session)
            #expect(next.isResumable)
            pair.client.shutdown()
            session = next
        }
    }

    @Test func aReloadWithTheSameSettingsAndRingKeepsSessions() throws {
        let certs = try Certificates()
        let ring = TicketKeyRing()
        let client = try client(certs, certificate: true)
        let before = try server(certs, .required, ring: ring)
        let (session, _) = try firstSession(client, before)
        let after = try server(certs, .required, ring: ring)
        #expect(after.sessionIDContext == before.sessionIDContext)
        #expect(try resumes(session, client, after).server.sessionReused)
    }

    @Test func aReloadThatChangesWhoMayResumeRefusesOlderSessions() throws {
        let certs = try Certificates(clients: ["alice", "bob"])
        let ring = TicketKeyRing()
        let client = try client(certs, certificate: true)
        let before = try server(certs, .optional, ring: ring)
        let (session, _) = try firstSession(client, before)
        // The same CA but another mode, then a CRL: each changes the session-id context.
        let required = try server(certs, .required, ring: ring)
        #expect(required.sessionIDContext != before.sessionIDContext)
        #expect(try !resumes(session, client, required).server.sessionReused)
        try certs.pki.regenerate(["--revoke", "bob"])
        let withCRL = try certs.serverContext {
            $0.clientAuth = .optional
            $0.clientCAFile = certs.pki.caCertificate
            $0.crlFile = certs.pki.crlFile
            $0.ticketKeys = ring
        }
        #expect(withCRL.sessionIDContext != before.sessionIDContext)
        let refused = try resumes(session, client, withCRL)
        #expect(!refused.server.sessionReused)
        // It was a full handshake, so the certificate was checked again (and is still good).
        #expect(refused.server.verifiedPeerIdentity?.commonName == "alice")
    }

    @Test func ticketsOutliveOneRotationAndNotThree() throws {
        let certs = try Certificates()
        let now = Atomic<UInt64>(1000)
        let ring = TicketKeyRing(rotationSeconds: 100, clock: { now.load(ordering: .relaxed) })
        #expect(ring.ticketLifetimeSeconds == 200)
        let client = try client(certs, certificate: false)
        let server = try server(certs, .off, ring: ring)
        let (session, _) = try firstSession(client, server)
        #expect(ring.keyNames.count == 1)
        now.store(1150, ordering: .relaxed)  // one rotation later: an older key, still accepted
        let renewed = try resumes(session, client, server)
        #expect(renewed.server.sessionReused)
        #expect(ring.keyNames.count == 2)  // the renewed ticket was made with a new key
        now.store(1300, ordering: .relaxed)  // three periods after the first key: it is gone
        #expect(try !resumes(session, client, server).server.sessionReused)
        #expect(ring.keyNames.count == 2)
    }

    @Test func tls12GetsNoTicket() throws {
        let certs = try Certificates()
        let client = try certs.clientContext {
            $0.enableResumption = true
            $0.maximumVersion = .v1_2
        }
        let server = try certs.serverContext { $0.minimumVersion = .v1_2 }
        let (session, _) = try firstSession(client, server)
        #expect(!session.isResumable)
        #expect(try !resumes(session, client, server).server.sessionReused)
        #expect(server.ticketKeys?.keyNames.isEmpty == true)
    }
}
