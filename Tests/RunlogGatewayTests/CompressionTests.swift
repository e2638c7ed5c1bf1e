import Foundation
import NIOCore
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Testing

/// NDJSON downloads with `Accept-Encoding: gzip`: one gzip stream that real clients read whole,
/// with archived segments sent as stored.
@Suite(.timeLimit(.minutes(2))) struct CompressionTests {
    /// Runs a program to completion; returns its standard output.
    static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: Data) {
        try await offPool { try runBlocking(executable, arguments) }
    }

    private static func runBlocking(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, data)
    }

    static func bytes(of path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test func aGzipDownloadSplicesArchivedSegmentsAndReadsWholeInCurlAndPython() async throws {
        try await withGateway(segmentBytes: 64 * 1024) { _, base, runs in
            let key = try RunKey(workspace: "ws_1", run: "run_1")
            _ = try await runs.createRun(workspace: "ws_1", runID: "run_1")
            let padding = String(repeating: "y", count: 150)
            for batch in 0..<20 {
                let lines = (0..<200).map { #"{"type":"console.line","payload":{"n":\#(batch * 200 + $0),"text":"\#(padding) \#($0 * 7919 % 1000)"}}"# }
                _ = try await runs.append(try EventBatch(ndjson: Array(lines.joined(separator: "\n").utf8)), to: key)
            }
            try await runs.store.flush()
            // Archive the closed segments but the last one, and that one in an older layout
            // (plain gzip, no sync flush), which must be recompressed instead.
            let directory = runs.store.configuration.logDirectory(for: key)
            let archived = try await runs.store.archiveClosedSegments(of: key)
            #expect(archived.count >= 4, "\(archived.count) segments archived")
            let older = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".gz") }.sorted().last)
            let plain = try await Self.run("/bin/gzip", ["-dc", directory + "/" + older]).output
            let recompressed = try await Self.run("/bin/sh", ["-c", "gzip -dc '\(directory)/\(older)' | gzip -n -c"])
            #expect(!plain.isEmpty)
            try recompressed.output.write(to: URL(fileURLWithPath: directory + "/" + older))
            #expect(FileManager.default.fileExists(atPath: directory + "/events.ndjson"))

            let url = base + "/v1/workspaces/ws_1/runs/run_1/events"
            let scratch = NSTemporaryDirectory() + "runlog-gzip-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            let expected = try await Self.run("/usr/bin/curl", ["-sS", "-H", "Accept: application/x-ndjson", url]).output
            #expect(expected.split(separator: UInt8(ascii: "\n")).count == 4000)

            // curl --compressed reads it whole (curl stops after a first gzip member: one member).
            let viaCurl = try await Self.run("/usr/bin/curl", ["-sS", "--compressed", "-D", scratch + ".headers", "-H", "Accept: application/x-ndjson", url])
            #expect(viaCurl.status == 0)
            #expect(viaCurl.output == expected)
            let headers = try String(contentsOfFile: scratch + ".headers", encoding: .utf8).lowercased()
            #expect(headers.contains("content-encoding: gzip"))
            defer { try? FileManager.default.removeItem(atPath: scratch + ".headers") }

            // The raw body: Python's gzip module reads it whole, and it holds each spliceable
            // archived segment's deflate data byte for byte.
            let raw = try await Self.run("/usr/bin/curl", ["-sS", "-H", "Accept-Encoding: gzip", "-o", scratch, url])
            #expect(raw.status == 0)
            let viaPython = try await Self.run("/usr/bin/python3", ["-c", "import gzip,sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())", scratch])
            #expect(viaPython.status == 0)
            #expect(viaPython.output == expected)
            let body = try Self.bytes(of: scratch)
            var spliced = 0
            for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.hasSuffix(".gz") && name != older {
                let stored = try Self.bytes(of: directory + "/" + name)
                let deflate = stored[10..<(stored.count - 10)]
                if body.firstRange(of: deflate) != nil { spliced += 1 }
            }
            #expect(spliced == archived.count - 1, "\(spliced) of \(archived.count - 1) archived segments went out as stored")

            // SSE and filtered downloads are never compressed.
            let sse = try await Self.run("/usr/bin/curl", ["-sS", "-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip", "-H", "Accept: text/event-stream", url + "?after=3999&limit=1"])
            #expect(!String(decoding: sse.output, as: UTF8.self).lowercased().contains("content-encoding"))
            let filtered = try await Self.run("/usr/bin/curl", ["-sS", "-H", "Accept-Encoding: gzip", "-H", "Accept: application/x-ndjson", url + "?types=console.line&limit=2"])
            #expect(filtered.output.split(separator: UInt8(ascii: "\n")).count == 2)
            // gzip;q=0 means no.
            let refused = try await Self.run("/usr/bin/curl", ["-sS", "-H", "Accept-Encoding: gzip;q=0", "-H", "Accept: application/x-ndjson", url])
            #expect(refused.output == expected)
        }
    }
}
