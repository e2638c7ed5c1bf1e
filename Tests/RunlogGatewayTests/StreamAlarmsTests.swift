import Testing

@testable import RunlogGateway
@testable import RunlogStorage

/// The shared timer of live streams, driven with explicit times: no sleeps.
@Suite(.timeLimit(.minutes(1))) struct StreamAlarmsTests {
    @Test func ringsOnlyTheStreamsDueAndEachOnce() async throws {
        let alarms = StreamAlarms(period: .seconds(3600))
        let (early, late, never) = (StreamSignal(), StreamSignal(), StreamSignal())
        for signal in [early, late, never] { alarms.add(signal) }
        defer { for signal in [early, late, never] { alarms.remove(signal) } }
        early.wake(at: 100)
        late.wake(at: 200)

        #expect(alarms.ringDue(now: 99) == 0)
        #expect(alarms.ringDue(now: 150) == 1)
        // The ring is kept for the stream's next wait, which therefore returns at once.
        try await early.wakeup.wait()
        // Rung once: it is not due again until the stream asks for a new time.
        #expect(alarms.ringDue(now: 150) == 0)
        #expect(alarms.ringDue(now: 250) == 1)
        late.wake(at: 300)
        alarms.remove(late)
        #expect(alarms.ringDue(now: 400) == 0)
        #expect(alarms.count == 2)
    }

    @Test func aStopEndsTheWaitAndIsRemembered() async throws {
        let signal = StreamSignal()
        let waiting = Task { try await signal.wakeup.wait() }
        signal.stop()
        try await waiting.value
        #expect(signal.isStopped)
    }
}
