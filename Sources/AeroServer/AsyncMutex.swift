// AsyncMutex.swift — mutual exclusion across suspension points, for the few writes whose check
// and commit must not interleave (a new cluster label: "fewer than ClusterLabels.countMax
// exist" is read, then the write commits; two at once could both pass the check). An actor
// alone does not give this: its methods interleave at every `await`. Bounded: at most
// `waitersMax` callers wait; more are told the gate is busy instead of queueing without end.
actor AsyncMutex {
    let waitersMax: Int
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(waitersMax: Int) {
        precondition(waitersMax >= 0, "a bound cannot be negative")
        self.waitersMax = waitersMax
    }

    /// Runs `body` alone; nil (without running it) when `waitersMax` callers already wait.
    func withLock<T: Sendable>(_ body: @Sendable () async -> T) async -> T? {
        if busy {
            guard waiters.count < waitersMax else { return nil }
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
        let result = await body()
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()  // ownership passes on; `busy` stays true
        }
        return result
    }
}
