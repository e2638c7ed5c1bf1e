import Synchronization

/// One timer for all live streams: wakes those whose heartbeat or token expiry is due.
///
/// A timer per stream would cost each idle stream a task and a timer; this ticks every
/// `period` while any stream is registered (and stops when none is), so a wake-up comes at
/// most one period late.
final class StreamAlarms: Sendable {
    private struct State {
        var streams: [ObjectIdentifier: StreamSignal] = [:]
        var ticking = false
    }

    let period: Duration
    private let state = Mutex(State())
    private static let origin = ContinuousClock.now

    init(period: Duration) {
        self.period = period
    }

    /// Now, in nanoseconds on the clock ``StreamSignal/wake(at:)`` takes.
    static func now() -> Int64 {
        nanoseconds(ContinuousClock.now - origin)
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    var count: Int { state.withLock { $0.streams.count } }

    /// Watches `signal` until ``remove(_:)``.
    func add(_ signal: StreamSignal) {
        let start = state.withLock { state -> Bool in
            state.streams[ObjectIdentifier(signal)] = signal
            defer { state.ticking = true }
            return !state.ticking
        }
        if start {
            Task { await self.tick() }
        }
    }

    func remove(_ signal: StreamSignal) {
        state.withLock { _ = $0.streams.removeValue(forKey: ObjectIdentifier(signal)) }
    }

    /// Rings every stream due at `now`; returns how many rang.
    @discardableResult
    func ringDue(now: Int64) -> Int {
        // Checking is a load per stream; ringing resumes a task, so it happens outside the lock.
        var due: [StreamSignal] = []
        state.withLock { state in
            for signal in state.streams.values where signal.isDue(now: now) { due.append(signal) }
        }
        return due.reduce(0) { count, signal in count + (signal.ringIfDue(now: now) ? 1 : 0) }
    }

    private func tick() async {
        while true {
            // Nothing cancels this task; were it cancelled, the next add() starts another.
            let cancelled = (try? await Task.sleep(for: period)) == nil
            let stillWatching = state.withLock { state -> Bool in
                if state.streams.isEmpty || cancelled { state.ticking = false }
                return state.ticking
            }
            guard stillWatching else { return }
            ringDue(now: Self.now())
        }
    }
}
