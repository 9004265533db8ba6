import Foundation
import GatehouseTLS
import TestSupport
import Testing

/// Client chains: the leaf, at most two intermediates, and the root (`SSL_CTX_set_verify_depth`
/// counts intermediates only). Chains are made with the openssl command line below the test CA.
@Suite("Client chain depth")
struct ChainDepthTests {
    func run(_ arguments: [String]) throws {
        let result = try ProcessRunner.run("openssl", arguments, timeout: 30)
        guard result.status == 0 else { throw TestSupportError("openssl \(arguments): \(result.stderr)") }
    }

    /// A root CA with no path-length limit (the project's own CA allows no intermediates), and
    /// a client certificate under `intermediates` CAs below it; returns the root, the chain file
    /// (leaf first, then the intermediates) and the key.
    func chain(_ certs: Certificates, intermediates: Int) throws -> (root: String, chain: String, key: String) {
        let dir = certs.pki.directory
        let caExt = dir + "/ca.ext"
        let leafExt = dir + "/leaf.ext"
        try Data("[e]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n".utf8)
            .write(to: URL(fileURLWithPath: caExt))
        var issuerCert = dir + "/deep-root.crt"
        var issuerKey = dir + "/deep-root.key"
        try run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", issuerKey])
        try run([
            "req", "-x509", "-new", "-key", issuerKey, "-subj", "/CN=deep root", "-days", "2", "-sha256",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", issuerCert,
        ])
        let root = issuerCert
        var chainPEM = ""
        try Data(
            "[e]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
                .utf8
        )
        .write(to: URL(fileURLWithPath: leafExt))
        for level in 0...intermediates {
            let isLeaf = level == intermediates
            let name = isLeaf ? "leaf\(intermediates)" : "int\(intermediates)-\(level)"
            let key = "\(dir)/\(name).key"
            let cert = "\(dir)/\(name).crt"
            try run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
            try run([
                "req", "-new", "-key", key, "-subj", "/CN=\(isLeaf ? "alice" : name)", "-out", "\(dir)/\(name).csr",
            ])
            try run([
                "x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", issuerCert, "-CAkey", issuerKey,
                "-set_serial", String(1000 + level), "-days", "2", "-sha256",
                "-extfile", isLeaf ? leafExt : caExt, "-extensions", "e", "-out", cert,
            ])
            if isLeaf {
                chainPEM = try String(contentsOfFile: cert, encoding: .utf8) + chainPEM
                let file = "\(dir)/\(name)-chain.pem"
                try Data(chainPEM.utf8).write(to: URL(fileURLWithPath: file))
                return (root, file, key)
            }
            chainPEM = try String(contentsOfFile: cert, encoding: .utf8) + chainPEM
            issuerCert = cert
            issuerKey = key
        }
        fatalError("unreachable")
    }

    @Test(arguments: [(0, true), (1, true), (2, true), (3, false)])
    func atMostTwoIntermediatesAreAccepted(_ intermediates: Int, _ accepted: Bool) throws {
        let certs = try Certificates()
        let (root, chainFile, key) = try chain(certs, intermediates: intermediates)
        let server = try certs.serverContext {
            $0.clientAuth = .required
            $0.clientCAFile = root
        }
        let client = try certs.clientContext {
            $0.certificateChainFile = chainFile
            $0.privateKeyFile = key
        }
        let pair = try InMemoryTLSPair(client: client, server: server)
        let result = pair.handshake()
        #expect(result.succeeded == accepted, "client: \(result.client), server: \(result.server)")
        if accepted {
            #expect(pair.server.verifiedPeerIdentity?.commonName == "alice")
        } else {
            #expect(pair.server.verificationFailure == "certificate chain too long")
        }
    }
}
