import ArgumentParser
import Foundation
import GRDB
import Logging
import RunlogCatalog
import RunlogRuns
import RunlogStorage

/// The two catalog backends side by side, in one run: creating runs, listing 100,000 of them,
/// and appends through the run service with live summaries written behind them.
struct BackendsBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract: "SQLite against PostgreSQL as the catalog: create rate, listing, appends with live summaries.",
        discussion: "Without --postgres, starts a throwaway server with scripts/postgres (run from the repository root)."
    )

    @Option(help: "A PostgreSQL server (postgres://...) on which the benchmark may create and drop databases.")
    var postgres: String?

    @Option(help: "Where to write the benchmark's files (removed afterwards).")
    var directory: String = NSTemporaryDirectory() + "runlog-bench-backends"

    @Option(help: "Runs in the catalog for the listing measurements.")
    var runs: Int = 100_000

    @Option(help: "Alternated repetitions per measurement; the median is reported.")
    var repetitions: Int = 3

    @Flag(help: "Small sizes, for a quick check that everything runs.")
    var quick = false

    func run() async throws {
        try ScratchDirectory.prepare(directory)
        defer { ScratchDirectory.remove(directory) }
        let server = try PostgresForBenchmark(url: postgres, directory: directory + "/postgres")
        defer { server.stop() }
        let scale = quick ? 20 : 1
        print("# runlog-bench backends (medians of \(repetitions) alternated repetitions; PostgreSQL \(server.version) on loopback)\n")

        print("| measurement | sqlite | postgres | postgres / sqlite |")
        print("|---|---:|---:|---:|")
        var section = 0
        /// `repetitions` alternated measurements of each backend, each on a fresh catalog; the medians.
        func both(_ name: String, unit: Unit, _ measure: (_ catalog: any RunCatalog, _ root: String, _ backend: Backend) async throws -> Double) async throws {
            var results: [Backend: [Double]] = [:]
            for _ in 0..<repetitions {
                for backend in Backend.allCases {
                    section += 1
                    let root = "\(directory)/\(section)-\(backend)"
                    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
                    let location: CatalogLocation = backend == .sqlite ? .sqlite(path: root + "/catalog.sqlite") : .postgres(try server.createDatabase())
                    let catalog = try await location.open(logger: Self.logger)
                    results[backend, default: []].append(try await measure(catalog, root, backend))
                    try await catalog.close()
                    if case .postgres(let database) = location { try server.dropDatabase(database) }
                    ScratchDirectory.remove(root)
                }
            }
            let sqlite = median(of: results[.sqlite] ?? [])
            let postgres = median(of: results[.postgres] ?? [])
            print("| \(name) | \(unit.text(sqlite)) | \(unit.text(postgres)) | \(String(format: "%.2f", postgres / sqlite))x |")
        }

        let creations = 2000 / scale
        try await both("create runs, one at a time (\(format(Double(creations))) runs)", unit: .rate("runs/s")) { catalog, root, _ in
            try await withService(catalog, root) { service in
                let start = ContinuousClock.now
                for index in 0..<creations { _ = try await service.createRun(workspace: "ws_1", runID: "run_\(index)") }
                return Double(creations) / (ContinuousClock.now - start).seconds
            }
        }
        try await both("create runs, 16 at a time (\(format(Double(creations))) runs)", unit: .rate("runs/s")) { catalog, root, _ in
            try await withService(catalog, root) { service in
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<16 {
                        group.addTask {
                            for index in stride(from: worker, to: creations, by: 16) { _ = try await service.createRun(workspace: "ws_1", runID: "run_\(index)") }
                        }
                    }
                    try await group.waitForAll()
                }
                return Double(creations) / (ContinuousClock.now - start).seconds
            }
        }

        let listed = runs / scale
        let limit = 50
        let depth = listed / limit / 2
        var deepCursor: String?
        func loaded(_ catalog: any RunCatalog, _ root: String, _ backend: Backend) async throws {
            switch backend {
            case .sqlite: try ListingRows.loadSQLite(root + "/catalog.sqlite", runs: listed)
            case .postgres: try server.psql(database: (catalog as! PostgresRunCatalog).location.database, ListingRows.postgresLoad(runs: listed))
            }
            var cursor: String?
            for _ in 0..<depth { cursor = try await catalog.list(workspace: "ws_1", limit: limit, cursor: cursor).nextCursor }
            deepCursor = cursor
        }
        try await both("list the first page of \(format(Double(listed))) runs (limit \(limit))", unit: .duration) { catalog, root, backend in
            try await loaded(catalog, root, backend)
            let first = try await median(200) { _ = try await catalog.list(workspace: "ws_1", limit: limit) }
            return first
        }
        try await both("list page \(depth) by cursor", unit: .duration) { catalog, root, backend in
            try await loaded(catalog, root, backend)
            return try await median(200) { _ = try await catalog.list(workspace: "ws_1", limit: limit, cursor: deepCursor) }
        }
        try await both("list the first page, status + configuration filter", unit: .duration) { catalog, root, backend in
            try await loaded(catalog, root, backend)
            return try await median(200) { _ = try await catalog.list(workspace: "ws_1", filter: .init(status: .failed, configurationID: "config_3"), limit: limit) }
        }

        let appenders = 20
        let batches = 500 / (quick ? 50 : 1)
        var progressWrites: [Backend: [Double]] = [:]
        try await both("append through the run service, \(appenders) runs × \(batches) batches of 100, live summaries", unit: .rate("events/s")) { catalog, root, backend in
            try await withService(catalog, root) { service in
                var keys: [RunKey] = []
                for index in 0..<appenders {
                    _ = try await service.createRun(workspace: "ws_1", runID: "run_\(index)")
                    keys.append(try RunKey(workspace: "ws_1", run: "run_\(index)"))
                }
                let body = Array((0..<100).map { _ in Workload.sampleLine }.joined(separator: "\n").utf8)
                // The server's progress loop, at 50 ms rather than 1 s so that it runs often here.
                let progress = Task {
                    var durations: [Double] = []
                    while true {
                        do {
                            try await Task.sleep(for: .milliseconds(50))
                        } catch {
                            break  // cancelled: the appends are done
                        }
                        let start = ContinuousClock.now
                        try await service.flushProgress()
                        durations.append((ContinuousClock.now - start).seconds)
                    }
                    return median(of: durations)
                }
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for key in keys {
                        group.addTask {
                            _ = try await service.append(try EventBatch(ndjson: Array(#"{"type":"run.started"}"#.utf8)), to: key)
                            for _ in 0..<batches { _ = try await service.append(try EventBatch(ndjson: body), to: key) }
                        }
                    }
                    try await group.waitForAll()
                }
                let seconds = (ContinuousClock.now - start).seconds
                progress.cancel()
                progressWrites[backend, default: []].append(try await progress.value)
                return Double(appenders * batches * 100) / seconds
            }
        }
        let sqliteWrite = median(of: progressWrites[.sqlite] ?? [])
        let postgresWrite = median(of: progressWrites[.postgres] ?? [])
        print("| the progress write meanwhile (\(appenders) rows, one transaction) | \(Unit.duration.text(sqliteWrite)) | \(Unit.duration.text(postgresWrite)) | \(String(format: "%.2f", postgresWrite / sqliteWrite))x |")
    }

    enum Backend: String, CaseIterable {
        case sqlite
        case postgres
    }

    enum Unit {
        case rate(String)
        case duration

        func text(_ value: Double) -> String {
            switch self {
            case .rate(let unit): return "\(format(value)) \(unit)"
            case .duration: return value >= 0.01 ? String(format: "%.1f ms", value * 1000) : String(format: "%.0f µs", value * 1e6)
            }
        }
    }

    static var logger: Logger {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        return logger
    }

    /// A run service over a store at `root` (flush durability) and `catalog`.
    func withService<T>(_ catalog: any RunCatalog, _ root: String, _ body: (RunService) async throws -> T) async throws -> T {
        var configuration = EventStoreConfiguration(root: root)
        configuration.durability = .flush
        let store = EventStore(configuration: configuration, logger: Self.logger)
        let service = RunService(store: store, catalog: catalog, logger: Self.logger)
        do {
            let result = try await body(service)
            await store.shutdown()
            return result
        } catch {
            await store.shutdown()
            throw error
        }
    }
}

