import RunlogTestSupport
import Synchronization
import Testing

@testable import RunlogStorage

/// Buffered flushing, end to end. The timing rules themselves are covered without a clock by
/// `FlushStateMachineTests`; these check that the store follows them.
@Suite(.timeLimit(.minutes(1))) struct FlushingTests {
    @Test func underNoneLinesWaitInMemoryUntilTheEventCount() async throws {
        try await withStore(configure: {
            $0.durability = .none
            $0.flushEvents = 3
            $0.flushInterval = .seconds(3600)
        }, { store, _ in
            _ = try await store.append(try numbered(2), to: key())
            // Acknowledged, but nothing has reached the file: no threshold is met.
            #expect(try await store.lastSequence(of: key()) == 0)
            _ = try await store.append(try numbered(1), to: key())
            #expect(try await store.waitForEvents(of: key(), after: 0) == 3)
            #expect(try await readLines(store, key()).count == 3)
        })
    }

    @Test func underNoneLinesGoOutAtTheByteCount() async throws {
        try await withStore(configure: {
            $0.durability = .none
            $0.flushBytes = 1000
            $0.flushInterval = .seconds(3600)
        }, { store, _ in
            _ = try await store.append(try numbered(1, padding: 300), to: key())
            #expect(try await store.lastSequence(of: key()) == 0)
            _ = try await store.append(try numbered(2, padding: 300), to: key())
            #expect(try await store.waitForEvents(of: key(), after: 0) == 3)
        })
    }

    @Test func underNoneLinesGoOutAfterTheInterval() async throws {
        try await withStore(configure: {
            $0.durability = .none
            $0.flushInterval = .milliseconds(20)
        }, { store, _ in
            _ = try await store.append(try numbered(1), to: key())
            // Nothing but the timer can flush this line.
            #expect(try await store.waitForEvents(of: key(), after: 0) == 1)
        })
    }

    @Test(arguments: [Durability.flush, .fsync])
    func durableModesAcknowledgeOnlyWrittenLines(durability: Durability) async throws {
        try await withStore(configure: {
            $0.durability = durability
            $0.flushInterval = .seconds(3600)
            $0.flushEvents = 1_000_000
        }, { store, root in
            let receipt = try await store.append(try numbered(5), to: key())
            // Acknowledged means on file, without any threshold met.
            let lines = String(decoding: fileBytes(root + "/workspaces/ws_1/runs/run_1/logs/events.ndjson"), as: UTF8.self)
            #expect(lines.split(separator: "\n").count == 5)
            #expect(receipt.lastSequence == 5)
            #expect(try await store.lastSequence(of: key()) == 5)
        })
    }

    @Test func aSlowDiskMakesAppendersWaitNotGrowMemory() async throws {
        try await withStore(configure: {
            $0.durability = .none
            $0.maxBufferedBytes = 4096
            $0.flushBytes = 1 << 30
            $0.flushEvents = 1 << 30
            $0.flushInterval = .seconds(3600)
        }, { store, _ in
            // With nothing to flush the buffer but the memory limit, 200 events of ~400 bytes
            // can only be appended if appenders wait for flushes they trigger.
            for index in 0..<200 {
                _ = try await store.append(try numbered(1, from: index, padding: 300), to: key())
            }
            try await store.flush()
            #expect(try sequences(try await readLines(store, key())) == Array(1...200))
        })
    }

    @Test func waitingForEventsCanBeCancelled() async throws {
        try await withStore({ store, _ in
            try await store.createLog(for: key())
            let waiter = Task { try await store.waitForEvents(of: key(), after: 0) }
            waiter.cancel()
            await expectError(StorageError.self, matching: { $0 == .cancelled }) { _ = try await waiter.value }
        })
    }

    @Test func aWaitEndsOnNewLinesOrWhenItsWakeupRings() async throws {
        try await withStore({ store, _ in
            try await store.createLog(for: key())
            let wakeup = Wakeup()
            // A ring while nobody waits is kept: the next wait returns at once, with no news.
            wakeup.ring()
            #expect(try await store.waitForEvents(of: key(), after: 0, orUntil: wakeup) == 0)
            #expect(store.watcherCount(of: key()) == 0)

            // A ring during the wait ends it, and the reader leaves the run's watchers.
            let rung = Task { try await store.waitForEvents(of: key(), after: 0, orUntil: wakeup) }
            try await waitUntil("a watcher") { store.watcherCount(of: key()) > 0 }
            wakeup.ring()
            #expect(try await rung.value == 0)
            #expect(store.watcherCount(of: key()) == 0)

            // New lines end it with the new last sequence.
            let woken = Task { try await store.waitForEvents(of: key(), after: 0, orUntil: wakeup) }
            try await waitUntil("a watcher") { store.watcherCount(of: key()) > 0 }
            _ = try await store.append(try numbered(2), to: key())
            #expect(try await woken.value == 2)
            #expect(store.watcherCount(of: key()) == 0)
        })
    }

    @Test func aWakeupCallsItsActionAtTheNextRingOnly() {
        let wakeup = Wakeup()
        let calls = Mutex(0)
        // Registered, not called until a ring, and called once for it.
        wakeup.whenRung { calls.withLock { $0 += 1 } }
        #expect(calls.withLock { $0 } == 0)
        wakeup.ring()
        wakeup.ring()
        #expect(calls.withLock { $0 } == 1)
        // That second ring was kept: the next action runs at once, and consumes it.
        wakeup.whenRung { calls.withLock { $0 += 10 } }
        #expect(calls.withLock { $0 } == 11)
        wakeup.whenRung { calls.withLock { $0 += 100 } }
        #expect(calls.withLock { $0 } == 11)
        wakeup.ring()
        #expect(calls.withLock { $0 } == 111)
    }

    @Test func shutdownFlushesBufferedLines() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = EventStore(configuration: configuration(directory.path) {
            $0.durability = .none
            $0.flushInterval = .seconds(3600)
        }, logger: quietLogger)
        _ = try await store.append(try numbered(7), to: key())
        await store.shutdown()
        let reopened = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        #expect(try await reopened.lastSequence(of: key()) == 7)
        await reopened.shutdown()
    }
}
