import ArgumentParser
import Foundation
import GRDB
import Logging
import RunlogCatalog
import RunlogRuns
import RunlogStorage

/// Listing latency over a large catalog, and the cost of a summary read mid-run against a
/// rebuild from the files.
struct CatalogBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Run listing latency with many runs; summary read versus rebuild."
    )

    @Option(help: "Where to write the benchmark's files (removed afterwards).")
    var directory: String = NSTemporaryDirectory() + "runlog-bench-catalog"

    @Option(help: "Runs in the catalog for the listing measurements.")
    var runs: Int = 100_000

    @Option(help: "Events in the run whose summary is measured.")
    var events: Int = 1_000_000

    func run() async throws {
        try ScratchDirectory.prepare(directory)
        defer { ScratchDirectory.remove(directory) }
        print("# runlog-bench catalog (medians)\n")
        try await listing()
        try await summaries()
    }

    func listing() async throws {
        let path = directory + "/catalog.sqlite"
        let catalog = try SQLiteRunCatalog(path: path)
        // Bulk set-up through a second connection: the rows a busy server would have.
        try ListingRows.loadSQLite(path, runs: runs)

        let limit = 50
        let depth = runs / limit / 2  // a page in the middle
        var cursor: String?
        for _ in 0..<depth { cursor = try await catalog.list(workspace: "ws_1", limit: limit, cursor: cursor).nextCursor }
        let deepCursor = cursor

        let first = try await median(200) { _ = try await catalog.list(workspace: "ws_1", limit: limit) }
        let deep = try await median(200) { _ = try await catalog.list(workspace: "ws_1", limit: limit, cursor: deepCursor) }
        let filtered = try await median(200) {
            _ = try await catalog.list(workspace: "ws_1", filter: .init(status: .failed, configurationID: "config_3"), limit: limit)
        }
        // The same deep page by OFFSET, as a baseline.
        let offsetQueue = try DatabaseQueue(path: path)
        let offset = try await median(50) {
            _ = try offsetQueue.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM runs WHERE workspace_id = 'ws_1' ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?", arguments: [limit, depth * limit])
            }
        }
        try offsetQueue.close()
        print("| listing, \(format(Double(runs))) runs, limit \(limit) | median |")
        print("|---|---:|")
        print("| first page | \(micros(first)) |")
        print("| first page, status + configuration filter | \(micros(filtered)) |")
        print("| page \(depth) by cursor (keyset) | \(micros(deep)) |")
        print("| page \(depth) by OFFSET (baseline) | \(micros(offset)) |")
        try await catalog.close()
    }

    func summaries() async throws {
        let root = directory + "/runs"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var configuration = EventStoreConfiguration(root: root)
        configuration.durability = .none
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let store = EventStore(configuration: configuration, logger: logger)
        let catalog = try SQLiteRunCatalog(path: root + "/catalog.sqlite")
        let service = RunService(store: store, catalog: catalog, logger: logger)
        let key = try RunKey(workspace: "ws_1", run: "big")
        _ = try await service.createRun(workspace: "ws_1", runID: "big")
        let lines = (0..<1000).map { index -> String in
            index % 100 == 0
                ? #"{"type":"step.failed","payload":{"message":"step \#(index) failed","level":"error"}}"#
                : #"{"type":"console.line","payload":{"line":"\#(String(repeating: "log ", count: 30))","level":"info"}}"#
        }
        let body = Array(lines.joined(separator: "\n").utf8)
        let appendStart = ContinuousClock.now
        for _ in 0..<(events / 1000) { _ = try await service.append(try EventBatch(ndjson: body), to: key) }
        try await store.flush()
        let appendSeconds = (ContinuousClock.now - appendStart).seconds
        let live = try await median(100) { _ = try await service.summary(key) }
        let rebuild = try await median(3) { _ = try await service.summaryFromFiles(key) }
        let bytes = try await store.inspect(key).storedBytes
        print("\n| summary of a live run with \(format(Double(events))) events (\(bytes / 1_000_000) MB of log) | median |")
        print("|---|---:|")
        print("| read mid-run (in memory) | \(micros(live)) |")
        print("| rebuild from the files | \(micros(rebuild)) |")
        print("\n(appending those events through the run service, summaries included: \(format(Double(events) / appendSeconds)) events/s)")
        await store.shutdown()
        try await catalog.close()
    }

    func micros(_ seconds: Double) -> String {
        seconds >= 0.01 ? String(format: "%.1f ms", seconds * 1000) : String(format: "%.0f µs", seconds * 1e6)
    }
}
