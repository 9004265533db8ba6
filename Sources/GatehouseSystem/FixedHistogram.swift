import Atomics

/// A histogram with fixed bucket bounds, for the metrics page. Written without locks by its
/// owner thread (each worker and the journal have their own), read by the metrics thread at
/// scrape time: every bucket, the count and the sum are relaxed atomics.
public final class FixedHistogram: Sendable {
    /// Upper bounds of the buckets, in the unit of the observations, increasing; a last bucket
    /// (+Inf) takes the rest.
    public let bounds: [Double]
    private let buckets: [ManagedAtomic<Int>]
    private let sumBits: ManagedAtomic<UInt64>  // Double bit pattern; one writer

    public init(bounds: [Double]) {
        precondition(!bounds.isEmpty && zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 })
        self.bounds = bounds
        self.buckets = (0...bounds.count).map { _ in ManagedAtomic(0) }
        self.sumBits = ManagedAtomic(0)
    }

    /// Records `count` observations of `value`. One writer thread per histogram.
    @inline(__always)
    public func observe(_ value: Double, count: Int = 1) {
        var index = 0
        while index < bounds.count && value > bounds[index] { index += 1 }
        buckets[index].wrappingIncrement(by: count, ordering: .relaxed)
        let sum = Double(bitPattern: sumBits.load(ordering: .relaxed)) + value * Double(count)
        sumBits.store(sum.bitPattern, ordering: .relaxed)
    }

    /// Per-bucket counts (not cumulative; the last is +Inf) and the sum, read now.
    public func snapshot() -> (counts: [Int], sum: Double) {
        (buckets.map { $0.load(ordering: .relaxed) }, Double(bitPattern: sumBits.load(ordering: .relaxed)))
    }
}
