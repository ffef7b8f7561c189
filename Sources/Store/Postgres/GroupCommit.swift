import Synchronization

/// Coalesces concurrent single-item writes into batches, so that many callers share one statement
/// and one durable commit (the "group commit" PostgreSQL does for WAL flushes, done one level up).
///
/// There is no timer and no added latency: a caller that finds a free flush slot writes at once,
/// taking along whatever other callers queued meanwhile; callers arriving while all slots are busy
/// queue up and leave with the next batch. Leadership passes from a finishing flush to the oldest
/// queued caller, which then writes its own item and everything queued behind it. So under light
/// load every item is written alone, immediately; under heavy load the batches grow by themselves.
///
/// Every caller gets its own result or its own error; the `flush` closure must return one result
/// per item, in order.
public final class GroupCommit<Item: Sendable, Output: Sendable>: Sendable {
    /// Writes a batch; must return exactly one result per item, in the same order.
    public typealias Flush = @Sendable ([Item]) async throws -> [Result<Output, any Error>]

    private enum Wake: Sendable {
        case done(Result<Output, any Error>)
        case lead
    }

    private struct Waiter {
        let item: Item
        let continuation: CheckedContinuation<Wake, Never>
    }

    private struct State {
        var queued: [Waiter] = []
        var head = 0
        var flushing = 0

        var queuedCount: Int { queued.count - head }

        mutating func popFirst() -> Waiter? {
            guard head < queued.count else { return nil }
            let waiter = queued[head]
            head += 1
            if head == queued.count {
                queued.removeAll(keepingCapacity: true)
                head = 0
            }
            return waiter
        }
    }

    private let state = Mutex(State())
    private let maxBatch: Int
    private let maxConcurrentFlushes: Int
    private let flush: Flush

    /// Creates a batcher.
    /// - Parameters:
    ///   - maxBatch: the most items written by one flush.
    ///   - maxConcurrentFlushes: how many flushes may run at once (pipelining: while one batch
    ///     commits, the next one forms and can start on another connection).
    ///   - flush: writes one batch.
    public init(maxBatch: Int = 64, maxConcurrentFlushes: Int = 2, flush: @escaping Flush) {
        precondition(maxBatch >= 1 && maxConcurrentFlushes >= 1)
        self.maxBatch = maxBatch
        self.maxConcurrentFlushes = maxConcurrentFlushes
        self.flush = flush
    }

    /// Writes `item` as part of the next batch and returns its own result.
    public func submit(_ item: Item) async throws -> Output {
        let wake = await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
            let lead = state.withLock { state -> Bool in
                if state.flushing < maxConcurrentFlushes {
                    state.flushing += 1
                    return true
                }
                state.queued.append(Waiter(item: item, continuation: continuation))
                return false
            }
            if lead { continuation.resume(returning: .lead) }
        }
        switch wake {
        case .done(let result):
            return try result.get()
        case .lead:
            return try await lead(with: item).get()
        }
    }

    /// Runs one flush of `item` plus queued items, then hands the flush slot to the oldest caller
    /// still queued (or frees it).
    private func lead(with item: Item) async -> Result<Output, any Error> {
        let others = state.withLock { state -> [Waiter] in
            var taken: [Waiter] = []
            while taken.count < maxBatch - 1, let waiter = state.popFirst() { taken.append(waiter) }
            return taken
        }
        let results: [Result<Output, any Error>]
        do {
            let written = try await flush([item] + others.map { $0.item })
            precondition(
                written.count == others.count + 1,
                "GroupCommit flush returned \(written.count) results for \(others.count + 1) items")
            results = written
        } catch {
            results = Array(repeating: .failure(error), count: others.count + 1)
        }
        for (waiter, result) in zip(others, results.dropFirst()) {
            waiter.continuation.resume(returning: .done(result))
        }
        let next = state.withLock { state -> Waiter? in
            if let next = state.popFirst() { return next }
            state.flushing -= 1
            return nil
        }
        next?.continuation.resume(returning: .lead)
        return results[0]
    }
}
