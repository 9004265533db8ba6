// nio-baseline: the job of gatehouse-server, done the idiomatic swift-nio way, as the baseline
// that scripts/bench-messages.sh measures gatehouse against.
//
// TLS 1.3 (NIOSSL, the same PEM chain and key), a ByteToMessageDecoder for bounded lines
// (discard to LF past --max-line), the protocol's validation (length, UTF-8, control
// characters), AUTH against the same tokens file (`user sha256:<hex>`, SHA-256 from swift-crypto,
// constant-time compare), MSG appended as one JSON line to the journal by one writer thread with
// group commit (one write per group; fdatasync per group under --fsync always), ACK n after the
// write, PING/PONG, QUIT/BYE, the error budget. Replies of one read burst are written together and
// flushed once (channelReadComplete); a burst's messages form one batch, and the batches of one
// event-loop tick go to the journal together.
// Not here (not on the measured path): timers, connection limits, backpressure, rotation.
//
// Usage: nio-baseline --port P --cert C --key K --tokens T --journal J [--fsync always|never|interval=MS]
//        [--threads N] [--host H] [--max-line N]
// SIGTERM: flush the journal, print `nio-baseline stopped records=M flushes=N` on stderr, exit 0.
import Crypto
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

// MARK: configuration

struct Options {
    var host = "127.0.0.1"
    var port = 9999
    var cert = "certs/dev/server.crt"
    var key = "certs/dev/server.key"
    var tokens = "data/tokens"
    var journal = "data/nio-journal.jsonl"
    var fsync = "always"
    var threads = System.coreCount
    var maxLine = 65536
    var errorBudget = 10

    init(_ args: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { fail("missing value for \(args[i - 1])") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--host": host = value()
            case "--port": port = Int(value()) ?? 0
            case "--cert": cert = value()
            case "--key": key = value()
            case "--tokens": tokens = value()
            case "--journal": journal = value()
            case "--fsync": fsync = value()
            case "--threads", "--workers": threads = Int(value()) ?? 1
            case "--max-line": maxLine = Int(value()) ?? 65536
            default: fail("unknown option \(args[i])")
            }
            i += 1
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("nio-baseline: \(message)\n".utf8))
    exit(2)
}

enum FsyncPolicy {
    case always, never
    case interval(UInt64)  // ns
    init(_ text: String) {
        switch text {
        case "always": self = .always
        case "never": self = .never
        default:
            guard text.hasPrefix("interval="), let ms = UInt64(text.dropFirst(9)) else { fail("bad --fsync \(text)") }
            self = .interval(ms * 1_000_000)
        }
    }
}

// MARK: tokens

struct Tokens {
    var hashes: [String: [UInt8]] = [:]
    static let dummy = Array(SHA256.hash(data: Array("nio-baseline-unknown-user".utf8)))

    init(path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { fail("cannot read \(path)") }
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(separator: " ")
            guard f.count == 2, f[1].hasPrefix("sha256:") else { fail("\(path): bad line") }
            let hex = Array(f[1].dropFirst(7).utf8)
            guard hex.count == 64 else { fail("\(path): bad hash") }
            var digest: [UInt8] = []
            for j in stride(from: 0, to: 64, by: 2) {
                guard let b = UInt8(String(decoding: hex[j..<j + 2], as: UTF8.self), radix: 16) else { fail("\(path): bad hex") }
                digest.append(b)
            }
            hashes[String(f[0])] = digest
        }
    }

    /// Same work for an unknown user and a wrong token: one hash, one constant-time compare.
    func verify(user: String, token: [UInt8]) -> Bool {
        let stored = hashes[user]
        let digest = SHA256.hash(data: token)
        let expected = stored ?? Tokens.dummy
        var diff: UInt8 = 0
        var k = 0
        for b in digest {
            diff |= b ^ expected[k]
            k += 1
        }
        return diff == 0 && stored != nil
    }
}

// MARK: journal: one writer thread, group commit

final class JournalBatch {
    var tails: [UInt8] = []  // records after their `{"id":N` prefix, back to back
    var ends: [Int] = []
    let promise: EventLoopPromise<Void>
    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
        tails.reserveCapacity(1024)
    }
}

