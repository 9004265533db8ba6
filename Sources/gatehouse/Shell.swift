import ArgumentParser
import GatehouseClient
import GatehouseProtocol
import GatehouseSystem
import Synchronization

struct Shell: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Interactive session: type messages, see replies as they arrive.",
        discussion: """
            Each line you type is sent as a message (MSG). Commands start with '/':
              /ping        send PING (the server answers PONG)
              /raw LINE    send LINE exactly as typed (e.g. /raw AUTH user token)
              /quit        send QUIT and leave (so do Ctrl-D and Ctrl-C on an empty line)
              /help        this list
            Replies are printed as they arrive, by a reader thread, above the line being typed. When the server closes the connection (idle timeout, shutdown) the shell says so and exits with status 3.

            On a terminal the line can be edited (arrows, Home/End, Ctrl-A/E/U/K/W) and Up/Down walk the history of this session and earlier ones ($HOME/.gatehouse_history; /raw lines are not kept, so a token typed there stays out of it). Otherwise lines are read plainly, so the shell can be scripted: printf 'hello\\n/ping\\n' | gatehouse shell

            Examples:
              gatehouse shell
              GATEHOUSE_USER=alice gatehouse shell --token-file ~/.gh-token
            """
    )

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        GatehouseSystem.Process.ignoreSIGPIPE()
        let scratch = ReadScratch()
        let session = try connection.openSession(scratch: scratch, requireAuth: false)
        let terminal = Terminal()
        let config = try connection.configuration()
        let who =
            session.user.map { "authenticated as \($0)" } ?? "not authenticated (no token: use /raw AUTH user token)"
        terminal.printLine(
            "connected to \(config.host):\(config.port) (\(session.connection.tlsDescription)), \(who). /help for commands."
        )

        let link = ShellLink()
        // The connection moves to the I/O thread here; this thread does not touch it again.
        let handOver = HandOver(session.connection, scratch)
        let io = OSThread(name: "shell-io") { runIO(handOver.take(), link: link, terminal: terminal) }

        var history = ShellHistory.load()
        terminal.enterRawMode()
        defer { terminal.restore() }
        var quitting = false
        loop: while true {
            switch terminal.readLine(prompt: "> ", history: &history.lines, stop: link.closed) {
            case .stopped:
                break loop
            case .endOfInput:
                quitting = true
                link.send("QUIT")
                break loop
            case .line(let line):
                guard let wire = Self.translate(line, terminal: terminal) else { continue }
                if !line.hasPrefix("/raw ") { history.add(line) }
                link.send(wire)
                if wire == "QUIT" {
                    quitting = true
                    break loop
                }
            }
        }
        // Wait for the server's BYE and close (or its own close), a bounded time.
        EventFD.wait(link.closed, timeoutMs: quitting ? 5000 : 0)
        link.stop.store(true, ordering: .relaxed)
        EventFD.signal(link.wake)
        io.join()
        terminal.restore()
        history.save()
        if !quitting || link.serverClosedFirst.load(ordering: .relaxed) { throw ExitCode(ExitStatus.interrupted) }
    }

    /// The wire line for what the user typed, or nil when nothing is to be sent.
    static func translate(_ line: String, terminal: Terminal) -> String? {
        if line.isEmpty { return nil }
        guard line.hasPrefix("/") else { return "MSG " + line }
        let command = line.split(separator: " ", maxSplits: 1).first.map(String.init) ?? line
        switch command.lowercased() {
        case "/ping": return "PING"
        case "/stream":
            let name = line.dropFirst(8)
            guard !name.isEmpty else {
                terminal.printLine("usage: /stream NAME (before the first message of the connection)")
                return nil
            }
            return "STREAM " + name
        case "/quit", "/exit": return "QUIT"
        case "/raw":
            let rest = line.dropFirst(5)
            return rest.isEmpty ? nil : String(rest)
        case "/help":
            terminal.printLine(
                "  text: send it as a message   /stream NAME   /ping   /raw LINE   /quit   (Ctrl-D quits)"
            )
            return nil
        default:
            terminal.printLine(
                "unknown command \(command); /help lists them (a message starting with '/': /raw MSG /...)"
            )
            return nil
        }
    }
}

