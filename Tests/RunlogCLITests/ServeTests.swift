import Foundation
import RunlogTestSupport
import Testing

/// `runlog serve` as a process, with `curl -N` as the SSE client.
@Suite(.timeLimit(.minutes(2))) struct ServeTests {
    @Test func streamsToCurlAndStopsCleanlyOnSIGTERM() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is needed (.ci/run installs it)")
        let server = try await ServerProcess()
        defer { server.stop() }
        let base = server.base + "/v1/workspaces/ws_1/runs"
        // No key: open, on loopback only, and it says so.
        #expect(server.startup.contains("access control is off"), "\(server.startup)")

        #expect(try await ChildProcess.curl(["-XPOST", base, "-d", #"{"run_id":"run_1"}"#]).output.contains(#""status":"queued""#))
        let stream = Process()
        stream.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        stream.arguments = ["-sN", "-H", "Accept: text/event-stream", base + "/run_1/events"]
        let streamOutput = Pipe()
        stream.standardOutput = streamOutput
        try stream.run()
        for index in 1...3 {
            let appended = try await ChildProcess.curl(["-XPOST", base + "/run_1/events", "-H", "Content-Type: application/x-ndjson", "--data-binary", #"{"type":"console.line","payload":{"n":\#(index)}}"#])
            #expect(appended.output.contains(#""last_sequence":\#(index)"#))
        }
        let received = await ChildProcess.read(streamOutput) { $0.contains("id: 3\n") }
        #expect(received.hasPrefix(": runlog event stream: workspace ws_1, run run_1\nretry: "))
        #expect(received.contains("id: 1\nevent: console.line\ndata: {\"sequence\":1,"))

        // SIGTERM: the open stream ends cleanly (curl exits 0) and so does the server.
        kill(server.process.processIdentifier, SIGTERM)
        let rest = await ChildProcess.read(streamOutput) { _ in false }
        stream.waitUntilExit()
        server.process.waitUntilExit()
        #expect(stream.terminationStatus == 0)
        #expect(server.process.terminationStatus == 0)
        #expect(!rest.contains("id: 4"))
        // The catalog was closed: checkpointed, its write-ahead log and shared memory removed.
        for leftover in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
            #expect(!FileManager.default.fileExists(atPath: server.storage + "/" + leftover), "\(leftover) left behind")
        }
        #expect(FileManager.default.fileExists(atPath: server.storage + "/catalog.sqlite"))
    }

    @Test func keepsServingWhenTheReaderOfItsLogsGoesAway() async throws {
        let (logs, errors) = (Pipe(), Pipe())
        let server = try await ServerProcess(output: .pipes(stdout: logs, stderr: errors))
        defer { server.stop() }
        let base = server.base + "/v1/workspaces/ws_1/runs"
        // A log shipper that dies, `runlog serve | head`: each request's log line meets a closed pipe.
        try logs.fileHandleForReading.close()
        for index in 1...20 {
            let created = try await ChildProcess.curl(["-XPOST", base, "-d", #"{"run_id":"run_\#(index)"}"#])
            #expect(created.output.contains(#""status":"queued""#), "\(created)")
        }
        #expect(server.process.isRunning)
        kill(server.process.processIdentifier, SIGTERM)
        let said = await ChildProcess.read(errors) { _ in false }
        #expect(try await offPool { server.stop() })
        // Said once, on stderr.
        #expect(said.components(separatedBy: "stdout refused the operational log").count == 2, "\(said)")
    }

    @Test func operationalLogsAreJSONLinesWithRequestAndTraceIDs() async throws {
        // Standard output alone: every line on it must be a JSON object.
        let logs = Pipe()
        let server = try await ServerProcess(output: .pipes(stdout: logs, stderr: nil))
        defer { server.stop() }
        let (started, base) = (server.startup, server.base + "/v1/workspaces/ws_1/runs")
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        _ = try await ChildProcess.curl(["-XPOST", base, "-H", "traceparent: 00-\(trace)-00f067aa0ba902b7-01", "-H", "X-Request-Id: req-42", "-d", #"{"run_id":"run_1"}"#])
        _ = try await ChildProcess.curl([base + "/run_missing?access_token=secret-token-text"])
        // No route takes DELETE: the ids come from the path itself.
        _ = try await ChildProcess.curl(["-XDELETE", base + "/run_1"])
        kill(server.process.processIdentifier, SIGTERM)
        let rest = await ChildProcess.read(logs) { _ in false }

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
        // The last line says it stopped, after a clean shutdown.
        #expect(records.last?["message"] as? String == "runlog stopped", "\(records.last ?? [:])")
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

    @Test func anAbandonedRunIsCompletedAsTimedOutAndItsReadersSeeIt() async throws {
        let server = try await ServerProcess(arguments: ["--run-timeout", "1s", "--progress-interval", "100ms"])
        defer { server.stop() }
        let runs = "/v1/workspaces/ws_1/runs"
        #expect(try RawConnection.request(port: server.port, "POST", runs, body: #"{"run_id":"run_1"}"#).status == 201)
        let started = try RawConnection.request(port: server.port, "POST", runs + "/run_1/events", body: #"{"type":"run.started"}"#, contentType: "application/x-ndjson")
        #expect(started.status == 200)

        // A live reader of the run: its stream ends with the server's completion.
        let streamed = try await offPool {
            let connection = try RawConnection(port: server.port)
            defer { connection.close() }
            try connection.requestStream(runs + "/run_1/events")
            return String(decoding: connection.readToEnd().bytes, as: UTF8.self)
        }
        #expect(streamed.contains("id: 2\nevent: run.completed\ndata: {\"sequence\":2,"), "\(streamed)")
        #expect(streamed.contains(#""source":"runlog","payload":{"status":"cancelled","reason":"timed_out","inactive_seconds":1}"#), "\(streamed)")

        let summary = try RawConnection.request(port: server.port, "GET", runs + "/run_1/summary")
        #expect(summary.body.contains(#""reason":"timed_out""#) && summary.body.contains(#""status":"cancelled""#), "\(summary.body)")
        #expect(try server.metric("runlog_runs_timed_out_total") == 1)
    }
}
