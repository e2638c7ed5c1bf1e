import Testing

@testable import RunlogStorage

@Suite struct FlushStateMachineTests {
    let start = ContinuousClock.now
    let policy = FlushStateMachine.Policy(maxEvents: 10, maxBytes: 1000, maxDelay: .milliseconds(50))

    @Test func armsTheTimerForTheOldestLine() {
        var machine = FlushStateMachine(policy: policy)
        #expect(machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: false, now: start) == .armTimer(start + .milliseconds(50)))
        // A later line does not move the deadline.
        #expect(machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: false, now: start + .milliseconds(20)) == .none)
        // An early timer does nothing; the due one flushes.
        #expect(machine.timerFired(now: start + .milliseconds(49)) == .none)
        #expect(machine.timerFired(now: start + .milliseconds(50)) == .flush)
        #expect(machine.memoryBytes == 20)
    }

    @Test func flushesAtTheEventCount() {
        var machine = FlushStateMachine(policy: policy)
        _ = machine.appended(events: 9, bytes: 90, awaitingAcknowledgement: false, now: start)
        #expect(machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: false, now: start) == .flush)
    }

    @Test func flushesAtTheByteCount() {
        var machine = FlushStateMachine(policy: policy)
        _ = machine.appended(events: 1, bytes: 999, awaitingAcknowledgement: false, now: start)
        #expect(machine.appended(events: 1, bytes: 1, awaitingAcknowledgement: false, now: start) == .flush)
    }

    @Test func aWaitingAppenderFlushesAtOnce() {
        var machine = FlushStateMachine(policy: policy)
        #expect(machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: true, now: start) == .flush)
    }

    @Test func groupCommitGathersWhileAFlushIsInFlight() {
        var machine = FlushStateMachine(policy: policy)
        #expect(machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: true, now: start) == .flush)
        // Three more appenders arrive during the write: none starts a flush of its own.
        for _ in 0..<3 {
            #expect(machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: true, now: start) == .none)
        }
        #expect(machine.bufferedEvents == 3)
        // When the write completes, all three go out together.
        #expect(machine.flushSucceeded(now: start + .milliseconds(2)) == .flush)
        #expect(machine.bufferedEvents == 0)
        #expect(machine.flushSucceeded(now: start + .milliseconds(4)) == .none)
    }

    @Test func thresholdsWaitForTheFlushInFlight() {
        var machine = FlushStateMachine(policy: policy)
        _ = machine.appended(events: 10, bytes: 100, awaitingAcknowledgement: false, now: start)
        #expect(machine.isFlushing)
        #expect(machine.appended(events: 20, bytes: 100, awaitingAcknowledgement: false, now: start) == .none)
        #expect(machine.memoryBytes == 200)
        #expect(machine.flushSucceeded(now: start) == .flush)
    }

    @Test func aFailedFlushRetriesAfterTheDelay() {
        var machine = FlushStateMachine(policy: policy)
        _ = machine.appended(events: 10, bytes: 100, awaitingAcknowledgement: false, now: start)
        let retry = start + .seconds(1)
        #expect(machine.flushFailedKeepingLines(events: 10, bytes: 100, now: start, retryAt: retry) == .armTimer(retry))
        #expect(machine.bufferedEvents == 10)
        #expect(machine.bufferedBytes == 100)
        // Even a full buffer waits for the retry time.
        #expect(machine.appended(events: 10, bytes: 100, awaitingAcknowledgement: false, now: start + .milliseconds(10)) == .none)
        #expect(machine.timerFired(now: retry) == .flush)
        #expect(machine.memoryBytes == 200)
    }

    @Test func aDiscardedFlushForgetsEverything() {
        var machine = FlushStateMachine(policy: policy)
        _ = machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: true, now: start)
        _ = machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: true, now: start)
        machine.flushFailedDiscardingLines()
        #expect(machine.memoryBytes == 0)
        #expect(!machine.isFlushing)
        #expect(machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: true, now: start) == .flush)
    }

    @Test func anAcknowledgementRequestFlushesWhatIsBuffered() {
        var machine = FlushStateMachine(policy: policy)
        #expect(machine.acknowledgementRequested(now: start) == .none)
        _ = machine.appended(events: 1, bytes: 10, awaitingAcknowledgement: false, now: start)
        #expect(machine.acknowledgementRequested(now: start) == .flush)
    }
}
