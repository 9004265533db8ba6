import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// A BIO over a non-blocking socket for server sessions, made to spend fewer system calls than
/// OpenSSL's socket BIO (`SSL_set_fd`):
///
/// - writes never reach the socket: they go to a bounded `CiphertextBuffer` that the owner sends
///   with one `send` per turn (`TLSConnection.sendPendingCiphertext`); OpenSSL's flushes are
///   no-ops. A full buffer answers "retry" and OpenSSL reports want-write, as a full socket did.
/// - a `recv` that returned less than asked for means the socket was empty at that moment: the
///   next read answers "retry" without asking the kernel (it would say EAGAIN), until the owner
///   says the socket is readable again (`socketReadable()`, on an epoll event). Nothing is missed
///   with level-triggered epoll: bytes that arrive meanwhile make the socket readable again.
final class SocketBIOState {
    let fd: Int32
    var output: CiphertextBuffer
    /// The last `recv` came back short or with EAGAIN: the socket holds nothing until epoll says so.
    var drained = false
    /// System calls made, for tests and `strace`-free measurement.
    var receives = 0

    init(fd: Int32, outputLimit: Int) {
        self.fd = fd
        self.output = CiphertextBuffer(limit: outputLimit)
    }
}

enum SocketBIO {
    /// The one method table, made on first use (Swift's static initialization is thread-safe).
    nonisolated(unsafe) static let method: OpaquePointer = {
        let type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR
        guard let method = BIO_meth_new(type, "gatehouse deferred socket") else {
            fatalError("BIO_meth_new failed: out of memory at start-up")
        }
        _ = BIO_meth_set_write(method, write)
        _ = BIO_meth_set_read(method, read)
        _ = BIO_meth_set_ctrl(method, ctrl)
        _ = BIO_meth_set_create(
            method,
            { bio in
                BIO_set_init(bio, 1)
                return 1
            }
        )
        _ = BIO_meth_set_destroy(method, { _ in 1 })  // the states belong to their TLSConnections
        return method
    }()

    /// The state of the session using `bio` now; nil between calls (see `SharedSocketBIO`).
    private static func state(_ bio: OpaquePointer?) -> SocketBIOState? {
        guard let data = BIO_get_data(bio) else { return nil }
        return Unmanaged<SocketBIOState>.fromOpaque(data).takeUnretainedValue()
    }

    private static let retryRead = Int32(BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY)
    private static let retryWrite = Int32(BIO_FLAGS_WRITE | BIO_FLAGS_SHOULD_RETRY)
    private static let retryFlags = Int32(
        BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY
    )

    private static let write: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32 = {
        bio,
        bytes,
        length in
        BIO_clear_flags(bio, retryFlags)
        guard let state = SocketBIO.state(bio) else { return -1 }  // no session attached: fail closed
        let taken = state.output.append(UnsafeRawBufferPointer(start: bytes, count: Int(max(0, length))))
        if taken > 0 || length <= 0 { return Int32(taken) }
        BIO_set_flags(bio, retryWrite)
        return -1
    }

    private static let read: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int32) -> Int32 = {
        bio,
        buffer,
        length in
        BIO_clear_flags(bio, retryFlags)
        guard let state = SocketBIO.state(bio) else { return -1 }  // no session attached: fail closed
        guard length > 0 else { return 0 }
        if state.drained {
            BIO_set_flags(bio, retryRead)
            return -1
        }
        while true {
            state.receives += 1
            let n = recv(state.fd, buffer, Int(length), 0)
            if n > 0 {
                if n < Int(length) { state.drained = true }
                return Int32(n)
            }
            if n == 0 { return 0 }  // EOF
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                state.drained = true
                BIO_set_flags(bio, retryRead)
                return -1
            default: return -1  // errno stays for SSL_ERROR_SYSCALL
            }
        }
    }

    private static let ctrl: @convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int = {
        bio,
        command,
        _,
        _ in
        switch command {
        case BIO_CTRL_FLUSH: return 1  // deferred: the owner sends once per turn
        case BIO_CTRL_WPENDING: return SocketBIO.state(bio)?.output.count ?? 0
        default: return 0
        }
    }
}

/// One deferred-socket BIO that all the buffered-socket sessions of one thread share (a server
/// worker's connections), instead of a BIO each: an `SSL`'s BIO and its lock are about 200 bytes,
/// held by every idle connection for its whole life.
///
/// The BIO reaches a session's socket and output only while that session is inside an OpenSSL
/// call: `TLSConnection` attaches its `SocketBIOState` as the BIO's data before each call that may
/// read or write and detaches it afterwards, so between calls the BIO points at nothing, and a
/// read or write without a session attached fails instead of touching another connection's.
/// The retry flags a call leaves are read by `SSL_get_error` before the next call on the BIO.
///
/// Not thread-safe: every session sharing it must be used on the one thread that owns it.
public final class SharedSocketBIO {
    let bio: OpaquePointer

    public init() throws(TLSError) {
        guard let bio = BIO_new(SocketBIO.method) else { throw .drained(.resource, "BIO_new failed") }
        self.bio = bio
    }

    deinit {
        BIO_free(bio)  // the sessions hold references of their own
    }
}
