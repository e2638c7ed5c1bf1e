import Foundation
import Testing

/// `runlog serve` as a process, with `curl -N` as the SSE client.
@Suite(.timeLimit(.minutes(2))) struct ServeTests {
    /// Runs curl to completion; returns its exit status and output.
    func curl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s"] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Reads `pipe` on a background thread until `done` says the text so far is enough (or it ends).
    func read(_ pipe: Pipe, until done: @escaping @Sendable (String) -> Bool) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var text = ""
                while !done(text) {
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    text += String(decoding: chunk, as: UTF8.self)
                }
                continuation.resume(returning: text)
            }
        }
    }

    @Test func streamsToCurlAndStopsCleanlyOnSIGTERM() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is needed (.ci/run installs it)")
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: CommandLineTests.runlog)
        server.arguments = ["serve", "--port", "0", "--storage", directory.path]
        let logs = Pipe()
        server.standardOutput = logs
        server.standardError = logs
        try server.run()
        let started = await read(logs) { $0.contains("listening on") }
        let port = try #require(started.firstMatch(of: /listening on 127\.0\.0\.1:(\d+)/)?.1)
        let base = "http://127.0.0.1:\(port)/v1/workspaces/ws_1/runs"
        // No key: open, on loopback only, and it says so.
        #expect(started.contains("access control is off"), "\(started)")

        #expect(try curl(["-XPOST", base, "-d", #"{"run_id":"run_1"}"#]).output.contains(#""status":"queued""#))
        let stream = Process()
        stream.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        stream.arguments = ["-sN", "-H", "Accept: text/event-stream", base + "/run_1/events"]
        let streamOutput = Pipe()
        stream.standardOutput = streamOutput
        try stream.run()
        for index in 1...3 {
            let appended = try curl(["-XPOST", base + "/run_1/events", "-H", "Content-Type: application/x-ndjson", "--data-binary", #"{"type":"console.line","payload":{"n":\#(index)}}"#])
            #expect(appended.output.contains(#""last_sequence":\#(index)"#))
        }
        let received = await read(streamOutput) { $0.contains("id: 3\n") }
        #expect(received.hasPrefix(": runlog event stream\nretry: "))
        #expect(received.contains("id: 1\nevent: console.line\ndata: {\"sequence\":1,"))

        // SIGTERM: the open stream ends cleanly (curl exits 0) and so does the server.
        kill(server.processIdentifier, SIGTERM)
        let rest = await read(streamOutput) { _ in false }
        stream.waitUntilExit()
        server.waitUntilExit()
        #expect(stream.terminationStatus == 0)
        #expect(server.terminationStatus == 0)
        #expect(!rest.contains("id: 4"))
    }
}
