import Synchronization

/// Wakes one reader waiting for a run's lines.
///
/// The store rings it when lines past the reader's position are readable; the reader's owner
/// rings it for reasons of its own (the client left, a heartbeat is due). A reader thus waits
/// on one continuation for all of them, with no task or timer per wait. A ring ends the wait
/// under way, or the next one when nobody waits, so none is lost; a reader must therefore
/// treat a wake-up as "look again", never as proof of news.
public final class Wakeup: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Void, any Error>)
        case rung
    }

    private let state = Mutex<State>(.idle)

    public init() {}

    /// Ends the current wait, or the next one.
    public func ring() {
        let waiting = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            switch state {
            case .waiting(let continuation):
                state = .idle
                return continuation
            case .idle, .rung:
                state = .rung
                return nil
            }
        }
        // Resumed outside the lock: see ``WatcherRegistry``.
        waiting?.resume()
    }

    /// Returns at the next ring (at once when rung since the last wait); throws
    /// `CancellationError` when the calling task is cancelled.
    public func wait() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now = state.withLock { state -> Result<Void, any Error>? in
                    if case .rung = state {
                        state = .idle
                        return .success(())
                    }
                    if Task.isCancelled { return .failure(CancellationError()) }
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
