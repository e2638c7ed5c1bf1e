import RunlogStorage
import Synchronization

/// What wakes or ends one live event stream besides new lines: the client going away, the
/// server shutting down, a heartbeat or the token's expiry falling due.
///
/// The stream waits on its ``wakeup`` alone (the store rings it for new lines), so an idle
/// stream costs no task and no timer: ``StreamAlarms`` rings the due ones from one timer.
final class StreamSignal: Sendable {
    let wakeup = Wakeup()
    private let stopped = Atomic<Bool>(false)
    /// When the stream next needs a wake-up without news, on the ``StreamAlarms`` clock.
    private let due = Atomic<Int64>(.max)

    /// Ends the stream at its next wake-up, and wakes it.
    func stop() {
        stopped.store(true, ordering: .releasing)
        wakeup.ring()
    }

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    /// Asks ``StreamAlarms`` to wake the stream at `nanoseconds` (``StreamAlarms/now()``).
    func wake(at nanoseconds: Int64) {
        due.store(nanoseconds, ordering: .relaxed)
    }

    func isDue(now: Int64) -> Bool {
        due.load(ordering: .relaxed) <= now
    }

    /// Rings the stream if its wake-up time has come; true if it rang.
    func ringIfDue(now: Int64) -> Bool {
        guard isDue(now: now) else { return false }
        due.store(.max, ordering: .relaxed)
        wakeup.ring()
        return true
    }
}
