import Foundation
import Logging
import RunlogStorage
import RunlogTestSupport
import Synchronization
import Testing

@testable import RunlogGateway

/// Operational log lines through ``LogLineWriter`` into a pipe that the test reads, or not.
@Suite(.timeLimit(.minutes(1))) struct LogLineWriterTests {
    static func line(_ index: Int) -> String { "line \(index) " + String(repeating: "x", count: 80) + "\n" }
    static func bytes(_ index: Int) -> [UInt8] { Array(line(index).utf8) }

    /// Reads the pipe until its write end closes.
    static func readToEnd(_ descriptor: Int32) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count > 0 { bytes += chunk[..<count] } else if count < 0, errno == EINTR { continue } else { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func aStalledReaderCostsDroppedLinesNeverAWaitingLogger() async throws {
        var descriptors: [Int32] = [0, 0]
        try #require(pipe(&descriptors) == 0)
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        defer { close(readEnd) }
        let writer = LogLineWriter(descriptor: writeEnd, capacity: 16 << 10) { dropped in Array("dropped \(dropped)\n".utf8) }
        // Nobody reads: the pipe fills (64 KiB), then the writer's buffer (16 KiB). Every call
        // returns all the same (the suite's time limit would catch one that waits).
        let stalled = 5_000
        for index in 0..<stalled { writer.write(Self.bytes(index)) }

        // The reader comes back: the writer drains, says what it dropped, and takes new lines.
        let reading = Task { try await offPool { Self.readToEnd(readEnd) } }
        try await offPool { writer.flush() }
        for index in stalled..<stalled + 10 { writer.write(Self.bytes(index)) }
        try await offPool {
            writer.close()
            close(writeEnd)
        }
        let lines = try await reading.value.split(separator: "\n").map(String.init)

        var written: [Int] = []
        var dropped = 0
        for line in lines {
            if let count = line.wholeMatch(of: /dropped (\d+)/)?.1 {
                dropped += Int(count)!
                continue
            }
            let index = try #require(line.firstMatch(of: #/^line (\d+) /#).map { Int($0.1)! }, "not a whole line: \(line)")
            #expect(line + "\n" == Self.line(index))
            written.append(index)
        }
        #expect(written == written.sorted() && Set(written).count == written.count, "lines out of order or repeated")
        #expect(dropped > 0, "the stalled pipe made no line drop")
        #expect(written.count + dropped == stalled + 10, "every line is written or counted as dropped")
        #expect(writer.droppedLines == dropped, "the metric's count is the notes' count")
        // The lines taken after the stall are all there, after the note.
        #expect(Array(written.suffix(10)) == Array(stalled..<stalled + 10))
        let note = try #require(lines.firstIndex { $0.hasPrefix("dropped ") })
        let firstAfter = try #require(lines.firstIndex(of: String(Self.line(stalled).dropLast())))
        #expect(note < firstAfter)
    }

    @Test func theDroppedNoteIsALogLineOfItsOwn() throws {
        let output = String(decoding: JSONLogHandler.droppedLinesNote(3, service: "runlog", version: "9.9"), as: UTF8.self)
        #expect(output.hasSuffix("}\n") && output.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(object["event_type"] as? String == "log.dropped" && object["dropped"] as? String == "3" && object["version"] as? String == "9.9")
    }

    @Test func droppedLinesReachTheMetricsAsACounter() async throws {
        let dropped = Atomic<Int>(0)
        let metrics = GatewayMetrics(droppedLogLines: { dropped.load(ordering: .relaxed) })
        let root = NSTemporaryDirectory() + "runlog-metrics-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer {
            do { try FileManager.default.removeItem(atPath: root) } catch { Issue.record("cleanup: \(error)") }
        }
        let store = EventStore(configuration: EventStoreConfiguration(root: root), logger: Logger(label: "test"), metricsFactory: metrics.factory)
        func scrape() -> String { String(decoding: metrics.text(openLogs: (store.openRunCount, store.openFileCount)), as: UTF8.self) }

        #expect(scrape().contains("runlog_log_lines_dropped_total 0"))
        dropped.store(7, ordering: .relaxed)
        #expect(scrape().contains("runlog_log_lines_dropped_total 7"))
        // Read at each scrape, counted once.
        #expect(scrape().contains("runlog_log_lines_dropped_total 7"))
        dropped.store(12, ordering: .relaxed)
        #expect(scrape().contains("runlog_log_lines_dropped_total 12"))
        await store.shutdown()
    }
}
