import Foundation
import RunlogTestSupport
import Testing

/// `runlog serve` as a process, with `curl -N` as the SSE client.
@Suite(.timeLimit(.minutes(2))) struct ServeTests {
    /// Runs curl to completion; returns its exit status and output.
    func curl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await offPool { try Self.curlBlocking(arguments) }
    }

    private static func curlBlocking(_ arguments: [String]) throws -> (status: Int32, output: String) {
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

    /// Starts `runlog serve` on `directory` and reads its output until it listens; returns the
    /// process, its output pipe (standard error too if `errorsToo`, else into `errors` if given),
    /// what it printed so far, and the URL of workspace ws_1's runs.
    func serve(_ directory: TemporaryDirectory, errorsToo: Bool, errors: Pipe? = nil) async throws -> (Process, Pipe, String, String) {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: CommandLineTests.runlog)
        server.arguments = ["serve", "--port", "0", "--storage", directory.path]
        let logs = Pipe()
        server.standardOutput = logs
        if errorsToo { server.standardError = logs } else if let errors { server.standardError = errors }
        try server.run()
        let started = await read(logs) { $0.contains("listening on") }
        let port = try #require(started.firstMatch(of: /listening on 127\.0\.0\.1:(\d+)/)?.1)
        return (server, logs, started, "http://127.0.0.1:\(port)/v1/workspaces/ws_1/runs")
    }

    /// Reads `pipe` on a background thread until `done` says the text so far is enough (or it ends).
    func read(_ pipe: Pipe, until done: @escaping @Sendable (String) -> Bool) async -> String {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
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
        let (server, _, started, base) = try await serve(directory, errorsToo: true)
        // No key: open, on loopback only, and it says so.
        #expect(started.contains("access control is off"), "\(started)")

        #expect(try await curl(["-XPOST", base, "-d", #"{"run_id":"run_1"}"#]).output.contains(#""status":"queued""#))
        let stream = Process()
        stream.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        stream.arguments = ["-sN", "-H", "Accept: text/event-stream", base + "/run_1/events"]
        let streamOutput = Pipe()
        stream.standardOutput = streamOutput
        try stream.run()
        for index in 1...3 {
            let appended = try await curl(["-XPOST", base + "/run_1/events", "-H", "Content-Type: application/x-ndjson", "--data-binary", #"{"type":"console.line","payload":{"n":\#(index)}}"#])
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
        // The catalog was closed: checkpointed, its write-ahead log and shared memory removed.
        for leftover in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/" + leftover), "\(leftover) left behind")
        }
        #expect(FileManager.default.fileExists(atPath: directory.path + "/catalog.sqlite"))
    }

    @Test func keepsServingWhenTheReaderOfItsLogsGoesAway() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let errors = Pipe()
        let (server, logs, _, base) = try await serve(directory, errorsToo: false, errors: errors)
        // A log shipper that dies, `runlog serve | head`: each request's log line meets a closed pipe.
        try logs.fileHandleForReading.close()
        for index in 1...20 {
            let created = try await curl(["-XPOST", base, "-d", #"{"run_id":"run_\#(index)"}"#])
            #expect(created.output.contains(#""status":"queued""#), "\(created)")
        }
        #expect(server.isRunning)
        kill(server.processIdentifier, SIGTERM)
        let said = await read(errors) { _ in false }
        try await offPool { server.waitUntilExit() }
        #expect(server.terminationStatus == 0)
        // Said once, on stderr.
        #expect(said.components(separatedBy: "stdout refused the operational log").count == 2, "\(said)")
    }

    @Test func operationalLogsAreJSONLinesWithRequestAndTraceIDs() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // Standard output alone: every line on it must be a JSON object.
        let (server, logs, started, base) = try await serve(directory, errorsToo: false)
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        _ = try await curl(["-XPOST", base, "-H", "traceparent: 00-\(trace)-00f067aa0ba902b7-01", "-H", "X-Request-Id: req-42", "-d", #"{"run_id":"run_1"}"#])
        _ = try await curl([base + "/run_missing?access_token=secret-token-text"])
        // No route takes DELETE: the ids come from the path itself.
        _ = try await curl(["-XDELETE", base + "/run_1"])
        kill(server.processIdentifier, SIGTERM)
        let rest = await read(logs) { _ in false }
        server.waitUntilExit()

        var records: [[String: Any]] = []
        for line in (started + rest).split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            records.append(try #require(object as? [String: Any], "not a JSON object: \(line)"))
        }
        for record in records {
            for field in ["timestamp", "level", "service", "version", "event_type", "message"] {
                #expect(record[field] is String, "\(field) missing in \(record)")
            }
        }
        let requests = records.filter { $0["event_type"] as? String == "http.request" }
        let created = try #require(requests.first { $0["path"] as? String == "/v1/workspaces/ws_1/runs" })
        #expect(created["trace_id"] as? String == trace)
        #expect(created["request_id"] as? String == "req-42")
        #expect(created["workspace_id"] as? String == "ws_1" && created["status"] as? String == "201" && created["level"] as? String == "info")
        let missing = try #require(requests.first { ($0["path"] as? String)?.hasSuffix("/run_missing") == true })
        #expect(missing["run_id"] as? String == "run_missing" && missing["status"] as? String == "404")
        #expect((missing["request_id"] as? String)?.count == 16)
        let unrouted = try #require(requests.first { $0["method"] as? String == "DELETE" })
        #expect(unrouted["workspace_id"] as? String == "ws_1" && unrouted["run_id"] as? String == "run_1" && unrouted["status"] as? String == "405", "\(unrouted)")
        #expect(!(started + rest).contains("secret-token-text"))
    }

    @Test func theServerRefusesEventsOverItsMaxEventSize() async throws {
        let server = try await ServerProcess(arguments: ["--max-event-size", "1KiB"])
        defer { server.stop() }
        let runs = "/v1/workspaces/ws_1/runs"
        #expect(try RawConnection.request(port: server.port, "POST", runs, body: #"{"run_id":"run_1"}"#).status == 201)
        let big = #"{"type":"console.line","payload":{"line":"\#(String(repeating: "x", count: 5_000))"}}"#
        for contentType in ["application/x-ndjson", "application/json"] {
            let refused = try RawConnection.request(port: server.port, "POST", runs + "/run_1/events", body: big, contentType: contentType)
            #expect(refused.status == 400, "\(contentType): \(refused)")
            #expect(refused.body.contains("more than the limit of 1024"), "\(refused.body)")
        }
        let small = #"{"type":"console.line","payload":{"line":"\#(String(repeating: "x", count: 900))"}}"#
        let accepted = try RawConnection.request(port: server.port, "POST", runs + "/run_1/events", body: small, contentType: "application/x-ndjson")
        #expect(accepted.status == 200 && accepted.body.contains(#""last_sequence":1"#), "\(accepted)")
    }
}
