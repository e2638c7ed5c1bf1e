import Synchronization

/// The readers of one log waiting for lines past a sequence.
///
/// Readers are only ever woken outside its lock (and it never takes another lock): cancelling
/// a waiting reader runs its handler while the runtime holds that task's status lock, and the
/// handler takes the reader's lock, so resuming a task while holding a lock could deadlock.
final class WatcherRegistry: Sendable {
    private struct Watcher {
        var after: Int64
        var wakeup: Wakeup
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

    /// Waits until lines after `sequence` are readable or `wakeup` rings for another reason;
    /// returns the last readable sequence (no greater than `sequence` after such a ring).
    /// Throws `CancellationError` when the task is cancelled and ``RunLogRetired`` when the
    /// log retires.
    func wait(after sequence: Int64, wakeup: Wakeup) async throws -> Int64 {
        let id = try state.withLock { state throws -> UInt64? in
            if state.retired { throw RunLogRetired() }
            if state.written > sequence { return nil }
            state.nextID += 1
            state.waiting[state.nextID] = Watcher(after: sequence, wakeup: wakeup)
            return state.nextID
        }
        guard let id else { return try written() }
        defer { state.withLock { _ = $0.waiting.removeValue(forKey: id) } }
        try await wakeup.wait()
        return try written()
    }

    private func written() throws -> Int64 {
        try state.withLock { state throws in
            if state.retired { throw RunLogRetired() }
            return state.written
        }
    }

    /// Lines through `sequence` are readable: wakes the readers waiting for them.
    func advance(to sequence: Int64) {
        let woken = state.withLock { state -> [Wakeup] in
            guard sequence > state.written else { return [] }
            state.written = sequence
            var woken: [Wakeup] = []
            for (id, watcher) in state.waiting where watcher.after < sequence {
                woken.append(watcher.wakeup)
                state.waiting[id] = nil
            }
            return woken
        }
        for wakeup in woken { wakeup.ring() }
    }

    /// Ends every wait, now and later, with ``RunLogRetired``: readers start over on the
    /// log's replacement.
    func retire() {
        let woken = state.withLock { state -> [Watcher] in
            state.retired = true
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for watcher in woken { watcher.wakeup.ring() }
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
