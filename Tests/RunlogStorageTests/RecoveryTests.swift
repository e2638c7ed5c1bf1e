import Foundation
import InMemoryLogging
import Logging
import RunlogTestSupport
import Testing

@testable import RunlogStorage

@Suite(.timeLimit(.minutes(1))) struct RecoveryTests {
    let logsPath = "/workspaces/ws_1/runs/run_1/logs"

    /// Writes 10 events with a first store, then lets `damage` change the files.
    func prepare(_ root: String, events: Int = 10, segmentBytes: Int64 = 64 << 20, damage: (String) throws -> Void) async throws {
        let store = EventStore(configuration: configuration(root) { $0.segmentBytes = segmentBytes }, logger: quietLogger)
        _ = try await store.append(try numbered(events, padding: 40), to: key())
        await store.shutdown()
        try damage(root + logsPath)
    }

    func append(_ bytes: [UInt8], to path: String) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
    }

    @Test func aTornLastLineIsTruncatedAndReported() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let torn = #"{"sequence":11,"type":"test.event","event_id":"evt_01M81B5HBV"#
        try await prepare(directory.path) { logs in
            try append(Array(torn.utf8), to: logs + "/events.ndjson")
        }
        let logs = CapturedLog()
        let store = EventStore(configuration: configuration(directory.path), logger: logs.logger(level: .debug))
        #expect(try await store.lastSequence(of: key()) == 10)
        let warning = try #require(logs.entries.first { "\($0.message)".contains("truncated a damaged tail") })
        #expect(warning.level == .warning)
        #expect(warning.metadata["bytes_removed"] == "\(torn.utf8.count)")
        #expect(try await store.append(try numbered(1), to: key()).firstSequence == 11)
        #expect(try sequences(try await readLines(store, key())) == Array(1...11))
        await store.shutdown()
    }

    @Test func garbageAfterTheLastLineIsRemoved() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // What a power loss can leave: zeros, and a complete-looking line that is not an event.
        try await prepare(directory.path) { logs in
            try append([UInt8](repeating: 0, count: 300) + Array("\nnot json\n".utf8) + [0, 0], to: logs + "/events.ndjson")
        }
        let store = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        #expect(try await store.lastSequence(of: key()) == 10)
        #expect(try sequences(try await readLines(store, key())) == Array(1...10))
        #expect(try await store.append(try numbered(1), to: key()).firstSequence == 11)
        await store.shutdown()
    }

    @Test func aCompletelyTornActiveSegmentBecomesEmpty() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try await prepare(directory.path, events: 9, segmentBytes: 600) { logs in
            // Rotation closed every segment (three lines fill one); the active one then got half a line.
            #expect(fileBytes(logs + "/events.ndjson").isEmpty)
            try Data(#"{"sequence":10,"ty"#.utf8).write(to: URL(fileURLWithPath: logs + "/events.ndjson"))
        }
        let store = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        #expect(try await store.lastSequence(of: key()) == 9)
        #expect(try await store.append(try numbered(1), to: key()).firstSequence == 10)
        #expect(try sequences(try await readLines(store, key())) == Array(1...10))
        await store.shutdown()
    }

    @Test func aCrashBetweenRenameAndCreateLosesNothing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try await prepare(directory.path, segmentBytes: 600) { logs in
            // As if the process died right after renaming the full segment.
            let active = logs + "/events.ndjson"
            let lines = String(decoding: fileBytes(active), as: UTF8.self).split(separator: "\n")
            if lines.isEmpty {
                try FileManager.default.removeItem(atPath: active)
            } else {
                let first = try sequences([String(lines.first!)])[0]
                let last = try sequences([String(lines.last!)])[0]
                let closed = ClosedSegment(firstSequence: first, lastSequence: last, isCompressed: false)
                try FileManager.default.moveItem(atPath: active, toPath: logs + "/" + closed.plainFileName)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: directory.path + logsPath + "/events.ndjson"))
        let store = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        #expect(try await store.lastSequence(of: key()) == 10)
        #expect(try await store.append(try numbered(2), to: key()).firstSequence == 11)
        #expect(try sequences(try await readLines(store, key())) == Array(1...12))
        await store.shutdown()
    }

    @Test func leftoversOfAnInterruptedArchiveAreCleanedUp() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var segment: ClosedSegment?
        try await prepare(directory.path, segmentBytes: 600) { logs in
            segment = directoryNames(logs).compactMap { ClosedSegment(fileName: $0) }.sorted().first
            let plain = logs + "/" + segment!.plainFileName
            // Died after the rename, before removing the plain file: both exist.
            let original = fileBytes(plain)
            #expect(try SegmentArchiver.archive(segment!, in: logs) != nil)
            try Data(original).write(to: URL(fileURLWithPath: plain))
            // And died while writing another temporary file (nobody holds its lock now).
            try Data("partial".utf8).write(to: URL(fileURLWithPath: logs + "/." + segment!.compressedFileName + ".123.456.tmp"))
        }
        let logs = directory.path + logsPath
        let store = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        #expect(try await store.lastSequence(of: key()) == 10)
        let names = directoryNames(logs)
        #expect(!names.contains { $0.hasSuffix(".tmp") })
        #expect(!names.contains(segment!.plainFileName))
        #expect(names.contains(segment!.compressedFileName))
        #expect(try sequences(try await readLines(store, key())) == Array(1...10))
        await store.shutdown()
    }

    @Test func aTemporaryFileStillBeingWrittenIsLeftAlone() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try await prepare(directory.path) { _ in }
        let temporary = directory.path + logsPath + "/.events-1-2.ndjson.gz.1.2.tmp"
        let holder = try PosixFile(path: temporary, flags: O_WRONLY | O_CREAT)
        #expect(try holder.tryLockExclusively())
        let store = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        #expect(try await store.lastSequence(of: key()) == 10)
        #expect(FileManager.default.fileExists(atPath: temporary))
        await store.shutdown()
    }

    /// A process spawned while an archive is written holds a copy of the temporary file's
    /// descriptor until it execs; the file's lock must not outlive its writer with it.
    @Test func aTemporaryFileLockEndsWithItsWriterThoughACopyOfItsDescriptorIsOpen() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let temporary = directory.path + "/.events-1-2.ndjson.gz.1.2.tmp"
        var writer: PosixFile? = try PosixFile(path: temporary, flags: O_WRONLY | O_CREAT)
        #expect(try writer!.tryLockExclusively())
        let copy = dup(writer!.descriptor)
        #expect(copy >= 0)
        defer { close(copy) }
        writer = nil
        let recovery = try PosixFile(path: temporary, flags: O_RDONLY)
        #expect(try recovery.tryLockExclusively())
    }
}

