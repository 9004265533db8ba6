/// Deadlines of one worker's connections, as a min-heap with lazy rescheduling.
///
/// A connection's deadline moves forward on every byte it sends or receives; the heap is not
/// touched then. When an entry comes due, the worker checks the connection's current deadline
/// and pushes it again if it moved. Idle connections cost nothing per tick.
struct TimerHeap {
    struct Entry {
        var deadline: UInt64
        var token: UInt64
    }

    private var heap: [Entry] = []

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var nextDeadline: UInt64? { heap.first?.deadline }

    mutating func push(deadline: UInt64, token: UInt64) {
        heap.append(Entry(deadline: deadline, token: token))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].deadline < heap[parent].deadline else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: UInt64) -> Entry? {
        guard let top = heap.first, top.deadline <= now else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var smallest = i
                if l < heap.count && heap[l].deadline < heap[smallest].deadline { smallest = l }
                if r < heap.count && heap[r].deadline < heap[smallest].deadline { smallest = r }
                if smallest == i { break }
                heap.swapAt(i, smallest)
                i = smallest
            }
        }
        return top
    }
}
