import Foundation
import Logging
import NIOCore
import RunlogCatalog
import RunlogStorage
import RunlogTestSupport
import Synchronization
import Testing

@testable import RunlogRuns

/// A storage root with a store, a catalog and a service over them.
struct Environment {
    let root: String
    let store: EventStore
    /// Where the catalog is: it stays for a restart (``init(root:place:...)``).
    let place: TestCatalogPlace
    let catalog: any RunCatalog
    let service: RunService

    /// A new storage root, its catalog on `backend`; or, with `root` and `place`, the same
    /// storage and catalog again (a restart).
    init(
        _ backend: TestCatalogBackend = .sqlite, root: String? = nil, place: TestCatalogPlace? = nil, durability: Durability = .flush,
        runTimeout: Duration? = nil, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) async throws {
        self.root = root ?? NSTemporaryDirectory() + "runlog-runs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: self.root, withIntermediateDirectories: true)
        var configuration = EventStoreConfiguration(root: self.root)
        configuration.durability = durability
        configuration.ioThreads = 2
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        store = EventStore(configuration: configuration, logger: logger)
        if let place {
            self.place = place
        } else {
            self.place = try await TestCatalogPlace.make(backend, root: self.root)
        }
        catalog = try await self.place.open()
        service = RunService(store: store, catalog: catalog, logger: logger, runTimeout: runTimeout, now: now)
    }

    /// Closes everything but keeps the files (a restart, or with `flushProgress: false`, a crash
    /// of the catalog side: the logs are flushed, the rows are not updated).
    func stop() async throws {
        await store.shutdown()
        try await catalog.close()
    }

    /// Removes the storage root (and a PostgreSQL catalog's database).
    func remove() {
        place.drop()
        do { try FileManager.default.removeItem(atPath: root) } catch { Issue.record("cleanup: \(error)") }
    }
}

func ndjson(_ lines: String...) throws -> EventBatch {
    try EventBatch(ndjson: Array(lines.joined(separator: "\n").utf8))
}

func key(_ run: String = "run_1") -> RunKey {
    try! RunKey(workspace: "ws_1", run: run)
}