/// What the input thread and the I/O thread share: an outbox, two eventfds and two flags.
///
/// Thread-safe: a mutex, atomics, and descriptors that are only signalled and waited on.
final class ShellLink: Sendable {
    let outbox = Mutex<[String]>([])
    /// Eventfds, owned by this object and closed with it; both threads only signal and wait on them.
    private let wakeFD: OwnedFD
    private let closedFD: OwnedFD
    var wake: Int32 { wakeFD.raw }
    var closed: Int32 { closedFD.raw }
    let stop = Atomic<Bool>(false)
    /// The server closed before the user asked to quit.
    let serverClosedFirst = Atomic<Bool>(false)
    let quitSent = Atomic<Bool>(false)

    init() {
        // eventfd only fails when the process is out of descriptors: nothing to recover here.
        wakeFD = try! EventFD.create()
        closedFD = try! EventFD.create()
    }

    func send(_ line: String) {
        if line == "QUIT" { quitSent.store(true, ordering: .relaxed) }
        outbox.withLock { $0.append(line) }
        EventFD.signal(wake)
    }
}

/// Moves a connection and its buffer to the thread that will own them, exactly once.
///
/// `@unchecked Sendable`: the creating thread gives up both objects when it makes this box and
/// never touches them again; `take()` is called once, on the receiving thread.
final class HandOver: @unchecked Sendable {
    private var value: (LineConnection, ReadScratch)?
    init(_ connection: LineConnection, _ scratch: ReadScratch) { value = (connection, scratch) }
    func take() -> (LineConnection, ReadScratch) {
        defer { value = nil }
        return value!
    }
}

/// The I/O thread: owns the connection, sends what the input thread queued, prints each reply
/// as it arrives, and says so when the server closes.
private func runIO(_ owned: (LineConnection, ReadScratch), link: ShellLink, terminal: Terminal) {
    let (connection, scratch) = owned
    var lines: [String] = []
    var ready: [Int32] = []
    var lastNotice: String?
    defer { EventFD.signal(link.closed) }
    while !link.stop.load(ordering: .relaxed) {
        ready.removeAll()
        let outcome = connection.pump(
            lines: &lines,
            scratch: scratch,
            timeoutMs: -1,
            watch: [link.wake],
            readyWatched: &ready
        )
        if !ready.isEmpty {
            EventFD.drain(link.wake)
            for line in link.outbox.withLock({ o -> [String] in
                defer { o.removeAll() }
                return o
            }) {
                connection.queueLine(line)
            }
            _ = connection.drive(lines: &lines, scratch: scratch.buffer)
        }
        for line in lines {
            terminal.printLine(line)
            // The stream's state: what the server holds, and the number the next message gets.
            if case .okStream(let stream, let last)? = Reply(line: line) {
                terminal.printLine(
                    "*** stream \(stream): the server holds messages 1 to \(last); next is \(last + 1)"
                )
            }
            if let error = ClientError.fromReply(line), error.isClosingNotice || error.kind == .server(.tooManyErrors) {
                lastNotice = line
            }
        }
        lines.removeAll()
        if case .ended(let error) = outcome {
            if !link.quitSent.load(ordering: .relaxed) {
                link.serverClosedFirst.store(true, ordering: .relaxed)
                let why = lastNotice ?? error?.message ?? "no reason given"
                terminal.printLine("*** the server closed the connection: \(why)")
            }
            return
        }
    }
    connection.close()
}

/// The shell's history: this session's lines and the last 500 of earlier ones.
struct ShellHistory {
    var lines: [String] = []
    private static var path: String? { GatehouseSystem.Process.environment("HOME").map { $0 + "/.gatehouse_history" } }

    static func load() -> ShellHistory {
        guard let path, let bytes = try? FileIO.readFile(path).bytes else { return ShellHistory() }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        return ShellHistory(lines: Array(lines.suffix(500)))
    }

    mutating func add(_ line: String) {
        if lines.last != line { lines.append(line) }
    }

    func save() {
        guard let path = Self.path, !lines.isEmpty, let file = try? FileIO.create(path, mode: 0o600) else { return }
        Console.write(file.raw, lines.suffix(500).joined(separator: "\n") + "\n")
    }
}
