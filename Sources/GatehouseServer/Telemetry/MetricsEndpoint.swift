import GatehouseSystem
import Synchronization

/// The plain-HTTP listener of `--metrics-address`: `GET /metrics` (Prometheus text format),
/// `/healthz` (200 while the process runs), `/readyz` (200 while it accepts clients and its
/// store works, 503 otherwise, with the reason in the body).
///
/// One thread of its own, never a worker's. Bounded like the rest of the server: one request at
/// a time (a scraper, a load balancer's probe), each connection given 2 s to send at most
/// 8 KiB of request head and 2 s to take the answer, a listen backlog of 16. Plain HTTP: bind
/// it to loopback or a private address (README).
final class MetricsEndpoint: Sendable {
    struct Routes: Sendable {
        let metrics: @Sendable () -> [UInt8]
        /// nil when ready, else why not.
        let notReady: @Sendable () -> String?
    }

    static let maxRequestBytes = 8192
    let address: String
    /// The listening socket, taken and closed by `stop`.
    private let listenerFD: Mutex<OwnedFD?>
    /// Its number, for the endpoint's thread: `stop` joins the thread before closing it.
    private let listener: Int32
    private let routes: Routes
    private let stopping = Atomic<Bool>(false)
    private let thread: Mutex<OSThread?> = Mutex(nil)

    /// Binds `host:port` (the port may be 0; `address` then names the real one).
    init(host: String, port: Int, routes: Routes) throws(SystemError) {
        guard let first = try SocketAddress.resolve(host: host, port: port).first else {
            throw SystemError.invalidArgument("resolve(\(host))")
        }
        let fd = try Socket.listen(on: first, backlog: 16, reusePort: false)
        self.listener = fd.raw
        self.address = (try? Socket.localAddress(fd.raw))?.description ?? first.description
        self.listenerFD = Mutex(consume fd)
        self.routes = routes
    }

    func start() {
        let started = OSThread(name: "gh-metrics") { [self] in run() }
        thread.withLock { $0 = started }
    }

    /// Stops accepting and waits for the thread.
    func stop() {
        stopping.store(true, ordering: .releasing)
        thread.takeAndJoin()
        listenerFD.withLock { $0.take() }?.close()
    }

    private func run() {
        while !stopping.load(ordering: .acquiring) {
            // A bounded wait, so that `stop` is seen within 200 ms.
            guard let ready = try? Poll.wait([(listener, Poll.readable)], timeoutMs: 200), ready[0] != 0 else {
                continue
            }
            guard let connection = try? Socket.acceptBlocking(listener, timeoutSeconds: 2) else { continue }
            serve(connection.raw)
        }
    }

    private func serve(_ fd: Int32) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while !MetricsEndpoint.headEnds(request) {
            guard request.count < MetricsEndpoint.maxRequestBytes else {
                respond(fd, status: "431 Request Header Fields Too Large", body: Array("request head too large\n".utf8))
                return
            }
            // Closed, failed, or the 2 s passed (a blocking socket's timeout is EAGAIN).
            guard case .done(let n)? = buffer.withUnsafeMutableBytes({ Socket.receive(fd, into: $0) }), n > 0 else {
                return
            }
            request += buffer[0..<n]
        }
        let (status, body, type) = answer(request)
        respond(fd, status: status, body: body, contentType: type)
    }

    /// What to send for a request head: status line, body, content type.
    func answer(_ request: [UInt8]) -> (String, [UInt8], String) {
        let firstLine = request.prefix { $0 != 0x0D && $0 != 0x0A }
        let parts = firstLine.split(separator: 0x20).map { String(decoding: $0, as: UTF8.self) }
        let text = "text/plain; charset=utf-8"
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return ("400 Bad Request", Array("bad request\n".utf8), text)
        }
        guard parts[0] == "GET" || parts[0] == "HEAD" else {
            return ("405 Method Not Allowed", Array("only GET\n".utf8), text)
        }
        let path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? parts[1]
        switch path {
        case "/metrics":
            return ("200 OK", routes.metrics(), "text/plain; version=0.0.4; charset=utf-8")
        case "/healthz":
            return ("200 OK", Array("ok\n".utf8), text)
        case "/readyz":
            if let why = routes.notReady() {
                return ("503 Service Unavailable", Array("not ready: \(why)\n".utf8), text)
            }
            return ("200 OK", Array("ready\n".utf8), text)
        default:
            return ("404 Not Found", Array("not found; try /metrics, /healthz or /readyz\n".utf8), text)
        }
    }

    private func respond(_ fd: Int32, status: String, body: [UInt8], contentType: String = "text/plain") {
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + "Connection: close\r\n\r\n"
        Socket.sendAll(fd, Array(head.utf8) + body)
    }

    static func headEnds(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        for i in 3..<bytes.count
        where bytes[i] == 0x0A && (bytes[i - 1] == 0x0A || (bytes[i - 1] == 0x0D && bytes[i - 2] == 0x0A)) {
            return true
        }
        return false
    }
}
