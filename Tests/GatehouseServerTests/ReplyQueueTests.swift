import GatehouseProtocol
import Testing

@testable import GatehouseServer

@Suite("Reply queue")
struct ReplyQueueTests {
    func unsent(_ q: ReplyQueue) -> String { q.withUnsent { String(decoding: $0, as: UTF8.self) } }

    @Test func repliesWithNothingBeforeThemAreReadyAtOnce() {
        var q = ReplyQueue()
        q.push(.pong)
        q.push(.bye)
        #expect(unsent(q) == "PONG\nBYE\n")
        #expect(q.waitingBytes == 0)
        #expect(q.queuedBytes == 9)
        q.consume(5)
        #expect(unsent(q) == "BYE\n")
        q.consume(4)
        #expect(q.isEmpty)
    }

    @Test func repliesAfterAnAckWaitForItsOutcomeAndAreCountedInBytes() {
        var q = ReplyQueue()
        q.pushMessage(n: 1, journalBytes: 100)
        q.push(.pong)
        q.pushMessage(n: 2, journalBytes: 50)
        q.push(.pong)
        q.push(.pong)
        #expect(q.unsentBytes == 0)
        #expect(q.waitingBytes == 15)
        #expect(q.inFlight == 2)
        #expect(q.inFlightBytes == 150)
        #expect(q.resolve(stored: true, failure: .pong) == 1)
        #expect(unsent(q) == "ACK 1\nPONG\n")
        #expect(q.waitingBytes == 10)
        #expect(q.inFlightBytes == 50)
        #expect(q.resolve(stored: false, failure: .error(.unavailable, "x")) == 2)
        #expect(unsent(q) == "ACK 1\nPONG\nERR UNAVAILABLE x\nPONG\nPONG\n")
        #expect(q.inFlight == 0)
        #expect(q.waitingBytes == 0)
        #expect(q.resolve(stored: true, failure: .pong) == nil)
    }

    @Test func aLargeDrainedBufferIsGivenBack() {
        var q = ReplyQueue()
        for _ in 0..<1000 { q.push(.pong) }
        #expect(q.bytes.capacity >= 5000)
        q.consume(q.unsentBytes)
        #expect(q.bytes.capacity == 0)
        #expect(q.start == 0)
    }

    @Test func aSmallDrainedBufferIsGivenBackToo() {
        var q = ReplyQueue()
        q.push(.pong)
        #expect(q.bytes.capacity > 0)
        q.consume(2)
        #expect(q.bytes.capacity > 0, "half-written: the rest stays")
        q.consume(q.unsentBytes)
        #expect(q.bytes.capacity == 0, "an idle connection holds no reply buffer")
        #expect(q.start == 0)
    }
}
