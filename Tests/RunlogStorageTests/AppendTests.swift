import Foundation
import NIOCore
import RunlogTestSupport
import Testing

@testable import RunlogStorage

@Suite struct AppendTests {
    @Test func storesTheEnvelopeWithServerFieldsFirst() async throws {
        try await withStore(configure: { $0.durability = .flush }, { store, root in
            let receipt = try await store.append(
                try batch([
                    #"{"payload":{"line":"hello","n":[1,2.5e3,true,null]},"source":"engine","type":"console.line","event_id":"p-1"}"#,
                    #"{"type":"run.started"}"#,
                ]),
                to: key()
            )
            #expect(receipt.sequences == [1, 2])
            #expect(receipt.firstSequence == 1 && receipt.lastSequence == 2 && receipt.appended == 2 && receipt.duplicates == 0)
            let path = root + "/workspaces/ws_1/runs/run_1/logs/events.ndjson"
            let lines = String(decoding: fileBytes(path), as: UTF8.self).split(separator: "\n").map(String.init)
            #expect(lines.count == 2)
            let first = try #require(lines.first)
            #expect(first.hasPrefix(#"{"sequence":1,"type":"console.line","event_id":"p-1","created_at":""#))
            #expect(first.hasSuffix(#"","workspace_id":"ws_1","run_id":"run_1","source":"engine","payload":{"line":"hello","n":[1,2.5e3,true,null]}}"#))
            let second = try decode(lines[1])
            #expect(Array(second.keys).count == 8)
            #expect(second["source"] is NSNull)
            #expect(second["payload"] is NSNull)
            let id = try #require(second["event_id"] as? String)
            #expect(id.hasPrefix("evt_") && id.count == 30)
            let createdAt = try #require(second["created_at"] as? String)
            #expect(createdAt.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil)
            // The reader gets exactly the bytes on disk.
            #expect(try await readLines(store, key()) == lines)
        })
    }

