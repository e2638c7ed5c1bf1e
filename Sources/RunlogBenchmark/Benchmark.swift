import ArgumentParser
import Foundation
import GRDB
import Logging
import RunlogStorage

/// `swift run -c release runlog-bench`: append and replay throughput of the storage engine,
/// against the same events stored as SQLite rows, measured in one process.
@main
struct Benchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runlog-bench",
        abstract: "Runlog's benchmarks (use a release build).",
        subcommands: [StorageBenchmark.self, CatalogBenchmark.self, BackendsBenchmark.self, RetentionBenchmark.self, GatewayBenchmark.self, BaselineServer.self],
        defaultSubcommand: StorageBenchmark.self
    )
}

/// The storage engine against a SQLite-rows baseline.
struct StorageBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "Append and replay throughput against one-row-per-event SQLite."
    )

    @Option(help: "Where to write the benchmark's files (removed afterwards).")
    var directory: String = NSTemporaryDirectory() + "runlog-bench"

    @Option(help: "Repetitions per measurement; the median is reported.")
    var repetitions: Int = 5

    @Option(help: "Megabytes of log for the replay measurement.")
    var replayMegabytes: Int = 256

    @Flag(help: "Small sizes, for a quick check that everything runs.")
    var quick = false

    func run() async throws {
        try ScratchDirectory.prepare(directory)
        defer { ScratchDirectory.remove(directory) }
        let scale = quick ? 10 : 1
        print("# runlog-bench (\(repetitions) repetitions, medians)\n")
        print("payload: \(Workload.sampleLine.utf8.count) bytes of producer JSON per event\n")
        print("| workload | durability | batch | runlog events/s | runlog MB/s | sqlite events/s | ratio |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for durability in [Durability.none, .fsync] {
            for batchSize in [1, 100, 1000] {
                let events = Workload.eventCount(batchSize: batchSize, durability: durability) / scale
                let runlog = try await measure { index in
                    try await Workload.appendRunlog(root: directory + "/runlog-\(durability)-\(batchSize)-\(index)", durability: durability, batchSize: batchSize, events: events)
                }
                let sqlite = try await measure { index in
                    try await Workload.appendSQLite(path: directory + "/sqlite-\(durability)-\(batchSize)-\(index).sqlite", durability: durability, batchSize: batchSize, events: events)
                }
                print(row("append", durability, batchSize, runlog, sqlite))
            }
        }
        for (durability, appenders) in [(Durability.fsync, 8), (.fsync, 64)] {
            let events = 8000 / scale
            let runlog = try await measure { index in
                try await Workload.appendRunlogConcurrently(root: directory + "/group-\(appenders)-\(index)", durability: durability, appenders: appenders, events: events)
            }
            let sqlite = try await measure { index in
                try await Workload.appendSQLiteConcurrently(path: directory + "/group-\(appenders)-\(index).sqlite", durability: durability, appenders: appenders, events: events)
            }
            print(row("append, \(appenders) concurrent appenders", durability, 1, runlog, sqlite))
        }

        let replayEvents = replayMegabytes * 1024 * 1024 / scale / Workload.storedLineEstimate
        let replay = try await Workload.prepareReplay(directory: directory, events: replayEvents)
        let runlogReplay = try await measure { _ in try await replay.readRunlog() }
        let sqliteReplay = try await measure { _ in try await replay.readSQLite() }
        print("\n| replay (page cache) | bytes | runlog MB/s | sqlite MB/s | ratio |")
        print("|---|---:|---:|---:|---:|")
        let runlogRate = Double(runlogReplay.bytes) / runlogReplay.seconds / 1e6
        let sqliteRate = Double(sqliteReplay.bytes) / sqliteReplay.seconds / 1e6
        print("| \(replayEvents) events, one run | \(runlogReplay.bytes) | \(format(runlogRate)) | \(format(sqliteRate)) | \(String(format: "%.1f", runlogRate / sqliteRate))x |")
        await replay.close()
    }

    /// Runs `body` `repetitions` times; returns the median run (by seconds).
    func measure(_ body: (Int) async throws -> Measurement) async throws -> Measurement {
        var runs: [Measurement] = []
        for index in 0..<repetitions { runs.append(try await body(index)) }
        return runs.sorted { $0.seconds < $1.seconds }[runs.count / 2]
    }

    func row(_ name: String, _ durability: Durability, _ batch: Int, _ runlog: Measurement, _ sqlite: Measurement) -> String {
        let runlogRate = Double(runlog.events) / runlog.seconds
        let sqliteRate = Double(sqlite.events) / sqlite.seconds
        let megabytes = Double(runlog.bytes) / runlog.seconds / 1e6
        return "| \(name) | \(durability) | \(batch) | \(format(runlogRate)) | \(format(megabytes)) | \(format(sqliteRate)) | \(String(format: "%.1f", runlogRate / sqliteRate))x |"
    }
}

/// The median duration of `count` runs of `body`, in seconds.
func median(_ count: Int, _ body: () async throws -> Void) async throws -> Double {
    var samples: [Double] = []
    for _ in 0..<count {
        let start = ContinuousClock.now
        try await body()
        samples.append((ContinuousClock.now - start).seconds)
    }
    return median(of: samples)
}

/// The middle value (the upper one of an even count); 0 when there is none.
func median(of values: [Double]) -> Double {
    values.isEmpty ? 0 : values.sorted()[values.count / 2]
}

func format(_ value: Double) -> String {
    let digits = String(Int(value.rounded()))
    var result = ""
    for (index, character) in digits.reversed().enumerated() {
        if index > 0 && index % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return String(result.reversed())
}

/// One measured run: how many events and bytes, in how long.
struct Measurement {
    var events: Int
    var bytes: Int
    var seconds: Double
}

/// The directory a benchmark writes to: emptied before, removed after.
enum ScratchDirectory {
    static func prepare(_ path: String) throws {
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    static func remove(_ path: String) {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            print("warning: could not remove \(path): \(error)")
        }
    }
}