final class Journal: @unchecked Sendable {
    private let fd: Int32
    private let policy: FsyncPolicy
    private let cond = NSCondition()
    private var queue: [JournalBatch] = []
    private var stopping = false
    private var stopped = false
    private var nextID: UInt64 = 1
    private(set) var records = 0
    private(set) var flushes = 0
    private var lastSync = DispatchTime.now().uptimeNanoseconds
    private var unsynced = false

    init(path: String, policy: FsyncPolicy) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fail("cannot open \(path)") }
        self.policy = policy
        let t = Thread { [self] in
            try? "nio-journal".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            run()
        }
        t.name = "nio-journal"
        t.start()
    }

    func submit(_ batches: [JournalBatch]) {
        cond.lock()
        let wasEmpty = queue.isEmpty
        queue.append(contentsOf: batches)
        if wasEmpty { cond.signal() }
        cond.unlock()
    }

    /// Writes what is queued, flushes, and returns once the writer thread is done.
    func shutdown() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !stopped { cond.wait() }
        cond.unlock()
    }

    private func run() {
        var output: [UInt8] = []
        while true {
            cond.lock()
            while queue.isEmpty && !stopping {
                if case .interval(let ns) = policy, unsynced {
                    _ = cond.wait(until: Date(timeIntervalSinceNow: Double(ns) / 1e9))
                    if queue.isEmpty { syncIfDue(ns) }
                    if queue.isEmpty && unsynced { continue }
                } else {
                    cond.wait()
                }
            }
            let batches = queue
            queue.removeAll(keepingCapacity: true)
            let stop = stopping && batches.isEmpty
            cond.unlock()
            if stop {
                if unsynced { fdatasync(fd); flushes += 1 }
                cond.lock()
                stopped = true
                cond.broadcast()
                cond.unlock()
                return
            }
            output.removeAll(keepingCapacity: true)
            for batch in batches {
                var start = 0
                for end in batch.ends {
                    output.append(contentsOf: #"{"id":"#.utf8)
                    appendDecimal(nextID, to: &output)
                    output.append(contentsOf: batch.tails[start..<end])
                    start = end
                    nextID += 1
                }
                records += batch.ends.count
            }
            var ok = writeAll(output)
            switch policy {
            case .always:
                ok = ok && fdatasync(fd) == 0
                flushes += 1
            case .interval(let ns):
                unsynced = true
                syncIfDue(ns)
            case .never:
                break
            }
            // One task per event loop for the whole group, not one cross-thread hop per promise.
            var byLoop: [ObjectIdentifier: (EventLoop, [EventLoopPromise<Void>])] = [:]
            for batch in batches {
                let loop = batch.promise.futureResult.eventLoop
                byLoop[ObjectIdentifier(loop), default: (loop, [])].1.append(batch.promise)
            }
            for (_, (loop, promises)) in byLoop {
                loop.execute {
                    for p in promises {
                        if ok { p.succeed(()) } else { p.fail(JournalFailed()) }
                    }
                }
            }
        }
    }

    private func syncIfDue(_ ns: UInt64) {
        let now = DispatchTime.now().uptimeNanoseconds
        if unsynced && now - lastSync >= ns {
            fdatasync(fd)
            flushes += 1
            unsynced = false
            lastSync = now
        }
    }

    private func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buf in
            var done = 0
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
    }
}

struct JournalFailed: Error {}

/// Collects the batches of every channel of one event loop during one loop tick and hands them
/// to the journal together (one lock, one wake-up), like gatehouse's per-wake-up batch.
final class LoopSubmitter {
    let loop: EventLoop
    let journal: Journal
    private var pending: [JournalBatch] = []
    init(loop: EventLoop, journal: Journal) {
        self.loop = loop
        self.journal = journal
    }
    func add(_ batch: JournalBatch) {
        pending.append(batch)
        if pending.count == 1 {
            loop.execute { [self] in  // runs after this tick's I/O events
                journal.submit(pending)
                pending.removeAll(keepingCapacity: true)
            }
        }
    }
}

