import Testing

@testable import GatehouseServer

@Suite("Timer heap")
struct TimerHeapTests {
    @Test func entriesComeDueInDeadlineOrderAndNotBefore() {
        var heap = TimerHeap()
        var generator = SystemRandomNumberGenerator()
        let deadlines = (0..<500).map { _ in UInt64.random(in: 1...10_000, using: &generator) }
        for (i, d) in deadlines.enumerated() { heap.push(deadline: d, token: UInt64(i)) }
        #expect(heap.count == 500)
        #expect(heap.nextDeadline == deadlines.min())
        #expect(heap.popDue(now: deadlines.min()! - 1) == nil)
        var popped: [UInt64] = []
        while let entry = heap.popDue(now: 5_000) { popped.append(entry.deadline) }
        #expect(popped == deadlines.filter { $0 <= 5_000 }.sorted())
        #expect(heap.nextDeadline.map { $0 > 5_000 } ?? true)
        while let entry = heap.popDue(now: .max) { popped.append(entry.deadline) }
        #expect(popped == deadlines.sorted())
        #expect(heap.isEmpty)
    }

    @Test func aMovedDeadlineIsFoundWhenItsOldEntryComesDue() {
        // The worker's lazy rescheduling: the machine's deadline moved later; the old entry
        // comes due, and the connection is pushed again at its new deadline.
        var d = MachineDriver(limits: .testing())
        d.logIn()
        var heap = TimerHeap()
        heap.push(deadline: d.machine.deadline, token: 1)
        d.advance(to: 20 * second)
        d.send("PING\n")
        let entry = heap.popDue(now: 30 * second)
        #expect(entry?.deadline == 30 * second)
        let step = d.machine.timerFired(now: 30 * second)
        #expect(step == .none)
        #expect(d.machine.deadline == 50 * second)
        #expect(d.machine.isOpen)
    }
}
