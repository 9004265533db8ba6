/// A first-in first-out queue on one array with a moving head; compacts as it drains.
struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }

    mutating func push(_ element: Element) {
        storage.append(element)
    }

    var first: Element? { isEmpty ? nil : storage[head] }

    /// Changes the newest element in place. The queue must not be empty.
    @inline(__always)
    mutating func updateLast(_ body: (inout Element) -> Void) {
        precondition(!isEmpty, "updateLast on an empty FIFO")
        body(&storage[storage.count - 1])
    }

    mutating func pop() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            // Drained: release the memory, so an idle connection holds no queue.
            storage = []
            head = 0
        } else if head >= 1024 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }
}
