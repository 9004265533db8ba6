import Foundation
import Testing

@testable import GatehouseServer

/// `check-config`'s look at the journal path: written against the stat/access walk before it
/// moved behind GatehouseSystem, so the move keeps every answer.
@Suite("check-config: the journal path")
struct JournalProblemTests {
    let folder: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.path + "/gatehouse-journal-check-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: folder) }

    @Test func anExistingReadableFileIsFine() throws {
        defer { cleanUp() }
        let path = folder + "/journal.log"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(Server.journalProblem(path) == nil)
    }

    @Test func aFolderWhereTheJournalShouldBeIsNotARegularFile() {
        defer { cleanUp() }
        #expect(Server.journalProblem(folder) == "journal \(folder) is not a regular file")
    }

    @Test func aMissingJournalNeedsAWritableNearestFolder() {
        defer { cleanUp() }
        #expect(Server.journalProblem(folder + "/journal.log") == nil)
        // Folders still to be made: the nearest existing one above decides.
        #expect(Server.journalProblem(folder + "/a/b/journal.log") == nil)
        // The probe file is gone again.
        #expect((try? FileManager.default.contentsOfDirectory(atPath: folder)) == [])
    }

    @Test func aFileOnTheWayIsNotAFolder() throws {
        defer { cleanUp() }
        let file = folder + "/plain"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        #expect(Server.journalProblem(file + "/journal.log") == "journal folder \(file) is not a folder")
        #expect(Server.journalProblem(file + "/deeper/journal.log") == "journal folder \(file) is not a folder")
    }

    @Test func aMissingJournalAtTheRootIsJudgedByTheRoot() {
        defer { cleanUp() }
        let path = "/gatehouse-no-such-journal-\(UUID().uuidString)"
        let problem = Server.journalProblem(path)
        // The root is a folder: whatever is said, it is not that (the walk once forgot to stat "/").
        #expect(problem == nil || problem == "journal folder / is not writable: Permission denied")
    }
}