@inline(__always)
func appendDecimal(_ value: some BinaryInteger, to out: inout [UInt8]) {
    var v = UInt64(value)
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var count = 0
    withUnsafeMutableBytes(of: &digits) { d in
        repeat {
            d[23 - count] = 0x30 &+ UInt8(v % 10)
            v /= 10
            count += 1
        } while v > 0
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: d[(24 - count)...]))
    }
}

/// Appends UTF-8 bytes as the inside of a JSON string.
@inline(__always)
func appendEscaped(_ bytes: ByteBufferView, to out: inout [UInt8]) {
    for b in bytes {
        switch b {
        case 0x22: out.append(0x5C); out.append(0x22)
        case 0x5C: out.append(0x5C); out.append(0x5C)
        case 0x09: out.append(0x5C); out.append(0x74)
        case 0..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
        default: out.append(b)
        }
    }
}

/// The batch's time, `2026-11-25T21:00:11.847Z`, formatted at most once per millisecond per thread.
final class Clock {
    private var lastMs: Int = -1
    private var text: [UInt8] = []
    func now() -> [UInt8] {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let ms = ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
        if ms != lastMs {
            lastMs = ms
            var t = ts.tv_sec
            var tm = tm()
            gmtime_r(&t, &tm)
            let s = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, Int32(ms % 1000))
            text = Array(s.utf8)
        }
        return text
    }
}

// MARK: framing

enum Line {
    case line(ByteBuffer)  // without the LF (a CR before it is still there)
    case tooLong
}

