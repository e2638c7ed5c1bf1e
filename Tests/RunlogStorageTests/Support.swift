import Foundation
import Logging
import NIOCore
import RunlogTestSupport
import Synchronization
import Testing

@testable import RunlogStorage

func configuration(_ root: String, _ adjust: (inout EventStoreConfiguration) -> Void = { _ in }) -> EventStoreConfiguration {
    var configuration = EventStoreConfiguration(root: root)
    configuration.ioThreads = 2
    adjust(&configuration)
    return configuration
}

/// Runs `body` with a store on a fresh root, then shuts it down and removes the root.
func withStore<T>(
    logs: CapturedLog = CapturedLog(),
    configure adjust: (inout EventStoreConfiguration) -> Void = { _ in },
    _ body: (EventStore, String) async throws -> T
) async throws -> T {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let store = EventStore(configuration: configuration(directory.path, adjust), logger: logs.logger(level: .debug))
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

