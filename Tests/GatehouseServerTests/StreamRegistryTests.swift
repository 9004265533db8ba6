import GatehouseJournal
import Testing

@testable import GatehouseServer

/// The registry of open streams: one holder at a time, and the new one is told where the stream
/// stands only once every earlier holder released it.
@Suite("Stream registry")
struct StreamRegistryTests {
    let key = StreamKey(user: "alice", name: "app")
    let a = StreamRegistry.Holder(worker: 0, token: 1)
    let b = StreamRegistry.Holder(worker: 1, token: 1)
    let c = StreamRegistry.Holder(worker: 0, token: 2)

    @Test func aFreeStreamIsReadyAtOnce() {
        var r = StreamRegistry()
        let (ready, previous) = r.open(key, by: a)
        #expect(ready && previous == nil)
        #expect(r.release(key, by: a) == nil)
        #expect(r.entries.isEmpty)
    }

    @Test func takingOverWaitsForTheOldHolder() {
        var r = StreamRegistry()
        _ = r.open(key, by: a)
        let (ready, previous) = r.open(key, by: b)
        #expect(!ready && previous == a)
        #expect(r.release(key, by: a) == b)
        #expect(r.release(key, by: b) == nil)
        #expect(r.entries.isEmpty)
    }

    @Test func aChainOfTakeoversWakesOnlyTheNewestOnceAllAreDone() {
        var r = StreamRegistry()
        _ = r.open(key, by: a)
        _ = r.open(key, by: b)
        let (ready, previous) = r.open(key, by: c)
        #expect(!ready && previous == b)
        // b never got its OK STREAM; it releases first, but a still has messages in flight.
        #expect(r.release(key, by: b) == nil)
        #expect(r.release(key, by: a) == c)
    }

    @Test func anOwnerThatClosedLeavesTheStreamFree() {
        var r = StreamRegistry()
        _ = r.open(key, by: a)
        _ = r.open(key, by: b)
        #expect(r.release(key, by: b) == nil)  // b gave up before a was done
        #expect(r.release(key, by: a) == nil)
        #expect(r.entries.isEmpty)
        #expect(r.open(key, by: c).ready)
    }

    @Test func streamsOfOtherUsersAreApart() {
        var r = StreamRegistry()
        _ = r.open(key, by: a)
        #expect(r.open(StreamKey(user: "bob", name: "app"), by: b) == (true, nil))
    }
}