/// The rows of the listing measurements, the same in both backends and in `runlog-bench catalog`.
enum ListingRows {
    /// Loads `runs` rows into a SQLite catalog: several runs per millisecond, so that pages cut
    /// through ties; five statuses, ten configurations. The same in both backends.
    static func loadSQLite(_ path: String, runs: Int) throws {
        let queue = try DatabaseQueue(path: path)
        let statuses = RunStatus.allCases
        try queue.write { db in
            let statement = try db.makeStatement(sql: """
                INSERT INTO runs (workspace_id, id, configuration_id, status, created_at, events_path, summary)
                VALUES ('ws_1', ?, ?, ?, ?, ?, '{"schema":"runlog.run_summary/v1"}')
                """)
            for index in 0..<runs {
                try statement.execute(arguments: [
                    String(format: "run_%07d", index), "config_\(index % 10)", statuses[index % statuses.count].rawValue,
                    1_795_341_600_000 + Int64(index / 3), "workspaces/ws_1/runs/run_\(index)/logs",
                ])
            }
        }
        try queue.close()
    }

    static func postgresLoad(runs: Int) -> String {
        let statuses = RunStatus.allCases.map { "'\($0.rawValue)'" }.joined(separator: ",")
        return """
            INSERT INTO runs (workspace_id, id, configuration_id, status, created_at, events_path, summary)
            SELECT 'ws_1', 'run_' || lpad(n::text, 7, '0'), 'config_' || (n % 10), (ARRAY[\(statuses)])[n % 5 + 1],
                1795341600000 + n / 3, 'workspaces/ws_1/runs/run_' || n || '/logs', '{"schema":"runlog.run_summary/v1"}'
            FROM generate_series(0, \(runs - 1)) AS n;
            ANALYZE runs;
            """
    }
}

