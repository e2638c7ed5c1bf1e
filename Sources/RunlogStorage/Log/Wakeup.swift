import Synchronization

/// Wakes one reader waiting for a run's lines.
///
/// The store rings it when lines past the reader's position are readable; the reader's owner
/// rings it for reasons of its own (the client left, a heartbeat is due). A reader thus waits
/// on one continuation for all of them, with no task or timer per wait. A ring ends the wait
/// under way, or the next one when nobody waits, so none is lost; a reader must therefore
/// treat a wake-up as "look again", never as proof of news.
package final class Wakeup: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Void, any Error>)
        case calling(@Sendable () -> Void)
        case rung

        var isWaiting: Bool {
            switch self {
            case .waiting, .calling: true
            case .idle, .rung: false
            }
        }
    }

    private let state = Mutex<State>(.idle)

    package init() {}

    /// Ends the current wait, or the next one.
    package func ring() {
        let waiting = state.withLock { state -> State? in
            switch state {
            case .waiting, .calling:
                defer { state = .idle }
                return state
            case .idle, .rung:
                state = .rung
                return nil
            }
        }
        // Resumed or called outside the lock: see ``WatcherRegistry``.
        switch waiting {
        case .waiting(let continuation): continuation.resume()
        case .calling(let action): action()
        case .idle, .rung, nil: break
        }
    }

    /// Calls `action` at the next ring (at once when rung since the last wait), so that nothing
    /// waits in a task meanwhile. One waiter at a time: a wait or an action.
    package func whenRung(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if case .rung = state {
                state = .idle
                return true
            }
            assert(!state.isWaiting, "a wakeup has one waiter at a time")
            state = .calling(action)
            return false
        }
        if now { action() }
    }

    /// Returns at the next ring (at once when rung since the last wait); throws
    /// `CancellationError` when the calling task is cancelled.
    package func wait() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now = state.withLock { state -> Result<Void, any Error>? in
                    if case .rung = state {
                        state = .idle
                        return .success(())
                    }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    assert(!state.isWaiting, "a wakeup has one waiter at a time")
                    state = .waiting(continuation)
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard case .waiting(let continuation) = state else { return nil }
                state = .idle
                return continuation
            }
            waiting?.resume(throwing: CancellationError())
        }
    }
}
