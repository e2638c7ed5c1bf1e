import Foundation
import NIOCore
import RunlogTestSupport
import Testing

@testable import RunlogStorage

/// Rotation, archiving and reading across segments.
@Suite(.timeLimit(.minutes(1))) struct SegmentTests {
    func logs(_ root: String, _ run: String = "run_1") -> String { root + "/workspaces/ws_1/runs/\(run)/logs" }

    @Test(arguments: [Durability.none, .fsync])
    func rotatesBySizeWithNamesThatTellTheRange(durability: Durability) async throws {
        try await withStore(configure: {
            $0.durability = durability
            $0.segmentBytes = 4096
        }, { store, root in
            for start in stride(from: 1, to: 300, by: 20) {
                _ = try await store.append(try numbered(20, from: start, padding: 100), to: key())
            }
            try await store.flush()
            let names = directoryNames(logs(root))
            let closed = names.compactMap { ClosedSegment(fileName: $0) }.sorted()
            #expect(closed.count >= 3)
            #expect(names.contains("events.ndjson"))
            // Contiguous ranges; each name's range matches the lines inside.
            var expectedFirst: Int64 = 1
            for segment in closed {
                #expect(segment.firstSequence == expectedFirst)
                let lines = String(decoding: fileBytes(logs(root) + "/" + segment.plainFileName), as: UTF8.self)
                    .split(separator: "\n").map(String.init)
                #expect(try sequences(lines) == Array(segment.firstSequence...segment.lastSequence))
                expectedFirst = segment.lastSequence + 1
            }
            #expect(try sequences(try await readLines(store, key())) == Array(1...300))
        })
    }

    @Test func archivingKeepsEveryEventReadable() async throws {
        try await withStore(configure: { $0.segmentBytes = 4096 }, { store, root in
            _ = try await store.append(try numbered(200, padding: 100), to: key())
            _ = try await store.append(try numbered(10, padding: 100), to: key())
            let before = try await readLines(store, key())
            let archived = try await store.archiveClosedSegments(of: key())
            #expect(!archived.isEmpty)
            for result in archived { #expect(result.compressedBytes < result.plainBytes) }
            let names = directoryNames(logs(root))
            #expect(names.filter { $0.hasSuffix(".ndjson.gz") }.count == archived.count)
            #expect(!names.contains { $0.hasSuffix(".tmp") })
            #expect(try await readLines(store, key()) == before)
            #expect(try await store.archiveClosedSegments(of: key()).isEmpty)
            // Reading from the middle of a gzipped segment skips what comes before.
            #expect(try sequences(try await readLines(store, key(), after: 150)) == Array(151...210))
            // Appends go on after archiving.
            #expect(try await store.append(try numbered(1), to: key()).firstSequence == 211)
        })
    }

    @Test func aReaderMidStreamSeesRotationAndArchivingTransparently() async throws {
        try await withStore(configure: { $0.segmentBytes = 2048 }, { store, root in
            _ = try await store.append(try numbered(30, padding: 60), to: key())
            let first = try await store.snapshot(of: key())
            // Tiny chunks: lines split across reads, and the reader stops mid-segment.
            let cursor = LogCursor(snapshot: first, after: 0, chunkSize: 37)
            var seen: [Int64] = []
            func take(_ count: Int) throws {
                while seen.count < count, case .chunk(let chunk) = try cursor.next() {
                    chunk.forEachLine { sequence, _ in seen.append(sequence) }
                }
            }
            try take(5)
            // Meanwhile: more appends rotate the active segment, and archiving replaces every closed one.
            _ = try await store.append(try numbered(60, from: 31, padding: 60), to: key())
            _ = try await store.archiveClosedSegments(of: key())
            #expect(directoryNames(logs(root)).contains { $0.hasSuffix(".gz") })
            while true {
                switch try cursor.next() {
                case .chunk(let chunk):
                    chunk.forEachLine { sequence, _ in seen.append(sequence) }
                    continue
                case .stale:
                    cursor.reset(to: try await store.snapshot(of: key()))
                    continue
                case .end:
                    break
                }
                break
            }
            // The rotation made the first snapshot stale; continuing from a new one, the reader
            // saw every event, in order, exactly once.
            #expect(first.lastSequence == 30)
            #expect(seen == Array(1...90))
            // And the public reader, started now, sees all 90.
            #expect(try sequences(try await readLines(store, key())) == Array(1...90))
        })
    }

    @Test func linesSplitAcrossChunksWithMultiByteCharacters() async throws {
        try await withStore(configure: { $0.segmentBytes = 1500 }, { store, _ in
            let texts = ["😀😀😀", "é", "中文字", "ok", "🇫🇷 ✓", String(repeating: "ß", count: 50)]
            let lines = (0..<40).map { #"{"type":"console.line","payload":{"text":"\#(texts[$0 % texts.count])","n":\#($0)}}"# }
            _ = try await store.append(try batch(lines), to: key())
            _ = try await store.archiveClosedSegments(of: key())
            let expected = try await readLines(store, key())
            let snapshot = try await store.snapshot(of: key())
            for chunkSize in [1, 2, 3, 5, 7, 64, 333] {
                let cursor = LogCursor(snapshot: snapshot, after: 0, chunkSize: chunkSize)
                var got: [String] = []
                while case .chunk(let chunk) = try cursor.next() {
                    chunk.forEachLine { _, line in got.append(String(buffer: line)) }
                }
                #expect(got == expected, "chunk size \(chunkSize)")
            }
            for (index, line) in expected.enumerated() {
                let payload = try #require(try decode(line)["payload"] as? [String: Any])
                #expect(payload["text"] as? String == texts[index % texts.count])
            }
        })
    }

    @Test func readsBetweenBounds() async throws {
        try await withStore(configure: { $0.segmentBytes = 2048 }, { store, _ in
            _ = try await store.append(try numbered(100, padding: 50), to: key())
            var got: [Int64] = []
            for try await chunk in store.events(of: key(), after: 17, through: 63) {
                chunk.forEachLine { sequence, _ in got.append(sequence) }
                #expect(chunk.firstSequence <= chunk.lastSequence)
            }
            #expect(got == Array(18...63))
        })
    }

    @Test func theLastEventsComeFromTheEndOnly() async throws {
        try await withStore(configure: { $0.segmentBytes = 2048 }, { store, root in
            _ = try await store.append(try numbered(120, padding: 50), to: key())
            _ = try await store.archiveClosedSegments(of: key())
            // Ruin the oldest segments: reading the end must not need them.
            let closed = directoryNames(logs(root)).compactMap { ClosedSegment(fileName: $0) }.sorted()
            #expect(closed.count >= 3)
            for segment in closed.prefix(2) {
                try Data(repeating: 0x42, count: 100).write(to: URL(fileURLWithPath: logs(root) + "/" + segment.fileName))
            }
            let store2 = EventStore(configuration: configuration(root), logger: quietLogger)
            #expect(try await store2.lastSequence(of: key()) == 120)
            for count in [1, 3, 40] {
                let tail = try await store2.lastEvents(of: key(), count: count)
                #expect(try sequences(tail.map { String(buffer: $0).trimmingCharacters(in: .newlines) }) == Array((121 - Int64(count))...120))
            }
            // Reading from a later segment does not touch the ruined ones either.
            let after = closed[2].firstSequence
            #expect(try sequences(try await readLines(store2, key(), after: after)) == Array((after + 1)...120))
            await store2.shutdown()
        })
    }

    @Test func theLastEventsOfAFullyArchivedLog() async throws {
        try await withStore(configure: { $0.segmentBytes = 1024 }, { store, root in
            _ = try await store.append(try numbered(30, padding: 50), to: key())
            _ = try await store.append(try batch([#"{"type":"run.completed"}"#]), to: key())
            try await store.flush()
            _ = try await store.archiveClosedSegments(of: key())
            let tail = try await store.lastEvents(of: key(), count: 5)
            #expect(tail.count == 5)
            #expect(try sequences(tail.map { String(buffer: $0).trimmingCharacters(in: .newlines) }) == Array(27...31))
            _ = root
        })
    }
}
