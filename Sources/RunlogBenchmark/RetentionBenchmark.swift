import ArgumentParser
import CZlib
import Foundation
import Logging
import NIOCore
import RunlogCatalog
import RunlogRetention
import RunlogRuns
import RunlogStorage
import Synchronization

/// Wall time of retention passes: many small finished runs, and a few large ones. The baseline,
/// in the same process, is gzipping the same bytes in memory (no files, no fsync, no catalog):
/// what compression alone costs.
struct RetentionBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "One retention pass over many small runs and over a few large ones."
    )

    @Option(help: "Where to write the benchmark's files (removed afterwards).")
    var directory: String = NSTemporaryDirectory() + "runlog-bench-retention"

    @Option(help: "Small finished runs.")
    var smallRuns: Int = 10_000

    @Option(help: "Events per small run (about 310 bytes each as stored).")
    var smallEvents: Int = 32

    @Option(help: "Large finished runs.")
    var largeRuns: Int = 10

    @Option(name: .customLong("large-mib"), help: "MiB per large run.")
    var largeMiB: Int = 100

    @Option(help: "Passes measured per scenario (each on a fresh copy); the median is reported.")
    var rounds: Int = 3

    func run() async throws {
        try ScratchDirectory.prepare(directory)
        defer { ScratchDirectory.remove(directory) }
        print("# runlog-bench retention (medians of \(rounds) passes, each on a fresh copy)\n")
        print("| scenario | bytes | pass | runs/s | MB/s | gzipped to | baseline: gzip in memory | pass / baseline |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        let small = try await makeTemplate(name: "small", runs: smallRuns, eventsPerRun: smallEvents)
        try await measure("compress", template: small, runs: smallRuns, asOf: .compress)
        try await measure("delete", template: small, runs: smallRuns, asOf: .delete)
        let catalogBytes = try FileManager.default.attributesOfItem(atPath: small + "/catalog.sqlite")[.size] as? Int ?? 0
        ScratchDirectory.remove(small)
        let largeEvents = largeMiB * (1 << 20) / 310
        let large = try await makeTemplate(name: "large", runs: largeRuns, eventsPerRun: largeEvents)
        try await measure("compress", template: large, runs: largeRuns, asOf: .compress)
        print("\n(the catalog of the \(format(Double(smallRuns))) small runs, summaries included: \(format(Double(catalogBytes))) bytes, \(catalogBytes / max(1, smallRuns)) per run)")
    }

    enum Moment {
        case compress, delete

        /// The runs completed 10 days before the real now: due for compression now, for deletion in 100 days.
        var timestamp: Timestamp {
            let now = Timestamp.now().millisecondsSinceEpoch
            return Timestamp(millisecondsSinceEpoch: self == .compress ? now : now + 100 * 86_400_000)
        }
    }

    /// Finished runs of `eventsPerRun` events of about 200 bytes, completed 10 days ago.
    func makeTemplate(name: String, runs count: Int, eventsPerRun: Int) async throws -> String {
        let root = directory + "/" + name
        var configuration = EventStoreConfiguration(root: root)
        configuration.durability = .none
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let tenDaysAgo = Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch - 10 * 86_400_000)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let store = EventStore(configuration: configuration, logger: logger, wallClock: { tenDaysAgo })
        let catalog = try SQLiteRunCatalog(path: root + "/catalog.sqlite")
        let runs = RunService(store: store, catalog: catalog, logger: logger, wallClock: { tenDaysAgo })
        let padding = String(repeating: "x", count: 90)
        let batch = (0..<min(eventsPerRun, 1000)).map { #"{"type":"console.line","payload":{"n":\#($0),"line":"step \#($0) \#(padding)"}}"# }
        let body = try EventBatch(ndjson: Array(batch.joined(separator: "\n").utf8))
        let done = try EventBatch(ndjson: Array(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#.utf8))
        for index in 0..<count {
            let key = try RunKey(workspace: "ws_1", run: "run_\(index)")
            _ = try await runs.createRun(workspace: "ws_1", runID: key.runID)
            var appended = 0
            while appended < eventsPerRun {
                _ = try await runs.append(body, to: key)
                appended += body.count
            }
            _ = try await runs.append(done, to: key)
        }
        await store.shutdown()
        try await catalog.close()
        return root
    }

    func measure(_ label: String, template: String, runs: Int, asOf moment: Moment) async throws {
        var passSeconds: [Double] = []
        var baselineSeconds: [Double] = []
        var report: RetentionReport?
        for round in 0..<rounds {
            let root = directory + "/round-\(round)"
            if FileManager.default.fileExists(atPath: root) { try FileManager.default.removeItem(atPath: root) }
            try FileManager.default.copyItem(atPath: template, toPath: root)
            if moment == .delete {
                baselineSeconds.append(0)
            } else {
                baselineSeconds.append(try gzipInMemory(root))
            }
            var configuration = EventStoreConfiguration(root: root)
            configuration.durability = .fsync
            var logger = Logger(label: "bench")
            logger.logLevel = .error
            let catalog = try SQLiteRunCatalog(path: root + "/catalog.sqlite")
            let pass = RetentionPass(catalog: catalog, maintenance: LogMaintenance(configuration: configuration, logger: logger), logger: logger)
            let start = ContinuousClock.now
            let result = try await pass.run(policy: RetentionPolicy(), asOf: moment.timestamp)
            passSeconds.append((ContinuousClock.now - start).seconds)
            guard result.errors.isEmpty, result.actions.count == runs else {
                throw ValidationError("the pass did \(result.actions.count) actions with \(result.errors.count) errors: \(result.errors.prefix(3))")
            }
            report = result
            try await catalog.close()
            ScratchDirectory.remove(root)
        }
        let pass = median(of: passSeconds)
        let baseline = median(of: baselineSeconds)
        let totals = moment == .compress ? report!.compressed : report!.deletedLogs
        let megabytes = Double(totals.bytesBefore) / 1e6
        let gzipped = moment == .compress ? String(format: "%.1f%%", 100 * Double(totals.bytesAfter) / Double(totals.bytesBefore)) : "-"
        let baselineText = moment == .compress ? String(format: "%.2f s", baseline) : "-"
        let ratio = moment == .compress ? String(format: "%.2f×", pass / baseline) : "-"
        let perRun = megabytes / Double(runs)
        let size = perRun < 1 ? String(format: "%.1f KB", perRun * 1000) : String(format: "%.1f MB", perRun)
        let scenario = "\(format(Double(runs))) runs × \(size): \(label)"
        print("| \(scenario) | \(String(format: "%.1f MB", megabytes)) | \(String(format: "%.2f s", pass)) | \(format(Double(runs) / pass)) | \(String(format: "%.1f", megabytes / pass)) | \(gzipped) | \(baselineText) | \(ratio) |")
    }

    /// Gzips every log file under `root` in memory, at the store's level (6): compression alone.
    func gzipInMemory(_ root: String) throws -> Double {
        var files: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: root + "/workspaces")
        while let path = enumerator?.nextObject() as? String {
            if path.hasSuffix(".ndjson") { files.append(root + "/workspaces/" + path) }
        }
        let contents = try files.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0))) }
        let start = ContinuousClock.now
        var output = [UInt8](repeating: 0, count: 1 << 20)
        for var input in contents {
            var stream = z_stream()
            guard deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw ValidationError("deflateInit2 failed")
            }
            input.withUnsafeMutableBufferPointer { source in
                stream.next_in = source.baseAddress
                stream.avail_in = uInt(source.count)
                var status = Z_OK
                repeat {
                    output.withUnsafeMutableBufferPointer { target in
                        stream.next_out = target.baseAddress
                        stream.avail_out = uInt(target.count)
                        status = deflate(&stream, Z_FINISH)
                    }
                } while status == Z_OK
            }
            deflateEnd(&stream)
        }
        return (ContinuousClock.now - start).seconds
    }
}
