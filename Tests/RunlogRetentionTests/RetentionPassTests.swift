import Foundation
import RunlogCatalog
import RunlogRetention
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Testing

@Suite(.timeLimit(.minutes(2))) struct RetentionPassTests {
    @Test(arguments: TestCatalogBackend.allCases) func compressesRunsCompletedBeforeTheCutoffAndNothingYounger(_ backend: TestCatalogBackend) async throws {
        try await withFixture(catalog: backend) { fixture in
            let old = try await fixture.makeRun("run_old", events: 300, createdAt: daysAgo(10), completedAt: daysAgo(9))
            let recent = try await fixture.makeRun("run_recent", events: 300, createdAt: daysAgo(3), completedAt: daysAgo(2))
            let live = try await fixture.makeRun("run_live", events: 30, createdAt: daysAgo(1))
            let recentNames = names(in: fixture.logDirectory("run_recent"))
            let liveNames = names(in: fixture.logDirectory("run_live"))

            let report = try await fixture.pass().run(policy: RetentionPolicy(), asOf: today)

            #expect(report.errors.isEmpty)
            #expect(report.compressed.runs == 1)
            let compressed = names(in: fixture.logDirectory("run_old"))
            #expect(compressed.count == report.compressed.segments && compressed.count > 3)
            #expect(compressed.allSatisfy { $0.hasPrefix("events-") && $0.hasSuffix(".ndjson.gz") }, "\(compressed)")
            #expect(report.compressed.bytesAfter < report.compressed.bytesBefore / 3)
            #expect(try await fixture.row("run_old")?.logsCompressedAt != nil)
            #expect(try await fixture.row("run_recent")?.logsCompressedAt == nil)
            #expect(names(in: fixture.logDirectory("run_recent")) == recentNames)
            #expect(names(in: fixture.logDirectory("run_live")) == liveNames)

            // The same events, byte for byte, through this store and through a new one.
            #expect(try await fixture.lines(of: "run_old") == old)
            try await fixture.reopen()
            #expect(try await fixture.lines(of: "run_old") == old)
            #expect(try await fixture.lines(of: "run_recent") == recent)
            #expect(try await fixture.lines(of: "run_live") == live)

            // A second pass finds nothing due.
            let again = try await fixture.pass().run(policy: RetentionPolicy(), asOf: today)
            #expect(again.actions.isEmpty && again.errors.isEmpty)
        }
    }

    @Test func decidesByTheCatalogNeverByTheFilesClock() async throws {
        try await withFixture { fixture in
            try await fixture.makeRun("run_recent", events: 100, createdAt: daysAgo(2), completedAt: daysAgo(1))
            let directory = fixture.logDirectory("run_recent")
            let before = names(in: directory)
            // Files that look a year old.
            let yearAgo = Date(timeIntervalSince1970: Double(daysAgo(365).millisecondsSinceEpoch) / 1000)
            for name in before {
                try FileManager.default.setAttributes([.modificationDate: yearAgo], ofItemAtPath: directory + "/" + name)
            }
            let report = try await fixture.pass().run(policy: RetentionPolicy(compressAfter: .seconds(86_400 * 7), deleteAfter: .seconds(86_400 * 30)), asOf: today)
            #expect(report.actions.isEmpty)
            #expect(names(in: directory) == before)
        }
    }

    @Test(arguments: TestCatalogBackend.allCases) func deletesExpiredLogsAndKeepsTheRowUnlessAskedToDeleteRows(_ backend: TestCatalogBackend) async throws {
        try await withFixture(catalog: backend) { fixture in
            try await fixture.makeRun("run_expired", events: 200, createdAt: daysAgo(101), completedAt: daysAgo(100))
            try await fixture.makeRun("run_kept", events: 200, createdAt: daysAgo(51), completedAt: daysAgo(50))
            let report = try await fixture.pass().run(policy: RetentionPolicy(), asOf: today)

            #expect(report.errors.isEmpty)
            #expect(report.deletedLogs.runs == 1 && report.deletedLogs.bytesBefore > 200 * 150)
            #expect(!FileManager.default.fileExists(atPath: fixture.logDirectory("run_expired")))
            #expect(names(in: fixture.root + "/.trash").isEmpty)
            let row = try #require(try await fixture.row("run_expired"))
            #expect(row.eventsPath == nil && row.logsDeletedAt != nil && row.status == .succeeded)
            let listed = try await fixture.catalog.list(workspace: "ws_1", limit: 10).items.map(\.id)
            #expect(listed.contains("run_expired"))
            // 50 days: compressed, not deleted.
            #expect(report.compressed.runs == 1 && report.actions.contains { $0.runID == "run_kept" && $0.action == .compress })
            await #expect(throws: StorageError.logDeleted(fixture.key("run_expired"))) {
                _ = try await fixture.lines(of: "run_expired")
            }

            // With rows: the row of the run whose logs are gone goes too.
            let rows = try await fixture.pass().run(policy: RetentionPolicy(deleteRows: true), asOf: today)
            #expect(rows.deletedRows == 1 && rows.deletedLogs.runs == 0)
            #expect(try await fixture.row("run_expired") == nil)
            #expect(try await fixture.row("run_kept") != nil)
        }
    }

    @Test func dryRunReportsThePassAndChangesNothing() async throws {
        try await withFixture { fixture in
            try await fixture.makeRun("run_a", events: 200, createdAt: daysAgo(101), completedAt: daysAgo(100))
            try await fixture.makeRun("run_b", events: 200, createdAt: daysAgo(11), completedAt: daysAgo(10))
            try await fixture.makeRun("run_c", events: 200, createdAt: daysAgo(1), completedAt: daysAgo(0.5))
            let tree = try snapshot(fixture)
            let rows = try await fixture.catalog.list(workspace: "ws_1", limit: 10).items

            let preview = try await fixture.pass().run(policy: RetentionPolicy(deleteRows: true), asOf: today, dryRun: true)

            #expect(preview.dryRun && preview.errors.isEmpty)
            #expect(try snapshot(fixture) == tree)
            #expect(try await fixture.catalog.list(workspace: "ws_1", limit: 10).items == rows)
            let done = try await fixture.pass().run(policy: RetentionPolicy(deleteRows: true), asOf: today)
            #expect(preview.actions.map(\.action) == done.actions.map(\.action))
            #expect(preview.actions.map(\.runID) == done.actions.map(\.runID))
            #expect(preview.compressed.bytesBefore == done.compressed.bytesBefore)
            #expect(preview.deletedLogs.bytesBefore == done.deletedLogs.bytesBefore)
            #expect(preview.text.contains("would compress"))
        }
    }

    @Test func asOfEvaluatesThePolicyAtAnotherMoment() async throws {
        try await withFixture { fixture in
            try await fixture.makeRun("run_1", events: 100, createdAt: daysAgo(3), completedAt: daysAgo(2))
            let now = try await fixture.pass().run(policy: RetentionPolicy(), asOf: today)
            #expect(now.actions.isEmpty)
            let inAWeek = Timestamp(millisecondsSinceEpoch: today.millisecondsSinceEpoch + 6 * day)
            let later = try await fixture.pass().run(policy: RetentionPolicy(), asOf: inAWeek)
            #expect(later.actions.map(\.runID) == ["run_1"])
            #expect(later.asOf == inAWeek.rfc3339)
        }
    }

    @Test func compressesOldClosedSegmentsOfLiveRunsButNeverTheActiveOne() async throws {
        try await withFixture { fixture in
            // Events 20 days old, then fresh ones, all in a run still going.
            var lines = try await fixture.makeRun("run_live", events: 200, createdAt: daysAgo(20))
            fixture.clock.set(today)
            let padding = String(repeating: "q", count: 120)
            let fresh = (0..<200).map { #"{"type":"console.line","payload":{"n":\#($0),"text":"\#(padding)"}}"# }
            _ = try await fixture.runs.append(try EventBatch(ndjson: Array(fresh.joined(separator: "\n").utf8)), to: fixture.key("run_live"))
            try await fixture.store.flush()
            lines = try await fixture.lines(of: "run_live")
            let directory = fixture.logDirectory("run_live")
            let active = try Data(contentsOf: URL(fileURLWithPath: directory + "/events.ndjson"))

            let report = try await fixture.pass().run(policy: RetentionPolicy(), asOf: today)

            #expect(report.errors.isEmpty)
            #expect(report.compressedClosedSegments.runs == 1 && report.compressedClosedSegments.segments > 0)
            let after = names(in: directory)
            let gzipped = after.filter { $0.hasSuffix(".gz") }
            #expect(gzipped.count == report.compressedClosedSegments.segments)
            // Only segments whose last event is older than 7 days; the fresh ones stay plain.
            #expect(after.contains { $0.hasPrefix("events-") && $0.hasSuffix(".ndjson") })
            #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/events.ndjson")) == active)
            #expect(try await fixture.row("run_live")?.logsCompressedAt == nil)
            #expect(try await fixture.lines(of: "run_live") == lines)
            // The run goes on.
            _ = try await fixture.runs.append(try EventBatch(ndjson: Array(#"{"type":"console.line","payload":{}}"#.utf8)), to: fixture.key("run_live"))
        }
    }

    @Test func aSecondPassExitsWhileTheFirstHoldsTheLock() async throws {
        try await withFixture { fixture in
            try await fixture.makeRun("run_1", events: 10, createdAt: daysAgo(30), completedAt: daysAgo(29))
            let lock = try RetentionLock.acquire(root: fixture.root)
            await #expect(throws: RetentionError.alreadyRunning(pid: getpid(), lockPath: fixture.root + "/.retention.lock")) {
                _ = try await fixture.pass().run(policy: RetentionPolicy(), asOf: today)
            }
            #expect(try await fixture.row("run_1")?.logsCompressedAt == nil)
            withExtendedLifetime(lock) {}
        }
    }

    /// A process spawned while a pass holds the lock has a copy of its descriptor until it
    /// execs, and a `flock` lasts while any copy is open: the pass unlocks, not just closes, or
    /// the next pass finds the lock taken (seen in a full test run that spawns processes).
    @Test func aPassThatEndedLeavesTheLockFreeWhileACopyOfItsDescriptorIsOpen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let root = directory.path
        var lock: RetentionLock? = try RetentionLock.acquire(root: root)
        // As a spawned child's descriptor table would: a second descriptor for the same open file.
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { Int32($0) }
        let held = try #require(descriptors.first { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == root + "/.retention.lock" })
        let copy = dup(held)
        #expect(copy >= 0)
        defer { close(copy) }
        withExtendedLifetime(lock) {}
        lock = nil
        #expect(throws: Never.self) { _ = try RetentionLock.acquire(root: root) }
    }

    @Test(arguments: TestCatalogBackend.allCases) func finishesWhatAnInterruptedPassLeft(_ backend: TestCatalogBackend) async throws {
        try await withFixture(catalog: backend) { fixture in
            let lines = try await fixture.makeRun("run_1", events: 300, createdAt: daysAgo(10), completedAt: daysAgo(9))
            try await fixture.makeRun("run_2", events: 50, createdAt: daysAgo(100), completedAt: daysAgo(99))
            let maintenance = LogMaintenance(configuration: fixture.storeConfiguration, logger: quietLogger)
            // Interrupted states: a half-written archive, a plain segment beside its gzip, and a
            // deletion moved to the trash before its row was updated.
            let directory = fixture.logDirectory("run_1")
            let segment = try #require(names(in: directory).first { $0.hasPrefix("events-") })
            #expect(FileManager.default.createFile(atPath: directory + "/.\(segment).gz.99999.1.tmp", contents: Data([0x1f, 0x8b])))
            let copy = fixture.root + "/copy"
            try FileManager.default.copyItem(atPath: directory + "/" + segment, toPath: copy)
            _ = try await fixture.store.archiveClosedSegments(of: fixture.key("run_1"))
            try FileManager.default.moveItem(atPath: copy, toPath: directory + "/" + segment)
            #expect(try maintenance.moveToTrash(fixture.key("run_2")) != nil)
            try await fixture.reopen()

            let report = try await fixture.pass().run(policy: RetentionPolicy(), asOf: today)

            #expect(report.errors.isEmpty)
            #expect(report.trashBytesFreed > 0)
            #expect(names(in: directory).allSatisfy { $0.hasSuffix(".ndjson.gz") }, "\(names(in: directory))")
            #expect(try await fixture.lines(of: "run_1") == lines)
            #expect(try await fixture.row("run_2")?.logsDeletedAt != nil)
            #expect(names(in: fixture.root + "/.trash").isEmpty)
        }
    }

    /// Names and sizes of every file under the root (the catalog excepted: SQLite may touch it).
    func snapshot(_ fixture: Fixture) throws -> [String: Int] {
        var files: [String: Int] = [:]
        let enumerator = try #require(FileManager.default.enumerator(atPath: fixture.root))
        while let path = enumerator.nextObject() as? String {
            if path.hasPrefix("catalog.sqlite") || path == ".retention.lock" { continue }
            let attributes = try FileManager.default.attributesOfItem(atPath: fixture.root + "/" + path)
            files[path] = (attributes[.size] as? NSNumber)?.intValue ?? -1
        }
        return files
    }
}
