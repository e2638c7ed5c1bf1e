import Foundation
import Logging
import NIOCore
import RunlogTestSupport
import Synchronization
import Testing

@testable import RunlogStorage

/// Log messages kept in memory, to assert on what the engine reports.
final class CapturedLogs: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])

    var all: [Entry] { entries.withLock { $0 } }

    func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    var logger: Logger {
        var logger = Logger(label: "test") { _ in Handler(sink: self) }
        logger.logLevel = .debug
        return logger
    }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var flat: [String: String] = [:]
            for (key, value) in event.metadata ?? [:] { flat[key] = "\(value)" }
            sink.append(Entry(level: event.level, message: "\(event.message)", metadata: flat))
        }
    }
}

func configuration(_ root: String, _ adjust: (inout EventStoreConfiguration) -> Void = { _ in }) -> EventStoreConfiguration {
    var configuration = EventStoreConfiguration(root: root)
    configuration.ioThreads = 2
    adjust(&configuration)
    return configuration
}

/// Runs `body` with a store on a fresh root, then shuts it down and removes the root.
func withStore<T>(
    logs: CapturedLogs = CapturedLogs(),
    configure adjust: (inout EventStoreConfiguration) -> Void = { _ in },
    _ body: (EventStore, String) async throws -> T
) async throws -> T {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let store = EventStore(configuration: configuration(directory.path, adjust), logger: logs.logger)
    do {
        let result = try await body(store, directory.path)
        await store.shutdown()
        return result
    } catch {
        await store.shutdown()
        throw error
    }
}

func key(_ run: String = "run_1", workspace: String = "ws_1") -> RunKey {
    try! RunKey(workspace: workspace, run: run)
}

func batch(_ lines: [String]) throws -> EventBatch {
    try EventBatch(ndjson: Array(lines.joined(separator: "\n").utf8))
}

/// `count` events of type `test.event` with payload `{"n":<start+i>}`.
func numbered(_ count: Int, from start: Int = 1, type: String = "test.event", padding: Int = 0) throws -> EventBatch {
    let pad = String(repeating: "x", count: padding)
    return try batch((start..<(start + count)).map { #"{"type":"\#(type)","payload":{"n":\#($0),"pad":"\#(pad)"}}"# })
}

/// Every stored line of a run (without newlines), read through the public reader.
func readLines(_ store: EventStore, _ key: RunKey, after: Int64 = 0) async throws -> [String] {
    var lines: [String] = []
    for try await chunk in store.events(of: key, after: after) {
        chunk.forEachLine { _, line in lines.append(String(buffer: line)) }
    }
    return lines
}

/// Decoded stored lines.
func decode(_ line: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
    return try #require(object as? [String: Any])
}

func sequences(_ lines: [String]) throws -> [Int64] {
    try lines.map { try #require(decode($0)["sequence"] as? NSNumber).int64Value }
}

func fileBytes(_ path: String) -> [UInt8] {
    FileManager.default.contents(atPath: path).map { Array($0) } ?? []
}

func directoryNames(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

/// Expects `body` to throw a `StorageError` satisfying `matches`.
func expectStorageError(
    _ matches: (StorageError) -> Bool,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected a StorageError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as StorageError {
        #expect(matches(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a StorageError, got \(error)", sourceLocation: sourceLocation)
    }
}
