import Foundation
import Testing

/// `runlog serve` under load, watched from outside: slow readers, many readers, churn.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ServerUnderLoadTests {
    /// Runs curl to completion; returns its output.
    static func curl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "--max-time", "120"] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The SSE `id:` lines of a stream saved to a file, in order.
    static func eventIDs(inStreamAt path: String) throws -> [Int64] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var ids: [Int64] = []
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var index = 0
            let count = bytes.count
            while index < count {
                // At the start of a line: "id: <digits>\n"?
                if index + 4 < count, bytes[index] == UInt8(ascii: "i"), bytes[index + 1] == UInt8(ascii: "d"), bytes[index + 2] == UInt8(ascii: ":") {
                    var value: Int64 = 0
                    var cursor = index + 4
                    while cursor < count, bytes[cursor] >= 48, bytes[cursor] <= 57 {
                        value = value * 10 + Int64(bytes[cursor] - 48)
                        cursor += 1
                    }
                    ids.append(value)
                }
                guard let newline = UnsafeRawBufferPointer(rebasing: bytes[index...]).firstIndex(of: UInt8(ascii: "\n")) else { break }
                index += newline + 1
            }
        }
        return ids
    }

    @Test func aStalledReaderCostsNoMemoryAndLaterGetsEveryEventInOrder() async throws {
        let server = try await ServerProcess(arguments: ["--durability", "none", "--max-body-size", "4MiB"])
        defer { server.stop() }
        let runs = server.base + "/v1/workspaces/ws_1/runs"
        _ = try Self.curl(["-XPOST", runs, "-d", #"{"run_id":"run_1"}"#])

        // One batch: 1,000 events of about 1 KB.
        let padding = String(repeating: "x", count: 960)
        let batch = server.directory.path + "/batch.ndjson"
        try (1...1000).map { #"{"type":"console.line","payload":{"n":\#($0),"text":"\#(padding)"}}"# }
            .joined(separator: "\n").write(toFile: batch, atomically: true, encoding: .utf8)
        func appendBatch() throws {
            let receipt = try Self.curl(["-XPOST", runs + "/run_1/events", "-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + batch])
            #expect(receipt.contains(#""appended":1000"#), "\(receipt)")
        }

        // A real SSE client, saving what it gets; SIGSTOP makes it stop reading its socket.
        let streamed = server.directory.path + "/stream.txt"
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        reader.arguments = ["-sN", "--max-time", "120", "-H", "Accept: text/event-stream", "-o", streamed, runs + "/run_1/events"]
        try reader.run()
        defer { if reader.isRunning { reader.terminate() } }
        try appendBatch()
        let baseline = server.residentBytes
        kill(reader.processIdentifier, SIGSTOP)

        // 100 MB appended while it reads nothing.
        var peak = baseline
        for _ in 0..<100 {
            try appendBatch()
            peak = max(peak, server.residentBytes)
        }
        let growth = peak - baseline
        print("slow reader: server RSS \(baseline >> 20) MiB before, peak \(peak >> 20) MiB during 100 MB of appends (growth \(growth >> 20) MiB)")
        // Buffering for the stalled reader would grow it by the 100 MB it missed.
        #expect(growth < 40 << 20, "server memory grew by \(growth >> 20) MiB while a reader stalled")

        // The run completes; the reader resumes, catches up from the files and ends with it.
        let completed = try Self.curl(["-XPOST", runs + "/run_1/events", "-H", "Content-Type: application/x-ndjson", "--data-binary", #"{"type":"run.completed","payload":{"status":"succeeded"}}"#])
        #expect(completed.contains(#""last_sequence":101001"#), "\(completed)")
        kill(reader.processIdentifier, SIGCONT)
        reader.waitUntilExit()
        let ids = try Self.eventIDs(inStreamAt: streamed)
        #expect(ids.count == 101_001, "got \(ids.count) events")
        #expect(ids == Array(1...Int64(ids.count)), "events out of order or missing")
        let metrics = try Self.curl([server.base + "/metrics"])
        let fallbacks = metrics.firstMatch(of: /runlog_slow_reader_fallbacks_total (\d+)/).flatMap { Int($0.1) } ?? 0
        #expect(fallbacks >= 1, "the reader never fell back to the files")
    }
}
