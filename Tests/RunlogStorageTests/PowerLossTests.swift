import Foundation
import Logging
import RunlogTestSupport
import Synchronization
import Testing

@testable import RunlogStorage

/// Power cuts at seeded random points of appends, rotations, archiving and recovery, on a
/// model of the page cache (``PageCacheModel``): what was not synced is dropped, kept in whole
/// pages or zero-filled, and renames not yet synced are undone. Under `fsync` nothing
/// acknowledged may be lost; under every durability each log must stay readable and contiguous,
/// and take new appends after recovery.
@Suite(.timeLimit(.minutes(5))) struct PowerLossTests {
    /// Workloads per durability, and crash points checked per workload.
    static let seeds: [UInt64] = [1, 2, 3, 4]
    static let crashPointsPerWorkload = 100

    @Test(.slow, arguments: Durability.allCases)
    func aPowerCutAnywhereLeavesReadableContiguousLogsAndUnderFsyncLosesNothingAcknowledged(durability: Durability) async throws {
        var checked = 0
        for seed in Self.seeds {
            checked += try await crashWorkload(durability: durability, seed: seed)
        }
        // 4 seeds × 100 points × 3 durabilities: 1,200 crash points per run.
        #expect(checked == Self.seeds.count * Self.crashPointsPerWorkload)
    }

    /// An acknowledged append: its last sequence, and the changes the model had seen when the
    /// acknowledgement came (every change it waited for is among them).
    struct Acknowledgement {
        var run: RunKey
        var lastSequence: Int64
        var changesSeen: Int
    }

    /// Runs one workload on the model, then checks crash images at random points of it;
    /// returns how many points it checked.
    private func crashWorkload(durability: Durability, seed: UInt64) async throws -> Int {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let root = directory.path + "/storage"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        let model = PageCacheModel(root: root)
        FileTaps.register(model, root: root)
        let runs = [key("run_a"), key("run_b")]
        var acknowledgements: [Acknowledgement] = []
        var random = SeededGenerator(seed: seed)
        do {
            let store = EventStore(configuration: powerLossConfiguration(root, durability), logger: quietLogger)
            // At least 60 appends, and on until there are changes enough for the crash points
            // (under `none` the flushes gather appends, so fewer changes come per append).
            var step = 0
            while step < 60 || (model.changeCount < 2 * Self.crashPointsPerWorkload && step < 600) {
                defer { step += 1 }
                let run = runs[Int.random(in: 0..<runs.count, using: &random)]
                let count = Int.random(in: 1...5, using: &random)
                let receipt = try await store.append(try numbered(count, from: step * 10, padding: Int.random(in: 0...300, using: &random)), to: run)
                acknowledgements.append(Acknowledgement(run: run, lastSequence: receipt.lastSequence!, changesSeen: model.changeCount))
                if step % 10 == 9 { _ = try await store.archiveClosedSegments(of: run) }
                // Under `none` only the flush timer writes, and how many appends one flush gathers
                // depends on the machine's load: a slow machine once left too few changes for the
                // crash points. A flush every third append makes the workload the same everywhere.
                if durability == .none && step % 3 == 2 { try await store.flush() }
            }
            let done = try await store.append(try batch([#"{"type":"run.completed","payload":{"status":"succeeded"}}"#]), to: runs[0])
            acknowledgements.append(Acknowledgement(run: runs[0], lastSequence: done.lastSequence!, changesSeen: model.changeCount))
            _ = try await store.archiveClosedSegments(of: runs[0])
            await store.shutdown()
            // Recovery of the clean files is part of the workload too (it may remove leftovers).
            let reopened = EventStore(configuration: powerLossConfiguration(root, durability), logger: quietLogger)
            for run in runs { _ = try await reopened.lastSequence(of: run) }
            await reopened.shutdown()
        } catch {
            FileTaps.unregister(root: root)
            throw error
        }
        FileTaps.unregister(root: root)

        let changes = model.changeCount
        var points = Set<Int>([0, changes])
        while points.count < min(Self.crashPointsPerWorkload, changes + 1) { points.insert(Int.random(in: 0...changes, using: &random)) }
        for point in points.sorted() {
            let acknowledged = Dictionary(
                acknowledgements.filter { $0.changesSeen <= point }.map { ($0.run, $0.lastSequence) }, uniquingKeysWith: max
            )
            try await checkCrashImage(model, at: point, seed: random.next(), durability: durability, runs: runs, acknowledged: acknowledged)
        }
        return points.count
    }

    private func checkCrashImage(
        _ model: PageCacheModel, at point: Int, seed: UInt64, durability: Durability, runs: [RunKey], acknowledged: [RunKey: Int64]
    ) async throws {
        let image = TemporaryDirectory()
        defer { image.remove() }
        try model.writeCrashImage(at: point, into: image.path, seed: seed)
        let context = "\(durability), crash point \(point), image seed \(seed)"
        let files = FileManager.default.enumerator(atPath: image.path)?.allObjects.map { "\($0)" }.sorted().joined(separator: " ") ?? ""
        let store = EventStore(configuration: powerLossConfiguration(image.path, .fsync), logger: quietLogger)
        do {
            for run in runs {
                let lines: [String]
                do {
                    lines = try await readLines(store, run)
                } catch StorageError.logNotFound {
                    lines = []
                }
                let found = try sequences(lines)
                #expect(found == Array(0..<Int64(found.count)).map { $0 + 1 }, "\(run) not contiguous at \(context): \(found)")
                if durability == .fsync {
                    #expect(
                        Int64(found.count) >= acknowledged[run] ?? 0,
                        "\(run) lost acknowledged events at \(context): \(found.count) < \(acknowledged[run] ?? 0) after \(model.changes(before: point)); image: \(files)"
                    )
                }
                // The recovered log takes appends where it ends (unless it is complete).
                let sealed = lines.last.map { $0.contains(#""type":"run.completed""#) } ?? false
                if !sealed {
                    let receipt = try await store.append(try numbered(1, from: 9999), to: run)
                    #expect(receipt.lastSequence == Int64(found.count) + 1, "\(run) after recovery at \(context)")
                }
            }
        } catch {
            Issue.record("\(context): \(error)")
        }
        await store.shutdown()
    }

    private func powerLossConfiguration(_ root: String, _ durability: Durability) -> EventStoreConfiguration {
        configuration(root) {
            $0.durability = durability
            $0.segmentBytes = 2048
            $0.flushEvents = 8
            $0.flushInterval = .milliseconds(1)
        }
    }
}
