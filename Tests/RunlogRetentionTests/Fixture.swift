import Foundation
import Logging
import NIOCore
import RunlogCatalog
import RunlogRetention
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Synchronization
import Testing

/// A wall clock the test sets by hand.
final class ManualClock: Sendable {
    private let now: Mutex<Timestamp>

    init(_ start: Timestamp) {
        now = Mutex(start)
    }

    func set(_ time: Timestamp) { now.withLock { $0 = time } }
    func read() -> Timestamp { now.withLock { $0 } }
}

let day: Int64 = 86_400_000
/// The tests' "now": 2026-11-22T00:00:00Z.
let today = Timestamp(millisecondsSinceEpoch: 1_795_305_600_000)

func daysAgo(_ days: Double) -> Timestamp {
    Timestamp(millisecondsSinceEpoch: today.millisecondsSinceEpoch - Int64(days * Double(day)))
}

/// A storage root with a catalog, and runs written through the run service at chosen times.
final class Fixture: @unchecked Sendable {
    let root: String
    let clock = ManualClock(today)
    let segmentBytes: Int64
    private(set) var store: EventStore
    /// Where the catalog is, the same across ``reopen()``.
    let place: TestCatalogPlace
    private(set) var catalog: any RunCatalog
    private(set) var runs: RunService

    init(root: String? = nil, segmentBytes: Int64 = 8 * 1024, catalog backend: TestCatalogBackend = .sqlite) async throws {
        if let root {
            self.root = root
        } else {
            var template = Array((NSTemporaryDirectory() + "runlog-retention-XXXXXX").utf8CString)
            let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
            precondition(created != nil, "mkdtemp failed")
            self.root = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        }
        self.segmentBytes = segmentBytes
        place = try await TestCatalogPlace.make(backend, root: self.root)
        (store, catalog, runs) = try await Self.open(root: self.root, segmentBytes: segmentBytes, clock: clock, place: place)
    }

    static func storeConfiguration(root: String, segmentBytes: Int64) -> EventStoreConfiguration {
        var configuration = EventStoreConfiguration(root: root)
        configuration.durability = .flush
        configuration.segmentBytes = segmentBytes
        configuration.ioThreads = 2
        return configuration
    }

    private static func open(root: String, segmentBytes: Int64, clock: ManualClock, place: TestCatalogPlace) async throws -> (EventStore, any RunCatalog, RunService) {
        let store = EventStore(configuration: storeConfiguration(root: root, segmentBytes: segmentBytes), logger: quietLogger, wallClock: { clock.read() })
        let catalog = try await place.open()
        let runs = RunService(store: store, catalog: catalog, logger: quietLogger, wallClock: { clock.read() })
        return (store, catalog, runs)
    }

    var storeConfiguration: EventStoreConfiguration { Self.storeConfiguration(root: root, segmentBytes: segmentBytes) }

    func key(_ run: String, workspace: String = "ws_1") -> RunKey {
        try! RunKey(workspace: workspace, run: run)
    }

    func logDirectory(_ run: String, workspace: String = "ws_1") -> String {
        storeConfiguration.logDirectory(for: key(run, workspace: workspace))
    }

    /// Creates a run at `createdAt`, appends `events` events (about 200 bytes each) over the
    /// following minutes and, when `completedAt` is given, completes it then. Returns its lines.
    @discardableResult
    func makeRun(_ id: String, events: Int, createdAt: Timestamp, completedAt: Timestamp? = nil, workspace: String = "ws_1") async throws -> [String] {
        clock.set(createdAt)
        _ = try await runs.createRun(workspace: workspace, runID: id)
        let padding = String(repeating: "p", count: 120)
        var appended = 0
        while appended < events {
            let count = min(50, events - appended)
            let lines = (appended..<(appended + count)).map { #"{"type":"console.line","payload":{"n":\#($0),"text":"\#(padding)"}}"# }
            _ = try await runs.append(try EventBatch(ndjson: Array(lines.joined(separator: "\n").utf8)), to: key(id, workspace: workspace))
            appended += count
            clock.set(Timestamp(millisecondsSinceEpoch: clock.read().millisecondsSinceEpoch + 1000))
        }
        if let completedAt {
            clock.set(completedAt)
            let done = #"{"type":"run.completed","payload":{"status":"succeeded","exit_code":0}}"#
            _ = try await runs.append(try EventBatch(ndjson: Array(done.utf8)), to: key(id, workspace: workspace))
        }
        try await store.flush()
        return try await lines(of: id, workspace: workspace)
    }

    /// Every stored line of a run, read through the store.
    func lines(of id: String, workspace: String = "ws_1") async throws -> [String] {
        var lines: [String] = []
        for try await chunk in store.events(of: key(id, workspace: workspace)) {
            chunk.forEachLine { _, line in lines.append(String(buffer: line)) }
        }
        return lines
    }

    func row(_ id: String, workspace: String = "ws_1") async throws -> RunRecord? {
        try await catalog.run(workspace: workspace, id: id)
    }

    func pass() -> RetentionPass {
        RetentionPass(catalog: catalog, maintenance: LogMaintenance(configuration: storeConfiguration, logger: quietLogger), logger: quietLogger)
    }

    /// Closes everything and opens it again, as a new process would.
    func reopen() async throws {
        await store.shutdown()
        try await catalog.close()
        (store, catalog, runs) = try await Self.open(root: root, segmentBytes: segmentBytes, clock: clock, place: place)
    }

    func close() async throws {
        await store.shutdown()
        try await catalog.close()
    }

    func remove() {
        place.drop()
        removeTree(root)
    }
}

/// The names in a directory, sorted; none when it does not exist.
func names(in directory: String) -> [String] {
    guard FileManager.default.fileExists(atPath: directory) else { return [] }
    do {
        return try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    } catch {
        Issue.record("could not list \(directory): \(error)")
        return []
    }
}

func removeTree(_ path: String) {
    do {
        try FileManager.default.removeItem(atPath: path)
    } catch {
        Issue.record("could not remove \(path): \(error)")
    }
}

/// Runs `body` with a fresh fixture (its catalog on `backend`), then closes and removes it.
func withFixture(segmentBytes: Int64 = 8 * 1024, catalog backend: TestCatalogBackend = .sqlite, _ body: (Fixture) async throws -> Void) async throws {
    let fixture = try await Fixture(segmentBytes: segmentBytes, catalog: backend)
    defer { fixture.remove() }
    do {
        try await body(fixture)
        try await fixture.close()
    } catch {
        try await fixture.close()
        throw error
    }
}