/// Its appends are sequential, so they wait behind every other suite of a full parallel run:
/// 0.4 s alone took 39–55 s there. The limit guards against a hang, not for speed.
@Suite(.timeLimit(.minutes(3))) struct ManyRunsTests {
    @Test(.slow) func openFilesStayWithinTheBudgetAndRunsReopenTransparently() async throws {
        try await withStore(configure: {
            $0.maxOpenFiles = 50
            $0.idleTimeout = .seconds(30)
            // The file budget is the point, not durability or scale: 2,000 runs with fsync took
            // most of the time limit on a 2-core machine while other suites ran, and once all of it.
            $0.durability = .flush
        }, { store, _ in
            let runs = (0..<500).map { key("run_\($0)") }
            for run in runs {
                _ = try await store.append(try numbered(2), to: run)
                #expect(store.openFileCount <= 51)
            }
            #expect(store.openRunCount == 500)
            // Idle long enough: every run gives back its file and memory.
            #expect(store.releaseIdleResources(now: .now + .seconds(31)) == 500)
            #expect(store.openFileCount == 0)
            #expect(store.openRunCount == 0)
            // ...and picks up where it was on next use.
            for run in runs.prefix(20) {
                #expect(try await store.append(try numbered(1), to: run).firstSequence == 3)
            }
            #expect(try sequences(try await readLines(store, runs[7])) == [1, 2, 3])
        })
    }

    @Test func aRunInUseIsNotRetired() async throws {
        try await withStore(configure: { $0.idleTimeout = .seconds(30) }, { store, _ in
            _ = try await store.append(try numbered(1), to: key())
            let watcher = Task { try await store.waitForEvents(of: key(), after: 1) }
            // A reader waiting for live events keeps the run.
            try await waitUntil("a watcher") { store.watcherCount(of: key()) > 0 }
            var retired = 0
            for _ in 0..<3 { retired += store.releaseIdleResources(now: .now + .seconds(31)) }
            #expect(retired == 0)
            _ = try await store.append(try numbered(1), to: key())
            #expect(try await watcher.value == 2)
        })
    }
}