@Suite(.timeLimit(.minutes(2))) struct RunLifecycleTests {
    @Test(arguments: TestCatalogBackend.allCases) func aRunGoesFromQueuedToRunningToTerminal(_ backend: TestCatalogBackend) async throws {
        let environment = try await Environment(backend)
        defer { environment.remove() }
        let service = environment.service
        let created = try await service.createRun(workspace: "ws_1", runID: "run_1", configurationID: "build", metadata: #"{"branch":"main"}"#)
        #expect(created.status == .queued)
        #expect(created.eventsPath == "workspaces/ws_1/runs/run_1/logs")
        #expect(try await environment.store.lastSequence(of: key()) == 0)

        _ = try await service.append(try ndjson(#"{"type":"run.started"}"#), to: key())
        let running = try await service.run(key())
        #expect(running.status == .running)
        #expect(running.startedAt != nil)

        _ = try await service.append(try ndjson(
            #"{"type":"console.line","payload":{"line":"compiling"}}"#,
            #"{"type":"step.failed","payload":{"message":"tests failed"}}"#,
            #"{"type":"console.line","payload":{"level":"error","message":"disk almost full"}}"#
        ), to: key())
        _ = try await service.append(try ndjson(
            #"{"type":"run.completed","payload":{"status":"failed","exit_code":2,"summary":{"tests":{"passed":10,"failed":1},"note":"flaky?"}}}"#
        ), to: key())

        let done = try await service.run(key())
        #expect(done.status == .failed)
        #expect(done.exitCode == 2)
        #expect(done.completedAt != nil)
        #expect(done.lastSequence == 5)
        #expect(done.eventCount == 5)
        #expect(done.errorCount == 2)
        #expect(done.byteSize == Int64(try await environment.store.snapshot(of: key()).active!.readableLength))

        let summary = try await service.summary(key())
        #expect(summary.schema == "runlog.run_summary/v1")
        #expect(summary.status == "failed")
        #expect(summary.exitCode == 2)
        #expect(summary.countsByType == ["run.started": 1, "console.line": 2, "step.failed": 1, "run.completed": 1])
        #expect(summary.firstSequence == 1 && summary.lastSequence == 5)
        #expect(summary.errorCount == 2)
        #expect(summary.lastError == .init(sequence: 4, type: "console.line", message: "disk almost full"))
        #expect(summary.producerSummary == .object(["tests": .object(["passed": .number(10), "failed": .number(1)]), "note": .string("flaky?")]))
        #expect(summary.durationMs != nil)
        try await environment.stop()
    }

    @Test func aRunWhoseLogCannotBeCreatedLeavesNoRowBehind() async throws {
        let environment = try await Environment()
        defer { environment.remove() }
        // A file where the run's directory belongs: its log directory cannot be made.
        let blocker = environment.root + "/workspaces/ws_1/runs/run_1"
        try FileManager.default.createDirectory(atPath: environment.root + "/workspaces/ws_1/runs", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        await expectError(RunError.self, matching: { if case .storage = $0 { true } else { false } }) {
            _ = try await environment.service.createRun(workspace: "ws_1", runID: "run_1")
        }
        #expect(try await environment.catalog.run(workspace: "ws_1", id: "run_1") == nil)

        try FileManager.default.removeItem(atPath: blocker)
        #expect(try await environment.service.createRun(workspace: "ws_1", runID: "run_1").status == .queued)
        try await environment.stop()
    }

    @Test func refusals() async throws {
        let environment = try await Environment()
        defer { environment.remove() }
        let service = environment.service
        await expectError(RunError.self, matching: { $0 == .notFound(key("ghost")) }) {
            _ = try await service.append(try ndjson(#"{"type":"a.b"}"#), to: key("ghost"))
        }
        _ = try await service.createRun(workspace: "ws_1", runID: "run_1")
        await expectError(RunError.self, matching: { $0 == .exists(key()) }) {
            _ = try await service.createRun(workspace: "ws_1", runID: "run_1")
        }
        await expectError(RunError.self, matching: { if case .storage(.invalidIdentifier) = $0 { true } else { false } }) {
            _ = try await service.createRun(workspace: "ws_1", runID: "../etc")
        }
        await expectError(RunError.self, matching: { if case .invalidEvent(let r) = $0 { r.line == 2 && r.reason.contains("payload.status") } else { false } }) {
            _ = try await service.append(try ndjson(#"{"type":"run.started"}"#, #"{"type":"run.completed","payload":{"status":"done"}}"#), to: key())
        }
        await expectError(RunError.self, matching: { if case .invalidEvent(let r) = $0 { r.reason.contains("exit_code") } else { false } }) {
            _ = try await service.append(try ndjson(#"{"type":"run.completed","payload":{"status":"failed","exit_code":"2"}}"#), to: key())
        }
        // The refused batches left nothing behind.
        #expect(try await environment.store.lastSequence(of: key()) == 0)
        _ = try await service.append(try ndjson(#"{"type":"run.completed","payload":{"status":"cancelled"}}"#), to: key())
        await expectError(RunError.self, matching: { $0 == .closed(key(), lastSequence: 1) }) {
            _ = try await service.append(try ndjson(#"{"type":"console.line"}"#), to: key())
        }
        await expectError(RunError.self, matching: { $0 == .closed(key(), lastSequence: 1) }) {
            _ = try await service.append(try ndjson(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#), to: key())
        }
        #expect(try await service.run(key()).status == .cancelled)
        try await environment.stop()
    }

    @Test(arguments: TestCatalogBackend.allCases) func aRetriedCompletionIsADuplicateAndAnythingNewIsRefused(_ backend: TestCatalogBackend) async throws {
        let environment = try await Environment(backend)
        defer { environment.remove() }
        let service = environment.service
        _ = try await service.createRun(workspace: "ws_1", runID: "run_1")
        let completion = try ndjson(#"{"type":"console.line","event_id":"line-1"}"#, #"{"type":"run.completed","event_id":"done","payload":{"status":"succeeded"}}"#)
        let first = try await service.append(completion, to: key())
        #expect(first.appended == 2 && first.lastSequence == 2)
        // The reply was lost and the producer sends the same batch again: acknowledged, nothing stored twice.
        let retried = try await service.append(completion, to: key())
        #expect(retried.appended == 0 && retried.duplicates == 2 && retried.sequences == [1, 2])
        // With one new event in it, the batch is refused whole.
        await expectError(RunError.self, matching: { $0 == .closed(key(), lastSequence: 2) }) {
            _ = try await service.append(try ndjson(#"{"type":"run.completed","event_id":"done","payload":{"status":"succeeded"}}"#, #"{"type":"console.line"}"#), to: key())
        }
        #expect(try await environment.store.lastSequence(of: key()) == 2)
        #expect(try await service.run(key()).status == .succeeded)
        try await environment.stop()
    }

    @Test(arguments: TestCatalogBackend.allCases) func liveCountsReachTheCatalogInBatchesNotPerEvent(_ backend: TestCatalogBackend) async throws {
        let environment = try await Environment(backend)
        defer { environment.remove() }
        let service = environment.service
        _ = try await service.createRun(workspace: "ws_1", runID: "run_1")
        for _ in 0..<10 { _ = try await service.append(try ndjson(#"{"type":"console.line"}"#), to: key()) }
        // The row lags (nothing written yet); the summary does not.
        #expect(try await service.run(key()).eventCount == 0)
        #expect(try await service.summary(key()).eventCount == 10)
        try await service.flushProgress()
        let row = try await service.run(key())
        #expect(row.eventCount == 10)
        #expect(row.lastSequence == 10)
        #expect(row.summary?.contains("\"event_count\":10") == true)
        try await environment.stop()
    }

    @Test(arguments: TestCatalogBackend.allCases) func theLiveSummaryEqualsARebuildFromTheFiles(_ backend: TestCatalogBackend) async throws {
        let environment = try await Environment(backend)
        defer { environment.remove() }
        let service = environment.service
        _ = try await service.createRun(workspace: "ws_1", runID: "run_1")
        _ = try await service.append(try ndjson(#"{"type":"run.started"}"#), to: key())
        for index in 0..<20 {
            _ = try await service.append(try ndjson(
                #"{"type":"console.line","payload":{"n":\#(index)}}"#,
                #"{"type":"task.error","event_id":"e\#(index % 5)","payload":"boom \#(index)"}"#
            ), to: key())
        }
        // A repeat within one batch, between new events, and a duplicate of a stored event.
        _ = try await service.append(try ndjson(
            #"{"type":"task.error","event_id":"fresh","payload":"again"}"#,
            #"{"type":"console.line"}"#,
            #"{"type":"task.error","event_id":"fresh","payload":"again"}"#,
            #"{"type":"task.error","event_id":"e1","payload":"old"}"#,
            #"{"type":"console.line"}"#
        ), to: key())
        let live = try await service.summary(key())
        let rebuilt = try await service.rebuild(key()).summary(status: "running", exitCode: nil)
        #expect(live == rebuilt)
        #expect(live.countsByType["task.error"] == 6)  // duplicates by event_id were not counted
        #expect(live.countsByType["console.line"] == 22)
        #expect(live.lastError?.message == "again")
        try await environment.stop()
    }
}

@Suite(.timeLimit(.minutes(3))) struct ReconciliationTests {
    @Test(arguments: TestCatalogBackend.allCases) func aRestartCorrectsCountsAndCompletesRunsFromTheirLogs(_ backend: TestCatalogBackend) async throws {
        let first = try await Environment(backend)
        defer { first.remove() }
        _ = try await first.service.createRun(workspace: "ws_1", runID: "lagging")
        _ = try await first.service.createRun(workspace: "ws_1", runID: "finished")
        _ = try await first.service.append(try ndjson(#"{"type":"run.started"}"#, #"{"type":"console.line"}"#), to: key("lagging"))
        _ = try await first.service.append(try ndjson(#"{"type":"run.started"}"#), to: key("finished"))
        // As if the process died after the log got run.completed but before the row did.
        _ = try await first.store.append(try ndjson(#"{"type":"run.completed","payload":{"status":"succeeded","exit_code":0}}"#), to: key("finished"))
        try await first.stop()  // no flushProgress: the catalog lags

        let second = try await Environment(root: first.root, place: first.place)
        #expect(try await second.service.run(key("lagging")).eventCount == 0)
        #expect(try await second.service.reconcile() == 2)
        let lagging = try await second.service.run(key("lagging"))
        #expect(lagging.status == .running)
        #expect(lagging.lastSequence == 2 && lagging.eventCount == 2)
        let finished = try await second.service.run(key("finished"))
        #expect(finished.status == .succeeded)
        #expect(finished.exitCode == 0)
        #expect(finished.lastSequence == 2)
        // Appending goes on where the log is.
        #expect(try await second.service.append(try ndjson(#"{"type":"console.line"}"#), to: key("lagging")).firstSequence == 3)
        try await second.stop()
    }

    @Test(.slow) func theCatalogGrowsWithRunsNotEvents() async throws {
        let environment = try await Environment(durability: .none)
        defer { environment.remove() }
        let service = environment.service
        let body = Array((0..<1000).map { #"{"type":"console.line","payload":{"line":"event \#($0)","level":"info"}}"# }.joined(separator: "\n").utf8)
        for run in 0..<100 {
            let key = key("run_\(run)")
            _ = try await service.createRun(workspace: "ws_1", runID: key.runID)
            _ = try await service.append(try ndjson(#"{"type":"run.started"}"#), to: key)
            for _ in 0..<10 { _ = try await service.append(try EventBatch(ndjson: body), to: key) }
            if run % 10 == 0 { try await service.flushProgress() }
            if run % 2 == 0 {
                _ = try await service.append(try ndjson(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#), to: key)
            }
        }
        try await service.flushProgress()
        try await #require(environment.catalog as? SQLiteRunCatalog).checkpoint()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: environment.root + "/catalog.sqlite")[.size] as? Int)
        let wal = (try? FileManager.default.attributesOfItem(atPath: environment.root + "/catalog.sqlite-wal")[.size] as? Int) ?? 0
        let events = try await environment.catalog.list(workspace: "ws_1", limit: 500).items.reduce(0) { $0 + $1.eventCount }
        #expect(events >= 1_000_000)
        #expect(size + wal < 1 << 20, "catalog is \(size) bytes (+\(wal) WAL) for \(events) events")
        try await environment.stop()
    }
}

@Suite(.timeLimit(.minutes(2))) struct VerifyTests {
    @Test(arguments: TestCatalogBackend.allCases) func findsAndRepairsWhatCanBeRepaired(_ backend: TestCatalogBackend) async throws {
        let environment = try await Environment(backend)
        defer { environment.remove() }
        let service = environment.service
        for run in ["sound", "torn", "lagging", "gap", "missing", "unfinished"] {
            _ = try await service.createRun(workspace: "ws_1", runID: run)
            _ = try await service.append(try ndjson(#"{"type":"run.started"}"#, #"{"type":"console.line"}"#, #"{"type":"console.line"}"#), to: key(run))
        }
        _ = try await environment.store.append(try ndjson(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#), to: key("unfinished"))
        try await service.flushProgress()
        // Everything but "lagging" and "unfinished" is in step now; make "sound" terminal too.
        _ = try await service.append(try ndjson(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#), to: key("sound"))
        _ = try await service.append(try ndjson(#"{"type":"console.line"}"#), to: key("lagging"))  // not flushed to the row
        try await environment.stop()

        let logs = { (run: String) in environment.root + "/workspaces/ws_1/runs/\(run)/logs" }
        let torn = try #require(FileHandle(forWritingAtPath: logs("torn") + "/events.ndjson"))
        try torn.seekToEnd()
        try torn.write(contentsOf: Data(#"{"sequence":4,"type":"con"#.utf8))
        try torn.close()
        var gap = String(decoding: try Data(contentsOf: URL(fileURLWithPath: logs("gap") + "/events.ndjson")), as: UTF8.self)
        gap = gap.replacingOccurrences(of: #"{"sequence":2,"#, with: #"{"sequence":7,"#)
        try Data(gap.utf8).write(to: URL(fileURLWithPath: logs("gap") + "/events.ndjson"))
        try FileManager.default.removeItem(atPath: environment.root + "/workspaces/ws_1/runs/missing")

        let checking = try await Environment(root: environment.root, place: environment.place)
        let report = try await checking.service.verify(repair: false)
        #expect(report.runsChecked == 6)
        let problems = Dictionary(grouping: report.findings, by: \.runID)
        #expect(problems["sound"] == nil)
        #expect(problems["torn"]?.contains { $0.problem.contains("ends inside a line") } == true)
        #expect(problems["lagging"]?.contains { $0.problem.contains("the row says 3 last") } == true)
        #expect(problems["gap"]?.contains { $0.problem.contains("sequence 7 follows 1") } == true)
        #expect(problems["missing"]?.map(\.problem) == ["the run has no log directory"])
        #expect(problems["unfinished"]?.contains { $0.problem.contains("ends with run.completed but the run is running") } == true)
        #expect(report.unresolved.count == report.findings.count)
        // Checking changed nothing.
        #expect(try await checking.service.verify(repair: false) == report)

        let repaired = try await checking.service.verify(repair: true)
        let unresolved = Set(repaired.unresolved.map(\.runID))
        #expect(unresolved == ["gap", "missing"])
        #expect(try await checking.service.run(key("unfinished")).status == .succeeded)
        #expect(try await checking.service.run(key("lagging")).eventCount == 4)
        #expect(try await checking.store.lastSequence(of: key("torn")) == 3)
        let again = try await checking.service.verify(repair: false)
        #expect(Set(again.findings.map(\.runID)) == ["gap", "missing"])
        try await checking.stop()
    }
}

@Suite(.timeLimit(.minutes(1))) struct RunTimeoutTests {
    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        private let instant = Mutex(ContinuousClock.now)
        func read() -> ContinuousClock.Instant { instant.withLock { $0 } }
        func advance(by duration: Duration) { instant.withLock { $0 += duration } }
    }

    @Test(arguments: TestCatalogBackend.allCases) func aRunWithNoAppendForTheTimeoutIsCompletedAsCancelledAndTimedOut(_ backend: TestCatalogBackend) async throws {
        let clock = ManualClock()
        let environment = try await Environment(backend, runTimeout: .seconds(60), now: { clock.read() })
        defer { environment.remove() }
        let service = environment.service
        for run in ["run_1", "run_2"] {
            _ = try await service.createRun(workspace: "ws_1", runID: run)
            _ = try await service.append(try ndjson(#"{"type":"run.started"}"#), to: key(run))
        }
        clock.advance(by: .seconds(30))
        _ = try await service.append(try ndjson(#"{"type":"step.log","payload":{"line":"still here"}}"#), to: key("run_2"))
        clock.advance(by: .seconds(29))
        #expect(await service.completeInactiveRuns() == 0)

        clock.advance(by: .seconds(1))
        #expect(await service.completeInactiveRuns() == 1)
        let abandoned = try await service.run(key("run_1"))
        #expect(abandoned.status == .cancelled)
        let summary = try await service.summary(key("run_1"))
        #expect(summary.status == "cancelled" && summary.reason == "timed_out")
        // Readers see the completion as the log's last event, from the server.
        let lines = try await environment.store.lastEvents(of: key("run_1"), count: 1)
        let line = try #require(lines.last)
        let last = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: line).utf8)) as? [String: Any])
        #expect(last["type"] as? String == "run.completed" && last["source"] as? String == "runlog" && last["sequence"] as? Int == 2)
        let payload = try #require(last["payload"] as? [String: Any])
        #expect(payload["status"] as? String == "cancelled" && payload["reason"] as? String == "timed_out")
        #expect(try await service.run(key("run_2")).status == .running)

        clock.advance(by: .seconds(30))
        #expect(await service.completeInactiveRuns() == 1)
        #expect(try await service.run(key("run_2")).status == .cancelled)
        // A producer that comes back is told the run is over.
        await expectError(RunError.self, matching: { if case .closed = $0 { true } else { false } }) {
            _ = try await service.append(try ndjson(#"{"type":"step.log"}"#), to: key("run_1"))
        }
        try await environment.stop()
    }

    @Test func withoutATimeoutNoRunIsEverCompletedByTheServer() async throws {
        let clock = ManualClock()
        let environment = try await Environment(now: { clock.read() })
        defer { environment.remove() }
        _ = try await environment.service.createRun(workspace: "ws_1", runID: "run_1")
        clock.advance(by: .seconds(365 * 86_400))
        #expect(await environment.service.completeInactiveRuns() == 0)
        #expect(try await environment.service.run(key()).status == .queued)
        try await environment.stop()
    }

    @Test func aRestartDoesNotCountTheTimeTheServerWasDown() async throws {
        let clock = ManualClock()
        let first = try await Environment(runTimeout: .seconds(60), now: { clock.read() })
        defer { first.remove() }
        _ = try await first.service.createRun(workspace: "ws_1", runID: "run_1")
        _ = try await first.service.append(try ndjson(#"{"type":"run.started"}"#), to: key())
        try await first.stop()
        clock.advance(by: .seconds(3600))

        let second = try await Environment(root: first.root, place: first.place, runTimeout: .seconds(60), now: { clock.read() })
        _ = try await second.service.reconcile()  // as `run()` does at start
        #expect(await second.service.completeInactiveRuns() == 0)
        clock.advance(by: .seconds(60))
        #expect(await second.service.completeInactiveRuns() == 1)
        try await second.stop()
    }
}