/// The PostgreSQL server the benchmark uses: given, or a throwaway one of `scripts/postgres`.
struct PostgresForBenchmark {
    let url: String
    let version: String
    private let ownDirectory: String?
    private var counter = 0

    init(url: String?, directory: String) throws {
        if let url {
            self.url = url
            ownDirectory = nil
        } else {
            self.url = try Self.run("scripts/postgres", ["start", directory]).trimmingCharacters(in: .whitespacesAndNewlines)
            ownDirectory = directory
        }
        version = try Self.run("/usr/bin/psql", [self.url, "-qAtc", "SHOW server_version"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func createDatabase() throws -> PostgresLocation {
        var location = try PostgresLocation(url: url)
        location.database = "runlog_bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        _ = try Self.run("/usr/bin/psql", [url, "-qAtc", "CREATE DATABASE \(location.database)"])
        return location
    }

    func dropDatabase(_ location: PostgresLocation) throws {
        _ = try Self.run("/usr/bin/psql", [url, "-qAtc", "DROP DATABASE \(location.database) WITH (FORCE)"])
    }

    func psql(database: String, _ sql: String) throws {
        var location = try PostgresLocation(url: url)
        location.database = database
        _ = try Self.run("/usr/bin/psql", [location.description, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
    }

    func stop() {
        guard let ownDirectory else { return }
        do {
            _ = try Self.run("scripts/postgres", ["stop", ownDirectory])
        } catch {
            print("warning: could not stop the benchmark's PostgreSQL: \(error)")
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(executable) \(arguments.first ?? ""): \(String(decoding: errorText, as: UTF8.self))")
        }
        return String(decoding: text, as: UTF8.self)
    }
}