    @Test func usesTheInjectedWallClock() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = EventStore(
            configuration: configuration(directory.path), logger: quietLogger,
            wallClock: { Timestamp(millisecondsSinceEpoch: 1_795_341_600_123) }
        )
        #expect(try await store.append(try numbered(1), to: key()).createdAt == Timestamp(millisecondsSinceEpoch: 1_795_341_600_123))
        let line = try #require(try await readLines(store, key()).first)
        #expect(try decode(line)["created_at"] as? String == "2026-11-22T10:00:00.123Z")
        await store.shutdown()
    }

    @Test func sequencesAreContiguousAcrossConcurrentAppenders() async throws {
        try await withStore(configure: { $0.durability = .fsync }, { store, _ in
            try await withThrowingTaskGroup(of: AppendReceipt.self) { group in
                for task in 0..<8 {
                    group.addTask { try await store.append(try numbered(25, from: task * 100), to: key()) }
                }
                var ranges: [ClosedRange<Int64>] = []
                for try await receipt in group {
                    ranges.append(try #require(receipt.firstSequence)...(try #require(receipt.lastSequence)))
                }
                // Each batch got a contiguous range of its own.
                #expect(ranges.sorted { $0.lowerBound < $1.lowerBound }.map(\.lowerBound) == stride(from: 1, to: 200, by: 25).map { Int64($0) })
            }
            #expect(try sequences(try await readLines(store, key())) == Array(1...200))
        })
    }

    @Test func aBadLineRefusesTheWholeBatchAndLeavesTheFileUntouched() async throws {
        try await withStore({ store, root in
            _ = try await store.append(try numbered(3), to: key())
            let path = root + "/workspaces/ws_1/runs/run_1/logs/events.ndjson"
            let before = fileBytes(path)
            await expectError(StorageError.self, matching: { if case .invalidEvent(let r) = $0 { r.line == 3 } else { false } }) {
                _ = try await store.append(
                    try EventBatch(ndjson: Array("{\"type\":\"a.b\"}\n{\"type\":\"a.b\"}\n{\"type\":\"A\"}\n".utf8)), to: key()
                )
            }
            #expect(fileBytes(path) == before)
            // The next append continues the sequence as if nothing happened.
            #expect(try await store.append(try numbered(1), to: key()).firstSequence == 4)
        })
    }

    @Test func producerEventIDsAreNotAppendedTwice() async throws {
        try await withStore({ store, _ in
            let first = try await store.append(
                try batch([#"{"type":"a.b","event_id":"one"}"#, #"{"type":"a.b","event_id":"two"}"#, #"{"type":"a.b","event_id":"one"}"#]),
                to: key()
            )
            #expect(first.appended == 2)
            #expect(first.duplicates == 1)
            #expect(first.sequences == [1, 2, 1])
            let second = try await store.append(
                try batch([#"{"type":"a.b","event_id":"two"}"#, #"{"type":"a.b","event_id":"three"}"#]), to: key()
            )
            #expect(second.sequences == [2, 3] && second.appended == 1 && second.duplicates == 1 && second.firstSequence == 3)
            let retry = try await store.append(try batch([#"{"type":"a.b","event_id":"three"}"#]), to: key())
            #expect(retry == AppendReceipt(firstSequence: nil, lastSequence: nil, appended: 0, duplicates: 1, sequences: [3]))
            #expect(try await readLines(store, key()).count == 3)
        })
    }

    @Test func duplicateDetectionSurvivesARestart() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let first = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        _ = try await first.append(try batch([#"{"type":"a.b","event_id":"keep-me"}"#, #"{"type":"a.b"}"#]), to: key())
        await first.shutdown()
        let second = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        let receipt = try await second.append(try batch([#"{"type":"a.b","event_id":"keep-me"}"#, #"{"type":"a.b","event_id":"new"}"#]), to: key())
        #expect(receipt.sequences == [1, 3])
        #expect(receipt.duplicates == 1)
        await second.shutdown()
    }

    @Test func expectedLastSequenceGuardsTheAppend() async throws {
        try await withStore({ store, _ in
            _ = try await store.append(try numbered(2), to: key(), expectedLastSequence: 0)
            await expectError(StorageError.self, matching: { $0 == .sequenceMismatch(expected: 1, actual: 2) }) {
                _ = try await store.append(try numbered(1), to: key(), expectedLastSequence: 1)
            }
            #expect(try await store.append(try numbered(1), to: key(), expectedLastSequence: 2).firstSequence == 3)
        })
    }

    @Test func theTerminalEventClosesTheLog() async throws {
        try await withStore({ store, _ in
            await expectError(StorageError.self, matching: { if case .invalidEvent(let r) = $0 { r.line == 2 } else { false } }) {
                _ = try await store.append(try batch([#"{"type":"run.completed"}"#, #"{"type":"console.line"}"#]), to: key())
            }
            _ = try await store.append(
                try batch([#"{"type":"run.started"}"#, #"{"type":"run.completed","event_id":"done","payload":{"status":"succeeded"}}"#]),
                to: key()
            )
            await expectError(StorageError.self, matching: { $0 == .logClosed(key(), lastSequence: 2) }) {
                _ = try await store.append(try numbered(1), to: key())
            }
            // A producer retrying the terminal event is told it is a duplicate, not refused.
            let retry = try await store.append(try batch([#"{"type":"run.completed","event_id":"done"}"#]), to: key())
            #expect(retry.duplicates == 1)
        })
        // The closed state survives a restart.
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let first = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        _ = try await first.append(try batch([#"{"type":"run.completed"}"#]), to: key())
        await first.shutdown()
        let second = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        await expectError(StorageError.self, matching: { $0 == .logClosed(key(), lastSequence: 1) }) {
            _ = try await second.append(try numbered(1), to: key())
        }
        await second.shutdown()
    }

    @Test func identifiersAreValidatedBeforeAnyFileIsTouched() throws {
        for bad in ["..", ".", "a/b", "", String(repeating: "x", count: 129), "a b", "é"] {
            #expect(throws: StorageError.self) { try RunKey(workspace: bad, run: "run_1") }
            #expect(throws: StorageError.self) { try RunKey(workspace: "ws_1", run: bad) }
        }
        #expect(throws: Never.self) { try RunKey(workspace: "ws.1-A_b", run: String(repeating: "x", count: 128)) }
    }

    @Test func readingARunWithoutALogFails() async throws {
        try await withStore({ (store: EventStore, _: String) async throws in
            await expectError(StorageError.self, matching: { $0 == .logNotFound(key("missing")) }) {
                _ = try await store.lastSequence(of: key("missing"))
            }
            let created = try await store.createLog(for: key("empty"))
            #expect(created)
            let last = try await store.lastSequence(of: key("empty"))
            #expect(last == 0)
            let lines = try await readLines(store, key("empty"))
            #expect(lines.isEmpty)
            let createdAgain = try await store.createLog(for: key("empty"))
            #expect(!createdAgain)
            let receipt = try await store.append(try numbered(1), to: key("empty"))
            #expect(receipt.firstSequence == 1)
        })
    }
}
