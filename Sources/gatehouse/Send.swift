import ArgumentParser
import GatehouseClient
import GatehouseProtocol
import GatehouseSystem

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send messages and print each acknowledgement.",
        discussion: """
            Messages come from the arguments, else from --file, else from standard input, one per line (empty lines are skipped; a CR before the LF is dropped). Lines from standard input are sent as they arrive, up to --window unanswered at a time.

            Each ACK is printed to standard output as the server sent it ("ACK 1"); each refusal goes to standard error with the message's name ("message 2", "line 7") and the server's reason. With --quiet only a summary is printed.

            With --token-command the token is an access token (a JWT) the command prints; a long send runs the command again before the token expires and re-authenticates the connection with the new one.

            With --stream NAME every message is stored exactly once: the client keeps what is not acknowledged, reconnects after a break (exponential backoff with jitter, for up to --retry-for seconds), and resends from the stream's last stored number; it exits 0 only when all are acknowledged and prints the number of reconnects. With --file, line k is message k of the stream, so a rerun after a crash sends only the lines the stream lacks (the lines skipped are not compared: do not change the file between runs).

            Exit status: 0 every message acknowledged; 1 some message refused; 2 could not connect, verify the server or authenticate (nothing sent); 3 the connection broke: standard error then lists the messages not acknowledged, which are safe to resend (a message that was written but not answered may have been stored: the server's journal tells).

            Examples:
              gatehouse send hello
              gatehouse send "first message" "second message"
              printf 'a\\nb\\nc\\n' | gatehouse send --quiet
              gatehouse send --file messages.txt --window 256
              GATEHOUSE_TOKEN_FILE=~/.gh-token gatehouse send --host msg.example.com hi
              tail -f app.log | gatehouse send --token-command 'scripts/dev-idp.sh mint --sub dev'
              tail -f app.log | gatehouse send --stream app --quiet
              gatehouse send --stream import --file data.txt --retry-for 600
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .shortAndLong, help: "Read messages from FILE, one per line ('-' for standard input).")
    var file: String?
    @Option(help: "Messages sent ahead of their replies (pipelining depth).")
    var window: Int = 64
    @Flag(name: .shortAndLong, help: "Print only a summary line, not every ACK.")
    var quiet = false
    @Option(
        help:
            "Send through stream NAME: every message stored exactly once, across broken connections and server restarts; with --file, a rerun sends only the lines the stream lacks."
    )
    var stream: String?
    @Option(name: .customLong("retry-for"), help: "With --stream: seconds to keep reconnecting after a break.")
    var retryFor: Double = 60
    @Argument(help: "Messages to send; none: read --file or standard input.")
    var messages: [String] = []

    func validate() throws {
        guard (1...100_000).contains(window) else { throw ValidationError("--window must be 1 to 100000") }
        if !messages.isEmpty && file != nil { throw ValidationError("give messages as arguments or --file, not both") }
        for (i, m) in messages.enumerated() where m.contains("\n") || m.contains("\r") {
            throw ValidationError("message \(i + 1) contains a line break; send multi-line input with --file or stdin")
        }
        if let stream, !CommandParser.isValidStreamName(stream) {
            throw ValidationError("a stream name is 1 to 64 of A-Z a-z 0-9 . _ - :")
        }
        guard retryFor >= 0 && retryFor <= 86_400 * 30 else {
            throw ValidationError("--retry-for must be 0 to 2592000")
        }
        for (i, m) in messages.enumerated() where m.isEmpty {
            throw ValidationError("message \(i + 1) is empty")
        }
    }

    func run() throws {
        GatehouseSystem.Process.ignoreSIGPIPE()
        let source: any MessageSource
        var input: OwnedFD? = nil  // the --file descriptor, closed when `run` returns
        defer { _ = input.take() }
        if !messages.isEmpty {
            source = ArgumentSource(messages)
        } else if let file, file != "-" {
            // A blocking open, as before: a FIFO waits here for its writer.
            let opened: OwnedFD
            do { opened = try FileIO.openReadOnly(file) } catch {
                throw ValidationError("cannot open \(file): \(error.reason)")
            }
            source = DescriptorSource(fd: opened.raw, name: file)
            input = consume opened
        } else {
            source = DescriptorSource(fd: 0, name: nil)
        }
        if let stream {
            let send = StreamSend(
                name: stream,
                connection: connection,
                window: window,
                quiet: quiet,
                retryFor: retryFor,
                fromFile: file != nil && file != "-"
            )
            try send.run(source: source)
            return
        }

        let scratch = ReadScratch()
        let session = try connection.openSession(scratch: scratch, requireAuth: true)
        let timeoutMs = try connection.configuration().timeoutMs
        var refusedNames: [String] = []
        var lastAcked: String?
        // Ctrl-C stops the send and still reports what was and was not acknowledged.
        let interrupt = InterruptEvent.install()
        var sender = PipelinedSender(window: window, replyTimeoutMs: max(timeoutMs, 1000), interruptFD: interrupt)
        // An access token from --token-command is fetched again before it expires, and the
        // connection re-authenticated with it, so a long send outlives its first token.
        if let command = connection.resolvedTokenCommand, let token = session.token, let user = session.user {
            sender.reauthenticator = TokenRefresher(command: command, user: user, token: token)
        }
        let summary = sender.run(
            connection: session.connection,
            source: source,
            scratch: scratch
        ) { message, outcome in
            switch outcome {
            case .acknowledged(let n):
                lastAcked = message.label
                if !quiet { Console.out("ACK \(n)") }
            case .refused(let error):
                refusedNames.append(message.label)
                Console.error("gatehouse: \(message.label) refused: \(error.message) [\(Self.preview(message.text))]")
            }
        }
        if summary.connectionError == nil {
            _ = try? session.connection.request("QUIT", scratch: scratch, timeoutMs: 2000, what: "BYE")
        }
        session.connection.close()
        if let readError = (source as? DescriptorSource)?.readError {
            Console.error("gatehouse: reading input failed: \(readError)")
        }
        try report(summary, source: source, refused: refusedNames, lastAcked: lastAcked)
    }

    private func report(_ summary: SendSummary, source: any MessageSource, refused: [String], lastAcked: String?) throws
    {
        let counts = "\(summary.acknowledged) acknowledged, \(summary.refused) refused"
        if let error = summary.connectionError {
            Console.error(
                error.message == "interrupted"
                    ? "gatehouse: interrupted" : "gatehouse: the connection broke: \(error.message)"
            )
            Console.error("gatehouse: \(counts); last acknowledged: \(lastAcked ?? "none")")
            if !summary.unanswered.isEmpty {
                let names = summary.unanswered.map(\.label).joined(separator: ", ")
                Console.error("gatehouse: sent but not answered (may or may not be stored): \(names)")
            }
            var rest = source.take(max: Int.max).map(\.label)
            if let descriptor = source as? DescriptorSource, !descriptor.isExhausted {
                rest.append("all input after line \(descriptor.linesRead)")
            }
            if !rest.isEmpty { Console.error("gatehouse: not sent: \(rest.joined(separator: ", "))") }
            if quiet { Console.out(counts + ", connection broke") }
            throw ExitCode(error.message == "interrupted" ? 130 : ExitStatus.interrupted)
        }
        if quiet || !refused.isEmpty {
            let text = refused.isEmpty ? counts : counts + " (\(refused.joined(separator: ", ")))"
            if quiet { Console.out(text) } else { Console.error("gatehouse: \(text)") }
        }
        if !refused.isEmpty { throw ExitCode(ExitStatus.refused) }
    }

    /// A short, printable view of a message for error lines.
    static func preview(_ text: [UInt8]) -> String {
        let shown = String(decoding: text.prefix(40), as: UTF8.self).map { c -> Character in
            c.isASCII && (c.asciiValue! < 0x20 || c.asciiValue! == 0x7F) ? "?" : c
        }
        return String(shown) + (text.count > 40 ? "… (\(text.count) bytes)" : "")
    }
}
