import Foundation
import GatehouseClient
import TestSupport
import Testing

/// The journal queue's byte budget bounds the server's memory when the disk is slower than
/// the clients: 200 clients pushing maximal lines against `--fsync always` on a disk that writes
/// about 5 MB/s and takes 10 ms per flush (faultfs's delays), far less than they send.
@Suite("Journal memory")
struct JournalMemoryTests {
    static let budget = 8 << 20
    static let clients = 200
    static let window = 32
    /// What the bound allows besides the queue: the process at rest with 200 TLS connections
    /// (about 40 MiB in a debug build), and per connection a line being received (at most two
    /// maximal lines) and OpenSSL's record buffers (about 34 KiB), rounded up to 256 KiB.
    static let constant = 64 << 20 + clients * (256 << 10)

    @Test func slowDiskAndMaximalLinesStayWithinTheByteBudget() throws {
        let library = try FaultLibrary.path()
        let server = try ServerProcess(
            arguments: ["--journal-queue-bytes", String(Self.budget), "--max-connections", "1000"],
            environment: [
                "LD_PRELOAD": library, "GH_FAULT_PATH": "journal.jsonl", "GH_FAULT_DELAY_US": "10000",
                "GH_FAULT_WRITE_US_PER_KIB": "200",
            ]
        )
        let line = String(repeating: "m", count: 65_536 - "MSG \n".utf8.count)  // exactly the line limit
        let client = try server.client()
        let token = server.tokens["alice"]!
        let stop = Atomic(false)
        let acked = Counter()
        let done = DispatchGroup()
        for _ in 0..<Self.clients {
            done.enter()
            Thread {
                defer { done.leave() }
                guard let conn = try? client.connect(), (try? conn.authenticate(user: "alice", token: token)) != nil
                else { return }
                while !stop.value {
                    let (replies, error) = conn.sendMessages(
                        Array(repeating: line, count: Self.window),
                        window: Self.window
                    )
                    for reply in replies where reply.hasPrefix("ACK ") { acked.add() }
                    if error != nil { return }
                }
                conn.close()
            }.start()
        }
        // Let the backlog build: every client has its window in flight, far more than the budget.
        Thread.sleep(forTimeInterval: 6)
        let peak = server.peakResidentKiB() ?? 0
        stop.set()
        server.stop()  // the clients' windows would take minutes to drain through this disk
        #expect(done.wait(timeout: .now() + 60) == .success)
        #expect(acked.value > 0, "nothing was stored: the test measured an idle server")
        #expect(peak > 0)
        let bound = (Self.budget + Self.constant) >> 10
        #expect(peak < bound, "peak RSS \(peak) KiB over budget + constant = \(bound) KiB")
        print("journal memory: peak RSS \(peak) KiB, bound \(bound) KiB, \(acked.value) maximal lines acknowledged")
    }
}

/// A flag shared between the test and its client threads.
final class Atomic: @unchecked Sendable {
    private let lock = NSLock()
    private var flag: Bool
    init(_ value: Bool) { flag = value }
    var value: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}

extension ServerProcess {
    /// The server's peak resident memory so far, in KiB (VmHWM).
    func peakResidentKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }
}
