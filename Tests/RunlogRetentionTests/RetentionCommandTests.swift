import Foundation
import RunlogCatalog
import RunlogRetention
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Testing

/// `runlog retention` as cron runs it: a child process, its output and exit status, and
/// SIGKILL at random moments.
@Suite(.timeLimit(.minutes(5))) struct RetentionCommandTests {
    static func retention(_ root: String, _ extra: [String] = [], environment: [String: String] = [:]) async throws -> ProcessResult {
        try await ChildProcess.runlog(["retention", "--storage", root, "--as-of", today.rfc3339] + extra, environment: environment)
    }

    @Test func printsATableOrJSONAndExitsZero() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        try await fixture.makeRun("run_old", events: 100, createdAt: daysAgo(100), completedAt: daysAgo(99))
        try await fixture.makeRun("run_week", events: 100, createdAt: daysAgo(9), completedAt: daysAgo(8))
        try await fixture.close()

        let preview = try await Self.retention(fixture.root, ["--dry-run"])
        #expect(preview.status == 0, "\(preview.error)")
        #expect(preview.output.contains("dry run") && preview.output.contains("would compress"))
        #expect(preview.error.isEmpty, "quiet unless --verbose: \(preview.error)")
        #expect(FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))

        let done = try await Self.retention(fixture.root, ["--json"])
        #expect(done.status == 0, "\(done.error)")
        let report = try JSONDecoder().decode(RetentionReport.self, from: Data(done.output.utf8))
        #expect(report.deletedLogs.runs == 1 && report.compressed.runs == 1 && report.errors.isEmpty && !report.dryRun)
        #expect(report.asOf == today.rfc3339 && report.compressAfterSeconds == 7 * 86_400 && report.deleteAfterSeconds == 90 * 86_400)
        #expect(!FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))

        let preview2 = try await Self.retention(fixture.root, ["--verbose", "--dry-run", "--delete-rows"])
        #expect(preview2.error.contains("would delete row of ws_1/run_old"), "\(preview2.error)")
        // RUNLOG_DELETE_ROWS as an operator writes it, `true` as well as `1`.
        let verbose = try await Self.retention(fixture.root, ["--verbose"], environment: ["RUNLOG_DELETE_ROWS": "true"])
        #expect(verbose.status == 0)
        #expect(verbose.error.contains("delete row of ws_1/run_old"), "\(verbose.error)")
        #expect(verbose.output.contains("deleted rows"))
    }

    @Test func badInputGetsOneLineAndChangesNothing() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        try await fixture.makeRun("run_old", events: 10, createdAt: daysAgo(100), completedAt: daysAgo(99))
        try await fixture.close()
        for arguments in [
            ["retention", "--storage", fixture.root, "--as-of", "yesterday"],
            ["retention", "--storage", fixture.root + "/missing"],
            ["retention", "--storage", fixture.root, "--compress-after", "7 days"],
        ] {
            let output = try await ChildProcess.runlog(arguments)
            #expect(output.status != 0)
            // One error line (argument parsing adds its usage hint below it).
            let errors = output.error.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
            #expect(errors.count == 1 && output.error.hasPrefix("Error: "), "\(arguments): \(output.error)")
        }
        // A variable that does not parse is refused, not taken for the default.
        for (name, value) in [("RUNLOG_DELETE_ROWS", "maybe"), ("RUNLOG_DELETE_AFTER", "90 days")] {
            let output = try await ChildProcess.runlog(["retention", "--storage", fixture.root], environment: [name: value])
            #expect(output.status == 1)
            #expect(output.error == "Error: environment variable \(name) has an invalid value '\(value)'\n")
        }
        #expect(FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))
    }

    @Test func aPassFindingAnotherRunningSaysSoAndDoesNothing() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        try await fixture.makeRun("run_old", events: 10, createdAt: daysAgo(100), completedAt: daysAgo(99))
        try await fixture.close()
        let lock = try RetentionLock.acquire(root: fixture.root)
        let output = try await Self.retention(fixture.root)
        withExtendedLifetime(lock) {}
        #expect(output.status == 0)
        #expect(output.error.contains("another retention pass is running (process \(getpid())"), "\(output.error)")
        #expect(output.output.isEmpty)
        #expect(FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))
    }

    @Test func serveRunsPassesWithRetentionInterval() async throws {
        let fixture = try await Fixture()
        defer { fixture.remove() }
        try await fixture.makeRun("run_old", events: 10, createdAt: daysAgo(100), completedAt: daysAgo(99))
        try await fixture.close()
        let stdout = Pipe()
        let server = try await ServerProcess(arguments: ["--retention-interval", "1h"], storage: fixture.root, output: .pipes(stdout: stdout, stderr: nil))
        // The first pass runs at start-up; its summary is one operational log line, written
        // before or after the server says it listens.
        var logs = server.startup
        if !logs.contains("retention pass finished") { logs += await ChildProcess.read(stdout) { $0.contains("retention pass finished") } }
        #expect(logs.contains("retention pass finished"), "\(logs)")
        #expect(try await offPool { server.stop() })
        #expect(!FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))
        let catalog = try SQLiteRunCatalog(path: fixture.root + "/catalog.sqlite")
        #expect(try await catalog.run(workspace: "ws_1", id: "run_old")?.logsDeletedAt != nil)
        try await catalog.close()
    }

    // MARK: Killed at random moments

    /// 12 runs to delete, 12 to compress, 4 live ones with old closed segments, 4 recent.
    static func makeTemplate() async throws -> (Fixture, [String: [String]]) {
        let fixture = try await Fixture(segmentBytes: 4 * 1024)
        var lines: [String: [String]] = [:]
        for index in 0..<12 {
            lines["del_\(index)"] = try await fixture.makeRun("del_\(index)", events: 150, createdAt: daysAgo(120), completedAt: daysAgo(100 + Double(index)))
            lines["cmp_\(index)"] = try await fixture.makeRun("cmp_\(index)", events: 150, createdAt: daysAgo(30), completedAt: daysAgo(10 + Double(index)))
        }
        for index in 0..<4 {
            try await fixture.makeRun("live_\(index)", events: 150, createdAt: daysAgo(20))
            fixture.clock.set(today)
            let fresh = (0..<50).map { #"{"type":"console.line","payload":{"fresh":\#($0)}}"# }
            _ = try await fixture.runs.append(try EventBatch(ndjson: Array(fresh.joined(separator: "\n").utf8)), to: fixture.key("live_\(index)"))
            try await fixture.store.flush()
            lines["live_\(index)"] = try await fixture.lines(of: "live_\(index)")
            lines["new_\(index)"] = try await fixture.makeRun("new_\(index)", events: 50, createdAt: daysAgo(2), completedAt: daysAgo(1))
        }
        try await fixture.close()
        return (fixture, lines)
    }

    /// What a pass leaves: each row's retention state and each log's files and lines.
    struct EndState: Equatable {
        var rows: [String: String] = [:]
        var files: [String: [String]] = [:]
        var storageEntries: [String] = []
    }

    static func endState(of root: String, template lines: [String: [String]]) async throws -> EndState {
        let fixture = try await Fixture(root: root, segmentBytes: 4 * 1024)
        var state = EndState()
        for run in lines.keys.sorted() {
            let row = try await fixture.row(run)
            state.rows[run] = row.map { "\($0.status) path=\($0.eventsPath ?? "nil") compressed=\($0.logsCompressedAt != nil) deleted=\($0.logsDeletedAt != nil)" } ?? "no row"
            let directory = fixture.logDirectory(run)
            if let path = row?.eventsPath {
                // No row points at missing files.
                #expect(FileManager.default.fileExists(atPath: root + "/" + path), "\(run): \(path) is missing")
            }
            state.files[run] = names(in: directory)
            if FileManager.default.fileExists(atPath: directory) {
                #expect(try await fixture.lines(of: run) == lines[run], "\(run) reads differently")
            }
        }
        state.storageEntries = names(in: root).filter { !$0.hasPrefix("catalog.sqlite") }
        #expect(names(in: root + "/.trash").isEmpty)
        try await fixture.close()
        return state
    }

    /// Reads `pipe` until `count` newlines have arrived (or it closes); returns how many did.
    static func awaitLines(_ count: Int, from pipe: Pipe) -> Int {
        var seen = 0
        while seen < count {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += chunk.count(where: { $0 == UInt8(ascii: "\n") })
        }
        return seen
    }

    @Test(.slow) func killedAtRandomMomentsAndRerunEndsAsAnUninterruptedPass() async throws {
        let (template, lines) = try await Self.makeTemplate()
        defer { template.remove() }
        let reference = template.root + "-reference"
        try FileManager.default.copyItem(atPath: template.root, toPath: reference)
        defer { removeTree(reference) }
        let started = ContinuousClock.now
        let uninterrupted = try await Self.retention(reference, ["--verbose"])
        let passTime = ContinuousClock.now - started
        #expect(uninterrupted.status == 0, "\(uninterrupted.error)")
        let expected = try await Self.endState(of: reference, template: lines)
        #expect(expected.rows.values.filter { $0.contains("deleted=true") }.count == 12)
        #expect(expected.rows.values.filter { $0.contains("compressed=true") }.count == 12)

        // The kill moment is drawn from the pass's own progress, not from a wall-clock guess
        // (a first, cold run of the binary is much slower than later ones): wait for a random
        // number of the actions `--verbose` reports, then a random part of one action's time.
        let actions = uninterrupted.error.split(separator: "\n").count
        #expect(actions >= 28, "one line per action: \(uninterrupted.error)")
        let microseconds = Int(passTime.components.seconds * 1_000_000 + passTime.components.attoseconds / 1_000_000_000_000)
        let perAction = UInt32(microseconds / max(actions, 1))
        var killedMidway = 0
        for round in 0..<20 {
            let root = template.root + "-round-\(round)"
            try FileManager.default.copyItem(atPath: template.root, toPath: root)
            defer { removeTree(root) }
            let (process, stdout, stderr) = try ChildProcess.start(ChildProcess.runlogPath, ["retention", "--storage", root, "--as-of", today.rfc3339, "--verbose"])
            _ = Self.awaitLines(Int.random(in: 0..<actions), from: stderr)
            usleep(UInt32.random(in: 0...perAction))  // the random kill moment, not a synchronisation
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            _ = stdout.fileHandleForReading.readDataToEndOfFile()
            _ = stderr.fileHandleForReading.readDataToEndOfFile()
            if process.terminationReason == .uncaughtSignal { killedMidway += 1 }

            // Whatever is on disk now reads whole: a log is either intact or gone.
            let fixture = try await Fixture(root: root, segmentBytes: 4 * 1024)
            for run in lines.keys.sorted() where FileManager.default.fileExists(atPath: fixture.logDirectory(run)) {
                #expect(try await fixture.lines(of: run) == lines[run], "round \(round): \(run) reads differently after the kill")
            }
            try await fixture.close()

            let rerun = try await Self.retention(root)
            #expect(rerun.status == 0, "round \(round): \(rerun.error)")
            #expect(try await Self.endState(of: root, template: lines) == expected, "round \(round)")
        }
        // Most kills must land inside the pass, or the test proves little.
        print("retention kill test: \(killedMidway) of 20 kills interrupted a pass of \(actions) actions")
        #expect(killedMidway >= 15, "only \(killedMidway) of 20 kills interrupted a pass")
    }
}
