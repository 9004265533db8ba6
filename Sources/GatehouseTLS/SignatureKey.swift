import COpenSSL

/// A public key that verifies signatures (JWS: ECDSA, RSA PKCS #1 v1.5 and PSS, EdDSA), built
/// from raw key parameters as a JWK carries them.
///
/// Owns one `EVP_PKEY`, freed in `deinit`. Immutable after `init`: OpenSSL 3 allows one key to
/// be used by concurrent verifications as long as each has its own `EVP_MD_CTX`, which `verify`
/// makes, so `@unchecked Sendable` holds. The key's type is fixed at creation and `verify`
/// refuses a scheme of another type, whatever the caller asks.
public final class SignaturePublicKey: @unchecked Sendable {
    public enum Hash: Sendable {
        case sha256, sha384, sha512
    }

    /// How a signature was made; each needs a key of the matching type.
    public enum Scheme: Sendable, Equatable {
        /// ECDSA with the signature as JWS encodes it: r and s, big-endian, each the curve's size.
        case ecdsaFixedWidth(Hash)
        case rsaPKCS1(Hash)
        /// RSASSA-PSS, MGF1 with the same hash, salt as long as the hash (RFC 7518 §3.5).
        case rsaPSS(Hash)
        /// Pure EdDSA (Ed25519 or Ed448, as the key is).
        case eddsa
    }

    private enum Kind {
        case ec(coordinateSize: Int)
        case rsa
        case edwards(signatureSize: Int)
    }

    private let pkey: OpaquePointer
    private let kind: Kind

    private init(taking pkey: OpaquePointer, kind: Kind) {
        self.pkey = pkey
        self.kind = kind
    }

    deinit {
        EVP_PKEY_free(pkey)
    }

    /// An EC public key on `curve` (`P-256`, `P-384` or `P-521`) from its affine coordinates.
    /// Fails unless the point is on the curve (OpenSSL checks when it decodes it).
    public static func ec(curve: String, x: [UInt8], y: [UInt8]) throws(TLSError) -> SignaturePublicKey {
        let curveOID: [UInt8]
        let size: Int
        switch curve {
        case "P-256": (curveOID, size) = ([0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07], 32)
        case "P-384": (curveOID, size) = ([0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22], 48)
        case "P-521": (curveOID, size) = ([0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23], 66)
        default: throw TLSError(.configuration, "unsupported EC curve \(curve)")
        }
        guard x.count == size, y.count == size else {
            throw TLSError(.configuration, "EC coordinates of \(curve) must be \(size) bytes")
        }
        let ecPublicKeyOID: [UInt8] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
        let point = [0x04] + x + y  // uncompressed form (SEC 1 §2.3.3)
        let spki = DER.sequence(DER.sequence(ecPublicKeyOID + curveOID) + DER.bitString(point))
        return SignaturePublicKey(
            taking: try decodePublicKey(spki, what: "EC \(curve)"),
            kind: .ec(coordinateSize: size)
        )
    }

    /// An RSA public key from its modulus and exponent (big-endian, unsigned).
    public static func rsa(modulus: [UInt8], exponent: [UInt8]) throws(TLSError) -> SignaturePublicKey {
        let rsaEncryptionOID: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
        let algorithm = DER.sequence(rsaEncryptionOID + [0x05, 0x00])
        let rsaPublicKey = DER.sequence(DER.integer(modulus) + DER.integer(exponent))
        let spki = DER.sequence(algorithm + DER.bitString(rsaPublicKey))
        return SignaturePublicKey(taking: try decodePublicKey(spki, what: "RSA"), kind: .rsa)
    }

    /// An Ed25519 or Ed448 public key from its encoded point.
    public static func edwards(curve: String, x: [UInt8]) throws(TLSError) -> SignaturePublicKey {
        let type: Int32
        let signatureSize: Int
        switch curve {
        case "Ed25519": (type, signatureSize) = (EVP_PKEY_ED25519, 64)
        case "Ed448": (type, signatureSize) = (EVP_PKEY_ED448, 114)
        default: throw TLSError(.configuration, "unsupported Edwards curve \(curve)")
        }
        OpenSSLErrorQueue.clear()
        let made = x.withUnsafeBufferPointer { EVP_PKEY_new_raw_public_key(type, nil, $0.baseAddress, $0.count) }
        guard let pkey = made else { throw .drained(.configuration, "not a valid \(curve) public key") }
        return SignaturePublicKey(taking: pkey, kind: .edwards(signatureSize: signatureSize))
    }

