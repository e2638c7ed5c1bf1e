import Foundation
import RunlogCatalog
import RunlogRetention
import RunlogStorage
import RunlogTestSupport
import Testing

/// `runlog retention` as cron runs it: a child process, its output and exit status, and
/// SIGKILL at random moments.
@Suite(.timeLimit(.minutes(5))) struct RetentionCommandTests {
    static let runlog = builtProduct("runlog")

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: runlog)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, stdout, stderr)
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Output {
        try await offPool { try runBlocking(arguments, environment: environment) }
    }

    private static func runBlocking(_ arguments: [String], environment: [String: String]) throws -> Output {
        let (process, stdout, stderr) = try start(arguments, environment: environment)
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let error = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self), stderr: String(decoding: error, as: UTF8.self))
    }

    static func retention(_ root: String, _ extra: [String] = [], environment: [String: String] = [:]) async throws -> Output {
        try await run(["retention", "--storage", root, "--as-of", today.rfc3339] + extra, environment: environment)
    }

    @Test func printsATableOrJSONAndExitsZero() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try await fixture.makeRun("run_old", events: 100, createdAt: daysAgo(100), completedAt: daysAgo(99))
        try await fixture.makeRun("run_week", events: 100, createdAt: daysAgo(9), completedAt: daysAgo(8))
        try await fixture.close()

        let preview = try await Self.retention(fixture.root, ["--dry-run"])
        #expect(preview.status == 0, "\(preview.stderr)")
        #expect(preview.stdout.contains("dry run") && preview.stdout.contains("would compress"))
        #expect(preview.stderr.isEmpty, "quiet unless --verbose: \(preview.stderr)")
        #expect(FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))

        let done = try await Self.retention(fixture.root, ["--json"])
        #expect(done.status == 0, "\(done.stderr)")
        let report = try JSONDecoder().decode(RetentionReport.self, from: Data(done.stdout.utf8))
        #expect(report.deletedLogs.runs == 1 && report.compressed.runs == 1 && report.errors.isEmpty && !report.dryRun)
        #expect(report.asOf == today.rfc3339 && report.compressAfterSeconds == 7 * 86_400 && report.deleteAfterSeconds == 90 * 86_400)
        #expect(!FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))

        let preview2 = try await Self.retention(fixture.root, ["--verbose", "--dry-run", "--delete-rows"])
        #expect(preview2.stderr.contains("would delete row of ws_1/run_old"), "\(preview2.stderr)")
        // RUNLOG_DELETE_ROWS as an operator writes it, `true` as well as `1`.
        let verbose = try await Self.retention(fixture.root, ["--verbose"], environment: ["RUNLOG_DELETE_ROWS": "true"])
        #expect(verbose.status == 0)
        #expect(verbose.stderr.contains("delete row of ws_1/run_old"), "\(verbose.stderr)")
        #expect(verbose.stdout.contains("deleted rows"))
    }

    @Test func badInputGetsOneLineAndChangesNothing() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try await fixture.makeRun("run_old", events: 10, createdAt: daysAgo(100), completedAt: daysAgo(99))
        try await fixture.close()
        for arguments in [
            ["retention", "--storage", fixture.root, "--as-of", "yesterday"],
            ["retention", "--storage", fixture.root + "/missing"],
            ["retention", "--storage", fixture.root, "--compress-after", "7 days"],
        ] {
            let output = try await Self.run(arguments)
            #expect(output.status != 0)
            // One error line (argument parsing adds its usage hint below it).
            let errors = output.stderr.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
            #expect(errors.count == 1 && output.stderr.hasPrefix("Error: "), "\(arguments): \(output.stderr)")
        }
        // A variable that does not parse is refused, not taken for the default.
        for (name, value) in [("RUNLOG_DELETE_ROWS", "maybe"), ("RUNLOG_DELETE_AFTER", "90 days")] {
            let output = try await Self.run(["retention", "--storage", fixture.root], environment: [name: value])
            #expect(output.status == 1)
            #expect(output.stderr == "Error: environment variable \(name) has an invalid value '\(value)'\n")
        }
        #expect(FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))
    }

    @Test func aPassFindingAnotherRunningSaysSoAndDoesNothing() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try await fixture.makeRun("run_old", events: 10, createdAt: daysAgo(100), completedAt: daysAgo(99))
        try await fixture.close()
        let lock = try RetentionLock.acquire(root: fixture.root)
        let output = try await Self.retention(fixture.root)
        withExtendedLifetime(lock) {}
        #expect(output.status == 0)
        #expect(output.stderr.contains("another retention pass is running (process \(getpid())"), "\(output.stderr)")
        #expect(output.stdout.isEmpty)
        #expect(FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))
    }

    @Test func serveRunsPassesWithRetentionInterval() async throws {
        let fixture = try Fixture()
        defer { fixture.remove() }
        try await fixture.makeRun("run_old", events: 10, createdAt: daysAgo(100), completedAt: daysAgo(99))
        try await fixture.close()
        let (server, stdout, _) = try Self.start(["serve", "--port", "0", "--storage", fixture.root, "--retention-interval", "1h"])
        // The first pass runs at start-up; its summary is one operational log line.
        let logs = try await offPool {
            var text = ""
            while !text.contains("retention pass finished") {
                let chunk = stdout.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }
        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
        #expect(logs.contains("retention pass finished"), "\(logs)")
        #expect(server.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: fixture.logDirectory("run_old")))
        let catalog = try SQLiteRunCatalog(path: fixture.root + "/catalog.sqlite")
        #expect(try await catalog.run(workspace: "ws_1", id: "run_old")?.logsDeletedAt != nil)
        try await catalog.close()
    }

    // MARK: Killed at random moments

    /// 12 runs to delete, 12 to compress, 4 live ones with old closed segments, 4 recent.
    static func makeTemplate() async throws -> (Fixture, [String: [String]]) {
        let fixture = try Fixture(segmentBytes: 4 * 1024)
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
        let fixture = try Fixture(root: root, segmentBytes: 4 * 1024)
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

    @Test func killedAtRandomMomentsAndRerunEndsAsAnUninterruptedPass() async throws {
        let (template, lines) = try await Self.makeTemplate()
        defer { template.remove() }
        let reference = template.root + "-reference"
        try FileManager.default.copyItem(atPath: template.root, toPath: reference)
        defer { removeTree(reference) }
        let started = ContinuousClock.now
        let uninterrupted = try await Self.retention(reference, ["--verbose"])
        let passTime = ContinuousClock.now - started
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        let expected = try await Self.endState(of: reference, template: lines)
        #expect(expected.rows.values.filter { $0.contains("deleted=true") }.count == 12)
        #expect(expected.rows.values.filter { $0.contains("compressed=true") }.count == 12)

        // The kill moment is drawn from the pass's own progress, not from a wall-clock guess
        // (a first, cold run of the binary is much slower than later ones): wait for a random
        // number of the actions `--verbose` reports, then a random part of one action's time.
        let actions = uninterrupted.stderr.split(separator: "\n").count
        #expect(actions >= 28, "one line per action: \(uninterrupted.stderr)")
        let microseconds = Int(passTime.components.seconds * 1_000_000 + passTime.components.attoseconds / 1_000_000_000_000)
        let perAction = UInt32(microseconds / max(actions, 1))
        var killedMidway = 0
        for round in 0..<20 {
            let root = template.root + "-round-\(round)"
            try FileManager.default.copyItem(atPath: template.root, toPath: root)
            defer { removeTree(root) }
            let (process, stdout, stderr) = try Self.start(["retention", "--storage", root, "--as-of", today.rfc3339, "--verbose"])
            _ = Self.awaitLines(Int.random(in: 0..<actions), from: stderr)
            usleep(UInt32.random(in: 0...perAction))  // the random kill moment, not a synchronisation
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            _ = stdout.fileHandleForReading.readDataToEndOfFile()
            _ = stderr.fileHandleForReading.readDataToEndOfFile()
            if process.terminationReason == .uncaughtSignal { killedMidway += 1 }

            // Whatever is on disk now reads whole: a log is either intact or gone.
            let fixture = try Fixture(root: root, segmentBytes: 4 * 1024)
            for run in lines.keys.sorted() where FileManager.default.fileExists(atPath: fixture.logDirectory(run)) {
                #expect(try await fixture.lines(of: run) == lines[run], "round \(round): \(run) reads differently after the kill")
            }
            try await fixture.close()

            let rerun = try await Self.retention(root)
            #expect(rerun.status == 0, "round \(round): \(rerun.stderr)")
            #expect(try await Self.endState(of: root, template: lines) == expected, "round \(round)")
        }
        // Most kills must land inside the pass, or the test proves little.
        print("retention kill test: \(killedMidway) of 20 kills interrupted a pass of \(actions) actions")
        #expect(killedMidway >= 15, "only \(killedMidway) of 20 kills interrupted a pass")
    }
}
