import Synchronization

/// The readers of one log waiting for lines past a sequence.
///
/// Continuations are only ever resumed outside its lock (and it never takes another lock):
/// cancelling a waiting reader runs its handler while the runtime holds that task's status
/// lock, and the handler takes this lock, so resuming a task while holding it could deadlock.
final class WatcherRegistry: Sendable {
    private struct Watcher {
        var after: Int64
        var continuation: CheckedContinuation<Int64, any Error>
    }

    private struct State {
        /// The last readable sequence.
        var written: Int64
        var retired = false
        var nextID: UInt64 = 0
        var waiting: [UInt64: Watcher] = [:]
    }

    private let state: Mutex<State>

    init(written: Int64 = 0) {
        state = Mutex(State(written: written))
    }

    var count: Int { state.withLock { $0.waiting.count } }

    /// Waits until lines after `sequence` are readable; returns the last readable sequence.
    /// Throws `CancellationError` when the task is cancelled and ``RunLogRetired`` when the
    /// log retires.
    func wait(after sequence: Int64) async throws -> Int64 {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int64, any Error>) in
                let now = state.withLock { state -> Result<Int64, any Error>? in
                    if state.retired { return .failure(RunLogRetired()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.written > sequence { return .success(state.written) }
                    state.waiting[id] = Watcher(after: sequence, continuation: continuation)
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let removed = state.withLock { $0.waiting.removeValue(forKey: id) }
            removed?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Lines through `sequence` are readable: wakes the readers waiting for them.
    func advance(to sequence: Int64) {
        let woken = state.withLock { state -> [CheckedContinuation<Int64, any Error>] in
            guard sequence > state.written else { return [] }
            state.written = sequence
            var woken: [CheckedContinuation<Int64, any Error>] = []
            for (id, watcher) in state.waiting where watcher.after < sequence {
                woken.append(watcher.continuation)
                state.waiting[id] = nil
            }
            return woken
        }
        for continuation in woken { continuation.resume(returning: sequence) }
    }

    /// Ends every wait, now and later, with ``RunLogRetired``: readers start over on the
    /// log's replacement.
    func retire() {
        let woken = state.withLock { state -> [Watcher] in
            state.retired = true
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for watcher in woken { watcher.continuation.resume(throwing: RunLogRetired()) }
    }

    /// Retires the registry only if nobody waits, in one step with the check.
    func retireIfEmpty() -> Bool {
        state.withLock { state in
            guard state.waiting.isEmpty else { return false }
            state.retired = true
            return true
        }
    }
}
