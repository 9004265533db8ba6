import ArgumentParser
import GatehouseJournal
import GatehouseSystem

struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Check the journal.",
        subcommands: [Verify.self]
    )

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every segment and the active file, in order: record shape, ids, the digest chain.",
            discussion: """
                Prints the first bad record with its file and byte offset (exit status 1), or the number of
                records, the last id and its digest (exit status 0). Safe on a running server's journal.
                """
        )
        @Option(help: "The journal (its segments FILE.000001, … are found beside it).")
        var journal: String = Defaults.journal

        func run() throws {
            let result: JournalVerification
            do { result = try JournalVerifier.verify(journal: journal) } catch {
                throw CleanExit.message("gatehouse-server: \(error)", code: 2)
            }
            for note in result.notes { Console.error("note: \(note)") }
            if let failure = result.failure {
                Console.out("BAD \(failure)")
                Console.out(
                    "\(result.records) good records before it\(result.records > 0 ? ", the last with id \(result.lastID)" : "")"
                )
                throw ExitCode(1)
            }
            var line = "OK \(result.records) records in \(result.files.count) file(s), last id \(result.lastID)"
            if let digest = result.lastDigest { line += ", digest \(digest)" }
            if result.undigested > 0 {
                line += " (\(result.undigested) from before digests: ids and shape checked only)"
            }
            Console.out(line)
        }
    }
}
