/// Decides when a run's buffered lines go to the file. Pure: time comes in as an argument,
/// actions come out, so every rule is testable without sleeping.
///
/// A flush starts when no flush is in flight and the buffer holds at least `maxEvents`
/// events, or `maxBytes` bytes, or its oldest line has waited `maxDelay`, or an appender is
/// waiting for its acknowledgement (`flush` and `fsync` durability). The last rule is group
/// commit: while one write and fsync are in flight, everything appended meanwhile gathers and
/// goes out together in the next one.
struct FlushStateMachine: Sendable {
    struct Policy: Sendable, Equatable {
        var maxEvents: Int
        var maxBytes: Int
        var maxDelay: Duration
    }

    enum Action: Equatable, Sendable {
        /// Nothing to do now.
        case none
        /// Take the whole buffer and write it.
        case flush
        /// Call ``timerFired(now:)`` at this instant.
        case armTimer(ContinuousClock.Instant)
    }

    let policy: Policy
    private(set) var bufferedEvents = 0
    private(set) var bufferedBytes = 0
    private(set) var oldestBuffered: ContinuousClock.Instant?
    private(set) var awaitingAcknowledgement = false
    private(set) var isFlushing = false
    private(set) var flushingBytes = 0
    private(set) var armedTimer: ContinuousClock.Instant?
    /// While set, flushes are held back until this instant (after a failed write).
    private(set) var retryNotBefore: ContinuousClock.Instant?

    init(policy: Policy) {
        self.policy = policy
    }

    /// Bytes held in memory: buffered plus in flight.
    var memoryBytes: Int { bufferedBytes + flushingBytes }

    /// Lines were added to the buffer; `awaitingAcknowledgement` when their appender waits for the write.
    mutating func appended(events: Int, bytes: Int, awaitingAcknowledgement waiting: Bool, now: ContinuousClock.Instant) -> Action {
        if bufferedEvents == 0 { oldestBuffered = now }
        bufferedEvents += events
        bufferedBytes += bytes
        awaitingAcknowledgement = awaitingAcknowledgement || waiting
        return decide(now: now)
    }

    /// Someone waits for everything buffered to be written (a shutdown, a duplicate's acknowledgement).
    mutating func acknowledgementRequested(now: ContinuousClock.Instant) -> Action {
        if bufferedEvents > 0 { awaitingAcknowledgement = true }
        return decide(now: now)
    }

    mutating func timerFired(now: ContinuousClock.Instant) -> Action {
        if let armedTimer, now >= armedTimer { self.armedTimer = nil }
        return decide(now: now)
    }

    /// The in-flight flush wrote everything it took.
    mutating func flushSucceeded(now: ContinuousClock.Instant) -> Action {
        precondition(isFlushing, "no flush in flight")
        isFlushing = false
        flushingBytes = 0
        retryNotBefore = nil
        return decide(now: now)
    }

    /// The in-flight flush failed and the lines it could not write go back to the front of
    /// the buffer, to be retried no earlier than `retryAt`.
    mutating func flushFailedKeepingLines(events: Int, bytes: Int, now: ContinuousClock.Instant, retryAt: ContinuousClock.Instant) -> Action {
        precondition(isFlushing, "no flush in flight")
        isFlushing = false
        bufferedEvents += events
        bufferedBytes += bytes
        flushingBytes = 0
        oldestBuffered = oldestBuffered.map { min($0, now) } ?? now
        retryNotBefore = retryAt
        return decide(now: now)
    }

    /// The in-flight flush failed and every buffered line was discarded (rolled back).
    mutating func flushFailedDiscardingLines() {
        precondition(isFlushing, "no flush in flight")
        isFlushing = false
        flushingBytes = 0
        bufferedEvents = 0
        bufferedBytes = 0
        oldestBuffered = nil
        awaitingAcknowledgement = false
        armedTimer = nil
    }

    private mutating func decide(now: ContinuousClock.Instant) -> Action {
        guard !isFlushing, bufferedEvents > 0, let oldestBuffered else { return .none }
        if let retryNotBefore, now < retryNotBefore {
            return arm(retryNotBefore)
        }
        let deadline = oldestBuffered + policy.maxDelay
        if bufferedEvents >= policy.maxEvents || bufferedBytes >= policy.maxBytes || awaitingAcknowledgement || now >= deadline {
            isFlushing = true
            flushingBytes = bufferedBytes
            bufferedEvents = 0
            bufferedBytes = 0
            self.oldestBuffered = nil
            awaitingAcknowledgement = false
            armedTimer = nil
            return .flush
        }
        return arm(deadline)
    }

    private mutating func arm(_ deadline: ContinuousClock.Instant) -> Action {
        guard armedTimer != deadline else { return .none }
        armedTimer = deadline
        return .armTimer(deadline)
    }
}
