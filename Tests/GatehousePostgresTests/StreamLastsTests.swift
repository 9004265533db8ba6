import GatehouseJournal
import Testing

@testable import GatehousePostgres

/// What the store thread remembers of each stream: commits only raise a number, the table's
/// answer replaces it, and past its limit it starts over instead of growing.
@Suite("PostgreSQL stream numbers")
struct StreamLastsTests {
    @Test func commitsRaiseTheTableSetsAndTheLimitBoundsMemory() {
        let a = StreamKey(user: "alice", name: "a")
        let b = StreamKey(user: "alice", name: "b")
        var lasts = StreamLasts(limit: 2)
        #expect(lasts[a] == 0)
        lasts.note(a, 5)
        lasts.note(a, 3)
        #expect(lasts[a] == 5)
        lasts.set(a, 2)  // the table says less (rows deleted by hand): the table wins
        #expect(lasts[a] == 2)
        lasts.note(b, 1)
        lasts.note(StreamKey(user: "bob", name: "a"), 9)  // a third stream: starts over
        #expect(lasts.lasts.count == 1)
        #expect(lasts[a] == 0 && lasts[b] == 0)
        #expect(lasts[StreamKey(user: "bob", name: "a")] == 9)
    }

    @Test func theLookupsParameterIsAJSONArrayOfKeys() throws {
        let json = StreamLasts.keysJSON([StreamKey(user: "al\"ice", name: "x:1")])
        #expect(String(decoding: json, as: UTF8.self) == #"[{"user":"al\"ice","stream":"x:1"}]"#)
    }
}
