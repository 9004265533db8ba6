import Foundation
import GatehouseClient
import TestSupport

/// `scripts/faultfs.c`, the LD_PRELOAD library that makes the journal's disk fail on chosen
/// calls, built once per test run with the system C compiler.
enum FaultLibrary {
    // The folder lives as long as the test process (a TemporaryDirectory is removed on deinit).
    private static let folder = try? TemporaryDirectory(prefix: "gatehouse-faultfs")
    private static let built: Result<String, TestSupportError> = {
        do {
            guard let dir = folder else { return .failure(TestSupportError("no temporary folder")) }
            let library = dir.file("libfaultfs.so")
            let result = try ProcessRunner.run(
                try ProcessRunner.which("cc"),
                ["-shared", "-fPIC", "-O1", "-o", library, Repository.root + "/scripts/faultfs.c", "-ldl"]
            )
            guard result.status == 0 else { return .failure(TestSupportError("cc faultfs.c: \(result.stderr)")) }
            return .success(library)
        } catch {
            return .failure(TestSupportError("cannot build faultfs: \(error)"))
        }
    }()

    static func path() throws -> String { try built.get() }
}

extension ServerProcess {
    /// The journal's files in order: numbered segments, oldest first, then the active file.
    func journalFiles() throws -> [String] {
        let base = (journalFile as NSString).lastPathComponent
        let segments = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix(base + ".") && Int($0.dropFirst(base.count + 1)) != nil }
            .sorted()
            .map { directory.file($0) }
        return segments + (FileManager.default.fileExists(atPath: journalFile) ? [journalFile] : [])
    }

    /// Every record in every journal file, in order, parsed (throws if a line is not JSON).
    func allJournalRecords() throws -> [[String: Any]] {
        var records: [[String: Any]] = []
        for file in try journalFiles() {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw TestSupportError("\(file): a line is not a JSON object: \(line.prefix(200))")
                }
                records.append(object)
            }
        }
        return records
    }

    /// `gatehouse-server journal verify --journal FILE`.
    func verifyJournal(_ path: String? = nil) throws -> ProcessResult {
        try ProcessRunner.run(Repository.serverBinary, ["journal", "verify", "--journal", path ?? journalFile])
    }
}

/// Pipelining clients that send unique messages and sort the replies: ACK, or refused.
final class ReplyLedger: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var acked: [String] = []
    private(set) var refused: [String] = []
    private(set) var otherReplies: [String] = []

    /// `clients` connections, each sending `count` messages `prefix-c<i>-m<j>` with `window` in flight.
    func send(to server: ServerProcess, clients: Int, count: Int, window: Int, prefix: String) throws {
        let client = try server.client()
        let token = server.tokens["alice"]!
        DispatchQueue.concurrentPerform(iterations: clients) { c in
            guard let conn = try? client.connect(), (try? conn.authenticate(user: "alice", token: token)) != nil else {
                return
            }
            let messages = (0..<count).map { "\(prefix)-c\(c)-m\($0)" }
            let (replies, _) = conn.sendMessages(messages, window: window)
            lock.lock()
            for (message, reply) in zip(messages, replies) {
                if reply.hasPrefix("ACK ") {
                    acked.append(message)
                } else if reply.hasPrefix("ERR UNAVAILABLE") {
                    refused.append(message)
                } else {
                    otherReplies.append(reply)
                }
            }
            lock.unlock()
            conn.quit()
        }
    }
}
