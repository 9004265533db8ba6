import COpenSSL
import GatehouseSystem
import Synchronization

/// The keys that encrypt TLS 1.3 session tickets, rotated on a schedule and shared by every
/// server context the process builds (all workers, and the contexts a SIGHUP reload makes), so
/// that a reload of certificates or tokens does not turn every client's ticket into a full
/// handshake. Who may resume is decided by the session-id context, not by the keys: a reload that
/// changes the client CA, the CRL or the client-auth mode changes that context, and OpenSSL then
/// refuses to resume the older sessions (see `TLSContext.sessionIDContext`).
///
/// Rotation: a key encrypts new tickets for `rotationSeconds`, then only decrypts for two more
/// periods, then it is forgotten (every resumption gets a fresh ticket, under the current key); tickets live
/// `2 × rotationSeconds` (`ticketLifetimeSeconds`), so no ticket outlives its key. Stolen
/// ticket keys therefore expose at most three periods of resumed sessions.
///
/// TLS 1.2 gets no tickets at all: a TLS 1.2 resumption has no fresh key exchange, so a ticket
/// key taken later would decrypt every such session. TLS 1.3 resumption (PSK with ECDHE) keeps
/// forward secrecy.
///
/// Thread-safe: the keys are behind a mutex, taken once per ticket issued or opened.
public final class TicketKeyRing: Sendable {
    struct Key: Sendable {
        let name: [UInt8]  // 16 bytes, sent in the clear in the ticket
        let aes: [UInt8]  // 32 bytes
        let hmac: [UInt8]  // 32 bytes
        let createdAt: UInt64  // monotonic seconds
    }

    public let rotationSeconds: UInt64
    private let keys: Mutex<[Key]>  // newest first
    private let clock: @Sendable () -> UInt64

    /// `clock` returns monotonic seconds: the process's one monotonic clock unless a test
    /// passes its own.
    public init(rotationSeconds: UInt64 = 3600, clock: (@Sendable () -> UInt64)? = nil) {
        precondition(rotationSeconds >= 1)
        self.rotationSeconds = rotationSeconds
        self.clock = clock ?? TicketKeyRing.monotonicSeconds
        self.keys = Mutex([])
    }

    /// How long a ticket stays valid: two rotation periods, so its key is still held.
    public var ticketLifetimeSeconds: Int { Int(clamping: 2 * rotationSeconds) }

    /// Names of the keys held now, newest first (hex), for tests and logs.
    public var keyNames: [String] {
        keys.withLock { $0.map { $0.name.map { String($0, radix: 16) }.joined() } }
    }

    /// The key new tickets are encrypted with, made or rotated as the schedule says.
    func currentKey() -> Key {
        let now = clock()
        return keys.withLock { ring in
            expire(&ring, now: now)
            if let newest = ring.first, now < newest.createdAt + rotationSeconds { return newest }
            let key = Key(
                name: Crypto.randomBytes(16),
                aes: Crypto.randomBytes(32),
                hmac: Crypto.randomBytes(32),
                createdAt: now
            )
            ring.insert(key, at: 0)
            return key
        }
    }

    /// The key a ticket names; nil when it was never made here or has been forgotten.
    func key(named name: UnsafePointer<UInt8>) -> Key? {
        let now = clock()
        return keys.withLock { ring in
            expire(&ring, now: now)
            return ring.first { $0.name.elementsEqual(UnsafeBufferPointer(start: name, count: 16)) }
        }
    }

    private func expire(_ ring: inout [Key], now: UInt64) {
        ring.removeAll { now >= $0.createdAt + 3 * rotationSeconds }
    }

    private static func monotonicSeconds() -> UInt64 { Process.monotonicNanoseconds() / 1_000_000_000 }
}

extension TLSContext {
    /// Hands ticket encryption to `ring`. The context keeps the ring alive (`ticketKeys`); the C
    /// callback finds it through the context's app-data slot.
    func useTicketKeys(_ ring: TicketKeyRing) {
        _ = SSL_CTX_set_ex_data(ctx, 0, Unmanaged.passUnretained(ring).toOpaque())
        _ = SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketKeyCallback)
        _ = SSL_CTX_set_timeout(ctx, ring.ticketLifetimeSeconds)
    }
}

/// OpenSSL's ticket-key callback: `enc` 1 issues a ticket, 0 opens one. Returns 1 (use these
/// keys), 2 (opened: and send a fresh ticket), 0 (no ticket / not resumable: a full handshake
/// follows), -1 (internal error).
///
/// An opened ticket always answers 2: in TLS 1.3 OpenSSL sends a new ticket after a resumed
/// handshake only when asked to renew, and clients count on one (a ticket should be used once,
/// RFC 8446 appendix C.4; the bundled client and `s_client -sess_out` keep the newest).
private func ticketKeyCallback(
    ssl: OpaquePointer?,
    name: UnsafeMutablePointer<UInt8>?,
    iv: UnsafeMutablePointer<UInt8>?,
    cipher: OpaquePointer?,
    mac: OpaquePointer?,
    enc: Int32
) -> Int32 {
    guard let ssl, let name, let iv, let ctx = SSL_get_SSL_CTX(ssl), let raw = SSL_CTX_get_ex_data(ctx, 0) else {
        return -1
    }
    // TLS 1.2 sessions get no ticket and resume from none (see TicketKeyRing).
    if SSL_version(ssl) < COpenSSL_TLS1_3_VERSION { return 0 }
    let ring = Unmanaged<TicketKeyRing>.fromOpaque(raw).takeUnretainedValue()
    if enc == 1 {
        let key = ring.currentKey()
        key.name.withUnsafeBufferPointer { name.update(from: $0.baseAddress!, count: 16) }
        let ok = key.aes.withUnsafeBufferPointer { aes in
            key.hmac.withUnsafeBufferPointer { hmac in
                COpenSSL_ticket_key_setup(cipher, mac, aes.baseAddress, hmac.baseAddress, iv, 1)
            }
        }
        return ok == 1 ? 1 : -1
    }
    guard let key = ring.key(named: name) else { return 0 }
    let ok = key.aes.withUnsafeBufferPointer { aes in
        key.hmac.withUnsafeBufferPointer { hmac in
            COpenSSL_ticket_key_setup(cipher, mac, aes.baseAddress, hmac.baseAddress, iv, 0)
        }
    }
    return ok == 1 ? 2 : -1
}