    private static func decodePublicKey(_ der: [UInt8], what: String) throws(TLSError) -> OpaquePointer {
        OpenSSLErrorQueue.clear()
        let decoded = der.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            var cursor = buffer.baseAddress
            let key = d2i_PUBKEY(nil, &cursor, buffer.count)
            // The whole encoding must be the key: nothing left over.
            if let key, cursor != buffer.baseAddress.map({ $0 + buffer.count }) {
                EVP_PKEY_free(key)
                return nil
            }
            return key
        }
        guard let pkey = decoded else { throw .drained(.configuration, "not a valid \(what) public key") }
        return pkey
    }

    /// Whether `signature` is a valid signature of `message` under this key with `scheme`.
    /// False, never an error, for a scheme that does not fit the key and for any bad signature;
    /// leaves the calling thread's OpenSSL error queue empty.
    public func verify(_ scheme: Scheme, message: UnsafeRawBufferPointer, signature: [UInt8]) -> Bool {
        defer { OpenSSLErrorQueue.clear() }
        let hash: Hash?
        let encoded: [UInt8]
        switch (scheme, kind) {
        case (.ecdsaFixedWidth(let h), .ec(let size)):
            guard signature.count == 2 * size else { return false }
            // OpenSSL takes ECDSA-Sig-Value (RFC 3279): SEQUENCE { INTEGER r, INTEGER s }.
            encoded = DER.sequence(DER.integer(signature[0..<size]) + DER.integer(signature[size...]))
            hash = h
        case (.rsaPKCS1(let h), .rsa), (.rsaPSS(let h), .rsa):
            encoded = signature
            hash = h
        case (.eddsa, .edwards(let size)):
            guard signature.count == size else { return false }
            encoded = signature
            hash = nil
        default:
            return false
        }
        guard let mdContext = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(mdContext) }
        var pkeyContext: OpaquePointer?
        let md: OpaquePointer? =
            switch hash {
            case .sha256?: EVP_sha256()
            case .sha384?: EVP_sha384()
            case .sha512?: EVP_sha512()
            case nil: nil  // EdDSA hashes internally
            }
        guard EVP_DigestVerifyInit(mdContext, &pkeyContext, md, nil, pkey) == 1 else { return false }
        if case .rsaPSS = scheme {
            guard EVP_PKEY_CTX_set_rsa_padding(pkeyContext, RSA_PKCS1_PSS_PADDING) == 1,
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pkeyContext, RSA_PSS_SALTLEN_DIGEST) == 1
            else { return false }
        }
        let result = encoded.withUnsafeBufferPointer { sig in
            EVP_DigestVerify(mdContext, sig.baseAddress, sig.count, message.baseAddress, message.count)
        }
        return result == 1
    }
}

/// The few DER encodings a public key or an ECDSA signature needs (X.690).
enum DER {
    static func length(_ n: Int) -> [UInt8] {
        if n < 0x80 { return [UInt8(n)] }
        var bytes: [UInt8] = []
        var rest = n
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    static func sequence(_ content: [UInt8]) -> [UInt8] { [0x30] + length(content.count) + content }

    /// A BIT STRING with no unused bits.
    static func bitString(_ content: [UInt8]) -> [UInt8] { [0x03] + length(content.count + 1) + [0x00] + content }

    /// A non-negative INTEGER from big-endian bytes: minimal, with a 0x00 before a high bit.
    static func integer(_ magnitude: some Collection<UInt8>) -> [UInt8] {
        var bytes = Array(magnitude.drop { $0 == 0 })
        if bytes.isEmpty { bytes = [0] }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return [0x02] + length(bytes.count) + bytes
    }
}