/// Bounded line framer: a line longer than `maxLine` (LF included) is reported once and the rest
/// of it discarded up to the next LF, without buffering it.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = Line
    let maxLine: Int
    var discarding = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        if let lf = view.firstIndex(of: 0x0A) {
            let length = lf - view.startIndex + 1
            if discarding {
                buffer.moveReaderIndex(forwardBy: length)
                discarding = false
                return .continue
            }
            if length > maxLine {
                buffer.moveReaderIndex(forwardBy: length)
                context.fireChannelRead(wrapInboundOut(.tooLong))
                return .continue
            }
            let line = buffer.readSlice(length: length - 1)!
            buffer.moveReaderIndex(forwardBy: 1)
            context.fireChannelRead(wrapInboundOut(.line(line)))
            return .continue
        }
        if discarding {
            buffer.moveReaderIndex(to: buffer.writerIndex)
        } else if view.count >= maxLine {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            discarding = true
            context.fireChannelRead(wrapInboundOut(.tooLong))
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

// MARK: validation

enum Invalid { case badUTF8, badChar }

/// UTF-8 (strict: no overlongs, surrogates or code points past U+10FFFF) and no control
/// characters other than TAB (C0, DEL, C1).
func validate(_ bytes: ByteBufferView) -> Invalid? {
    var i = bytes.startIndex
    let end = bytes.endIndex
    while i < end {
        let b = bytes[i]
        if b < 0x80 {
            if (b < 0x20 && b != 0x09) || b == 0x7F { return .badChar }
            i += 1
            continue
        }
        let need: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch b {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; hi = 0x9F
        case 0xF0: need = 3; lo = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; hi = 0x8F
        default: return .badUTF8
        }
        guard end - i > need else { return .badUTF8 }
        let b1 = bytes[i + 1]
        guard b1 >= lo && b1 <= hi else { return .badUTF8 }
        for k in 2..<(need + 1) where !(0x80...0xBF).contains(bytes[i + k]) { return .badUTF8 }
        if b == 0xC2 && b1 <= 0x9F { return .badChar }  // C1 controls U+0080-U+009F
        i += need + 1
    }
    return nil
}

// MARK: the session

final class SessionHandler: ChannelInboundHandler {
    typealias InboundIn = Line
    typealias OutboundOut = ByteBuffer

    static let connections = ManagedAtomicCounter()

    let journal: LoopSubmitter
    let tokens: Tokens
    let clock: Clock
    let errorBudget: Int
    var errorsLeft: Int
    var user: String?
    var fields: [UInt8] = []  // `","user":"…","peer":"…","conn":N` once authenticated
    var acked = 0
    var out: ByteBuffer
    var batch: JournalBatch?
    var burstAcks: [Int] = []  // ACK numbers of this burst's messages, in order of `out`
    var outstanding = 0  // batches (or reply bursts waiting behind one) not yet written
    var closing = false
    let conn: Int

    init(journal: LoopSubmitter, tokens: Tokens, clock: Clock, errorBudget: Int) {
        self.journal = journal
        self.tokens = tokens
        self.clock = clock
        self.errorBudget = errorBudget
        self.errorsLeft = errorBudget
        self.out = ByteBufferAllocator().buffer(capacity: 256)
        self.conn = SessionHandler.connections.next()
    }

    func channelActive(context: ChannelHandlerContext) {
        out = context.channel.allocator.buffer(capacity: 1024)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HELLO gatehouse/1\n")), promise: nil)
    }

    private func error(_ code: String, _ text: String) {
        errorsLeft -= 1
        if errorsLeft <= 0 {
            out.writeString("ERR TOO_MANY_ERRORS error budget spent\n")
            closing = true
        } else {
            out.writeString("ERR \(code) \(text)\n")
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing { return }
        var line: ByteBuffer
        switch unwrapInboundIn(data) {
        case .tooLong:
            error("TOO_LONG", "line longer than the limit")
            return
        case .line(let l):
            line = l
        }
        if line.readableBytesView.last == 0x0D { line.moveWriterIndex(to: line.writerIndex - 1) }
        let view = line.readableBytesView
        if let bad = validate(view) {
            bad == .badUTF8 ? error("BAD_UTF8", "not valid UTF-8") : error("BAD_CHAR", "control character")
            return
        }
        let space = view.firstIndex(of: 0x20) ?? view.endIndex
        let verbLength = space - view.startIndex
        let rest = view[(space == view.endIndex ? space : space + 1)...]
        switch verb(view, verbLength) {
        case .msg:
            guard let batchFields = user.map({ _ in fields }) else { return error("NOAUTH", "authenticate first") }
            guard !rest.isEmpty else { return error("EMPTY", "empty message") }
            if batch == nil { batch = JournalBatch(promise: context.eventLoop.makePromise()) }
            let b = batch!
            b.tails.append(contentsOf: #","time":""#.utf8)
            b.tails.append(contentsOf: clock.now())
            b.tails.append(contentsOf: batchFields)
            b.tails.append(contentsOf: #","n":"#.utf8)
            acked += 1
            appendDecimal(acked, to: &b.tails)
            b.tails.append(contentsOf: #","text":""#.utf8)
            appendEscaped(rest, to: &b.tails)
            b.tails.append(contentsOf: "\"}\n".utf8)
            b.ends.append(b.tails.count)
            out.writeStaticString("ACK ")
            out.writeString(String(acked))
            out.writeInteger(UInt8(0x0A))
        case .auth:
            let args = rest.split(separator: 0x20, omittingEmptySubsequences: false)
            guard args.count == 2, !args[0].isEmpty, !args[1].isEmpty else { return error("SYNTAX", "AUTH <user> <token>") }
            if user != nil { return error("SYNTAX", "already authenticated") }
            let name = String(decoding: args[0], as: UTF8.self)
            if tokens.verify(user: name, token: Array(args[1])) {
                user = name
                let peer = context.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
                var f: [UInt8] = Array(#"","user":""#.utf8)
                appendEscaped(ByteBuffer(string: name).readableBytesView, to: &f)
                f.append(contentsOf: #"","peer":""#.utf8)
                appendEscaped(ByteBuffer(string: peer).readableBytesView, to: &f)
                f.append(contentsOf: #"","conn":"#.utf8)
                appendDecimal(conn, to: &f)
                fields = f
                out.writeString("OK AUTH \(name)\n")
            } else {
                error("AUTH_FAILED", "unknown user or wrong token")
            }
        case .ping:
            guard space == view.endIndex else { return error("SYNTAX", "PING takes no argument") }
            out.writeStaticString("PONG\n")
        case .quit:
            out.writeStaticString("BYE\n")
            closing = true
        case .unknown:
            error("UNKNOWN_COMMAND", "unknown command")
        }
    }

    /// One write and one flush per read burst; if the burst holds messages (or replies must wait
    /// behind earlier ones), the write waits for the journal.
    func channelReadComplete(context: ChannelHandlerContext) {
        guard !closeScheduled, out.readableBytes > 0 || closing else { return }
        closeScheduled = closing
        let replies = out
        out = context.channel.allocator.buffer(capacity: 1024)
        let close = closing
        var gate: EventLoopFuture<Void>?
        if let b = batch {
            batch = nil
            journal.add(b)
            gate = b.promise.futureResult
        } else if outstanding > 0 {
            gate = lastGate
        }
        guard let gate else {
            let done = context.writeAndFlush(wrapOutboundOut(replies))
            if close { done.whenComplete { _ in context.close(promise: nil) } }
            return
        }
        outstanding += 1
        lastGate = gate
        gate.whenComplete { result in
            self.outstanding -= 1
            switch result {
            case .success:
                let done = context.writeAndFlush(self.wrapOutboundOut(replies))
                if close { done.whenComplete { _ in context.close(promise: nil) } }
            case .failure:
                context.close(promise: nil)
            }
        }
    }

    var lastGate: EventLoopFuture<Void>?
    var closeScheduled = false

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    enum Verb { case msg, auth, ping, quit, unknown }

    @inline(__always)
    func verb(_ view: ByteBufferView, _ length: Int) -> Verb {
        func matches(_ word: StaticString) -> Bool {
            guard length == word.utf8CodeUnitCount else { return false }
            let p = word.utf8Start
            var i = view.startIndex
            for k in 0..<length {
                if view[i] | 0x20 != p[k] | 0x20 { return false }
                i += 1
            }
            return true
        }
        switch length {
        case 3: return matches("MSG") ? .msg : .unknown
        case 4: return matches("AUTH") ? .auth : matches("PING") ? .ping : matches("QUIT") ? .quit : .unknown
        default: return .unknown
        }
    }
}

final class ManagedAtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}

// MARK: main

let options = Options(Array(CommandLine.arguments.dropFirst()))
signal(SIGPIPE, SIG_IGN)
let tokens = Tokens(path: options.tokens)
var tls = TLSConfiguration.makeServerConfiguration(
    certificateChain: try NIOSSLCertificate.fromPEMFile(options.cert).map { .certificate($0) },
    privateKey: .privateKey(try NIOSSLPrivateKey(file: options.key, format: .pem)))
tls.minimumTLSVersion = .tlsv13
let sslContext = try NIOSSLContext(configuration: tls)
let journal = Journal(path: options.journal, policy: FsyncPolicy(options.fsync))

let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads))
let clocks = Dictionary(uniqueKeysWithValues: group.makeIterator().map { (ObjectIdentifier($0), Clock()) })
let submitters = Dictionary(
    uniqueKeysWithValues: group.makeIterator().map { (ObjectIdentifier($0), LoopSubmitter(loop: $0, journal: journal)) })
// The listen backlog Gatehouse uses (4096, the kernel's somaxconn here): with 1024, a reconnect
// storm of 10,000 clients would measure the backlog (SYNs dropped, retried after 1 s), not the server.
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 4096)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture(withResultOf: {
            try channel.pipeline.syncOperations.addHandlers([
                NIOSSLServerHandler(context: sslContext),
                ByteToMessageHandler(LineDecoder(maxLine: options.maxLine)),
                SessionHandler(
                    journal: submitters[ObjectIdentifier(channel.eventLoop)]!, tokens: tokens,
                    clock: clocks[ObjectIdentifier(channel.eventLoop)]!,
                    errorBudget: options.errorBudget),
            ])
        })
    }
let server = try bootstrap.bind(host: options.host, port: options.port).wait()
FileHandle.standardError.write(Data("nio-baseline listening on \(server.localAddress!) threads=\(options.threads) fsync=\(options.fsync)\n".utf8))

signal(SIGTERM, SIG_IGN)
signal(SIGINT, SIG_IGN)
let stop = DispatchSemaphore(value: 0)
let sources = [SIGTERM, SIGINT].map { sig in
    let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
    s.setEventHandler { stop.signal() }
    s.resume()
    return s
}
stop.wait()
try? server.close().wait()
journal.shutdown()
FileHandle.standardError.write(Data("nio-baseline stopped records=\(journal.records) flushes=\(journal.flushes)\n".utf8))
exit(0)
