import Testing

@testable import GatehousePostgres

/// The checks made before anything connects: a password on the command line is refused, the
/// table name is one that can be quoted safely.
@Suite struct PostgresSettingsTests {
    @Test(arguments: [
        "postgresql://alice:secret@db.example/gatehouse",
        "host=db.example user=alice password=secret dbname=gatehouse",
        "postgresql://db.example/gatehouse?password=secret",
    ])
    func aPasswordInTheConnectionStringIsRefused(_ conninfo: String) {
        let problem = PostgresSettings(conninfo: conninfo, node: "n1").problem()
        #expect(problem?.contains("must not contain a password") == true)
        #expect(problem?.contains("secret") == false)
    }

    @Test(arguments: ["postgresql://alice@db.example/gatehouse", "host=/tmp port=5433 dbname=postgres", ""])
    func aConnectionStringWithoutPasswordIsAccepted(_ conninfo: String) {
        #expect(PostgresSettings(conninfo: conninfo, node: "n1").problem() == nil)
    }

    @Test func anUnparsableConnectionStringIsRefused() {
        #expect(PostgresSettings(conninfo: "host", node: "n1").problem() != nil)
    }

    @Test func tableNamesAreQuotedOrRefused() {
        #expect(PostgresSettings.quotedTable("gatehouse_messages") == #""gatehouse_messages""#)
        #expect(PostgresSettings.quotedTable("ops.Msgs2") == #""ops"."Msgs2""#)
        for bad in ["", "a.b.c", "1abc", "x\"; DROP TABLE y", "a-b", ".a", String(repeating: "a", count: 64)] {
            #expect(PostgresSettings.quotedTable(bad) == nil, "\(bad)")
        }
    }
}
