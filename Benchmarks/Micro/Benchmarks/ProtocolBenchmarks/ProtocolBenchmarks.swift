import Benchmark
import GatehouseJournal
import GatehouseProtocol

/// The per-message work of the server's hot path, piece by piece: framing, validation, parsing,
/// the ACK's encoding and the journal record's encoding and digest. Each benchmark handles
/// 1,000 messages per iteration (`scalingFactor: .kilo`; run with `--scale` for figures per
/// message), at four text sizes, so that the cost per line (the 16 B figure) and per byte (the
/// slope from 1 KiB to 16 KiB) can both be read off one table.
///
/// Framing feeds the lines in 16 KiB chunks, as `SSL_read` hands them over (one TLS record at
/// most), so lines that straddle two records pay the copy they pay in the server.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.instructions, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1000
    )
    for size in [16, 64, 1024, 16384] {
        let input = Messages(textSize: size)
        Benchmark("Framing, \(size) B text") { benchmark in
            var framer = LineFramer(maxLine: 1 << 20)
            var lines = 0
            input.stream.withUnsafeBytes { all in
                var start = 0
                while start < all.count {
                    let end = min(start + 16384, all.count)
                    framer.feed(UnsafeRawBufferPointer(rebasing: all[start..<end])) { _ in
                        lines += 1
                        return true
                    }
                    start = end
                }
            }
            precondition(lines == benchmark.scaledIterations.count)
            blackHole(lines)
        }
        Benchmark("Validation, \(size) B text") { benchmark in
            for i in benchmark.scaledIterations {
                input.withLine(i) { blackHole(LineValidator.validate($0)) }
            }
        }
        Benchmark("Parsing, \(size) B text") { benchmark in
            for i in benchmark.scaledIterations {
                input.withLine(i) { blackHole(CommandParser.parse($0)) }
            }
        }
        Benchmark("Record encoding, \(size) B text") { benchmark in
            let batch = input.encodedBatch(count: benchmark.scaledIterations.count)
            blackHole(batch.byteCount)
        }
        // The journal writer chains a digest over each record's bytes (SHA-256, JournalDigest).
        Benchmark("Record digest, \(size) B text") { benchmark in
            var digest = JournalDigest.genesis
            let batch = input.encodedBatch(count: benchmark.scaledIterations.count)
            benchmark.startMeasurement()
            batch.tails.withUnsafeBytes { tails in
                var start = 0
                for end in batch.ends {
                    digest = digest.next(UnsafeRawBufferPointer(rebasing: tails[start..<end]))
                    start = end
                }
            }
            benchmark.stopMeasurement()
            blackHole(digest)
        }
    }
    Benchmark("ACK encoding") { benchmark in
        var out: [UInt8] = []
        out.reserveCapacity(16 * 1024)
        for i in benchmark.scaledIterations {
            Reply.ack(1_000_000 + i).encode(into: &out)
        }
        blackHole(out.count)
    }
}

/// 1,000 `MSG` lines whose texts are `textSize` bytes of printable ASCII, each line LF-terminated.
struct Messages: Sendable {
    let stream: [UInt8]
    /// Where each line starts in `stream`; the line's LF is at the next start minus one.
    let starts: [Int]

    init(textSize: Int) {
        var stream: [UInt8] = []
        var starts: [Int] = []
        for i in 0..<1000 {
            starts.append(stream.count)
            stream.append(contentsOf: "MSG ".utf8)
            for j in 0..<textSize { stream.append(UInt8(0x61 + (i + j) % 26)) }
            stream.append(0x0A)
        }
        starts.append(stream.count)
        self.stream = stream
        self.starts = starts
    }

    /// A journal batch holding the first `count` texts as records (what a worker builds).
    func encodedBatch(count: Int) -> JournalBatch {
        var clock = JournalClock()
        let time = clock.now()
        let fields = JSON.connectionFields(user: "alice", peer: "127.0.0.1:50000", connection: 7)
        let batch = JournalBatch(worker: 0)
        for i in 0..<count {
            withText(i) { batch.append(time: time, connectionFields: fields, n: i + 1, text: $0, owner: 0) }
        }
        return batch
    }

    /// The `i`-th line without its LF.
    func withLine<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        stream.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[starts[i]..<(starts[i + 1] - 1)])) }
    }

    /// The `i`-th message text (after `MSG `).
    func withText<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        stream.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[(starts[i] + 4)..<(starts[i + 1] - 1)])) }
    }
}
