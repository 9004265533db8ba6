import Foundation

/// A development identity provider in a temporary folder, driven through `scripts/dev-idp.sh`
/// (the script users run): signing keys, their JWKS, and tokens minted with them.
public final class DevIdP: @unchecked Sendable {
    public static let issuer = "gatehouse-dev-idp"
    public static let audience = "gatehouse"
    public static var script: String { Repository.root + "/scripts/dev-idp.sh" }

    public let directory: String
    private let folder: TemporaryDirectory

    /// A new provider with one key per `(algorithm, kid)` pair; the last one is current.
    public init(keys: [(alg: String, kid: String)] = [("ES256", "es-1")]) throws {
        folder = try TemporaryDirectory(prefix: "gatehouse-idp")
        directory = folder.file("idp")
        for key in keys { try addKey(alg: key.alg, kid: key.kid) }
    }

    public var jwksFile: String { directory + "/jwks.json" }

    /// The server flags that trust this provider, with the default issuer and audience.
    public func serverArguments(leeway: Int? = nil) -> [String] {
        ["--jwt-jwks", jwksFile, "--jwt-issuer", Self.issuer, "--jwt-audience", Self.audience]
            + (leeway.map { ["--jwt-leeway", String($0)] } ?? [])
    }

    /// `dev-idp.sh init --alg ALG --kid KID`: a new key, now the current one, in the JWKS.
    public func addKey(alg: String, kid: String) throws {
        try run(["init", "--alg", alg, "--kid", kid])
    }

    /// `dev-idp.sh retire KID`.
    public func retire(_ kid: String) throws {
        try run(["retire", kid])
    }

    /// `dev-idp.sh mint --sub USER ARGS`: a signed token.
    public func mint(sub: String = "alice", _ arguments: [String] = []) throws -> String {
        try run(["mint", "--sub", sub] + arguments).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The shell command that mints a token, for `--token-command`.
    public func mintCommand(sub: String, ttl: Int) -> String {
        "'\(Self.script)' mint --dir '\(directory)' --sub \(sub) --ttl \(ttl)"
    }

    /// The PEM public key of `kid`, as an attacker could fetch it from the JWKS.
    public func publicKeyPEM(_ kid: String) throws -> String {
        let result = try ProcessRunner.run("openssl", ["pkey", "-in", directory + "/keys/\(kid).key", "-pubout"])
        guard result.status == 0 else { throw TestSupportError("openssl pkey: \(result.stderr)") }
        return result.stdout
    }

    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        let command = arguments[0]
        let result = try ProcessRunner.run(
            "/bin/bash",
            [Self.script, command, "--dir", directory] + arguments.dropFirst(),
            timeout: 60
        )
        guard result.status == 0 else { throw TestSupportError("dev-idp.sh \(arguments): \(result.stderr)") }
        return result.stdout
    }

    // MARK: tokens no provider would sign

    /// base64url of `text`, as JOSE writes it.
    public static func b64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// `header.payload.` with `alg: none`: unsigned (RFC 7515 A.5).
    public static func unsigned(payloadOf token: String) -> String {
        let payload = token.split(separator: ".")[1]
        return b64url(Array(#"{"alg":"none","typ":"at+jwt"}"#.utf8)) + "." + payload + "."
    }

    /// The same payload, "signed" with HS256 keyed by the public key's PEM bytes: the classic
    /// algorithm-confusion forgery against verifiers that let the token pick the algorithm.
    public static func hmacForgery(payloadOf token: String, kid: String, publicKeyPEM: String) throws -> String {
        let payload = token.split(separator: ".")[1]
        let input = b64url(Array("{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"\(kid)\"}".utf8)) + "." + payload
        let hexKey = publicKeyPEM.utf8.map { String(format: "%02x", $0) }.joined()
        let result = try ProcessRunner.run(
            "openssl",
            ["dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:\(hexKey)"],
            stdin: Data(input.utf8)
        )
        // "HMAC-SHA256(stdin)= <hex>"
        guard result.status == 0, let hex = result.stdout.split(separator: " ").last else {
            throw TestSupportError("openssl dgst -mac HMAC: \(result.stderr)")
        }
        let digits = Array(hex.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        let mac = stride(from: 0, to: digits.count, by: 2).map {
            UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)!
        }
        return input + "." + b64url(mac)
    }

    /// The token with one letter of its signature changed.
    public static func badSignature(_ token: String) -> String {
        var parts = token.split(separator: ".").map(String.init)
        var signature = Array(parts[2])
        signature[4] = signature[4] == "A" ? "B" : "A"
        parts[2] = String(signature)
        return parts.joined(separator: ".")
    }
}
