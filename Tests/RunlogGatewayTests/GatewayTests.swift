import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import RunlogCatalog
@testable import RunlogGateway
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Testing

@Suite(.timeLimit(.minutes(2))) struct GatewayTests {
    @Test func runsCanBeCreatedListedAndRead() async throws {
        try await withGateway { client, _, _ in
            let created = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1","configuration_id":"build","metadata":{"k":"v"}}"#))
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/v1/workspaces/ws_1/runs/run_1")
            let run = try object(created)
            #expect(run["status"] as? String == "queued")
            #expect(run["events_path"] as? String == "workspaces/ws_1/runs/run_1/logs")
            #expect((run["metadata"] as? [String: String]) == ["k": "v"])
            #expect(try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1"}"#)).status == .conflict)
            let generated = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post))
            #expect((generated["id"] as? String)?.hasPrefix("run_") == true)

            let appended = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: "{\"type\":\"run.started\"}\n{\"type\":\"console.line\",\"event_id\":\"a\"}\n"))
            #expect(text(appended) == #"{"first_sequence":1,"last_sequence":2,"appended":2,"duplicates":0}"#)
            let again = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: #"[{"type":"console.line","event_id":"a"}]"#))
            #expect(text(again) == #"{"first_sequence":null,"last_sequence":null,"appended":0,"duplicates":1}"#)

            let list = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs?limit=1", method: .get))
            #expect((list["items"] as? [Any])?.count == 1)
            let cursor = try #require(list["next_cursor"] as? String)
            let next = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs?limit=1&cursor=\(cursor)", method: .get))
            #expect((next["items"] as? [Any])?.count == 1)
            #expect(next["next_cursor"] is NSNull)
            #expect(try await client.execute(uri: "/v1/workspaces/ws_1/runs?status=running", method: .get).status == .ok)

            let page = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events?format=json&limit=1", method: .get))
            #expect((page["items"] as? [[String: Any]])?.first?["sequence"] as? Int == 1)
            #expect(page["next_after_sequence"] as? Int == 1)
            let download = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .get, headers: [.accept: "application/x-ndjson"])
            #expect(download.headers[.contentDisposition]?.contains("run_1.ndjson") == true)
            #expect(text(download).split(separator: "\n").count == 2)
            let summary = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/summary", method: .get))
            #expect(summary["schema"] as? String == "runlog.run_summary/v1")
            #expect(summary["event_count"] as? Int == 2)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            let metrics = text(try await client.execute(uri: "/metrics", method: .get))
            #expect(metrics.contains("runlog_events_appended_total 2"), "\(metrics)")
            #expect(metrics.contains(#"runlog_http_requests_total{method="POST",route="/v1/workspaces/{ws}/runs",status="409"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"runlog_http_requests_total{method="POST",route="/v1/workspaces/{ws}/runs",status="201"} 2"#), "\(metrics)")
            // The storage engine's timings come through swift-metrics into the same registry.
            #expect(metrics.contains("# TYPE runlog_flush_duration_seconds histogram"), "\(metrics)")
            #expect(!metrics.contains("runlog_flush_duration_seconds_count 0"), "\(metrics)")
            #expect(metrics.contains("runlog_fsync_duration_seconds_count"), "\(metrics)")
            #expect(metrics.contains("runlog_open_runs 3.0"), "\(metrics)")
            #expect(metrics.contains("runlog_open_log_writers "), "\(metrics)")
            #expect(metrics.contains("runlog_process_open_fds "), "\(metrics)")
            #expect(metrics.contains("runlog_slow_reader_fallbacks_total 0"), "\(metrics)")
            #expect(metrics.contains(#"runlog_stream_readers{format="ndjson"} 0.0"#), "\(metrics)")
            let openAPI = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(text(openAPI).hasPrefix("openapi: 3.1.0"))
            #expect(try await client.execute(uri: "/", method: .get).headers[.contentType]?.hasPrefix("text/html") == true)
        }
    }

    @Test func badInputGetsProblemsAndLeavesTheLogAsItWas() async throws {
        try await withGateway({ $0.maxBodyBytes = 4096 }) { client, _, runs in
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1"}"#))
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: #"{"type":"run.started"}"#))
            let cases: [(String, HTTPRequest.Method, HTTPFields, String, HTTPResponse.Status, String)] = [
                ("/v1/workspaces/ws_1/runs/run_1/events", .post, ndjson, "{\"type\":\"a.b\"}\n{\"type\":\"a.b\",", .badRequest, "invalid-event"),
                ("/v1/workspaces/ws_1/runs/run_1/events", .post, ndjson, "{\"type\":\"a.b\"}\n[1]", .badRequest, "invalid-event"),
                ("/v1/workspaces/ws_1/runs/run_1/events", .post, ndjson, "{\"payload\":1}", .badRequest, "invalid-event"),
                ("/v1/workspaces/ws_1/runs/run_1/events", .post, ndjson, "{\"type\":\"Bad Type\"}", .badRequest, "invalid-event"),
                ("/v1/workspaces/ws_1/runs/run_1/events", .post, ndjson, String(repeating: "{\"type\":\"a.b\"}\n", count: 400), .contentTooLarge, "body-too-large"),
                ("/v1/workspaces/ws_1/runs/run_1/events", .post, [.contentType: "application/xml"], "<a/>", .unsupportedMediaType, "unsupported-media-type"),
                ("/v1/workspaces/ws_1/runs/run_1/events?expected_last_sequence=5", .post, ndjson, "{\"type\":\"a.b\"}", .conflict, "sequence-mismatch"),
                ("/v1/workspaces/ws_1/runs/ghost/events", .post, ndjson, "{\"type\":\"a.b\"}", .notFound, "run-not-found"),
                ("/v1/workspaces/ws_1/runs/..%2F..%2Fetc/events", .post, ndjson, "{\"type\":\"a.b\"}", .badRequest, "invalid-identifier"),
                ("/v1/workspaces/ws_1/runs/..", .get, [:], "", .badRequest, "invalid-identifier"),
                ("/v1/workspaces/ws_1/runs/run_1/events?after_sequence=-1", .get, [:], "", .badRequest, "invalid-parameter"),
                // Filters and switches that could never mean anything are refused, not read as "none".
                ("/v1/workspaces/ws_1/runs/run_1/events?types=Bad!", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/events?types=run.*,1x*", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/events?follow=yes", .get, [:], "", .badRequest, "invalid-parameter"),
                // What the OpenAPI document's patterns refuse, the server refuses too.
                ("/v1/workspaces/ws_1/runs/run_1/events?types=", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/events?types=run.*,%20step.*", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/events?types=run.*,,step.*", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/events?after_sequence=%2B1", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/events", .get, [.lastEventID: "hjku+qq"], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/events", .get, [.lastEventID: "1234567890123456789"], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs?cursor=", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs?cursor=12~..%2F", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/events?stream=1", .get, [:], "", .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs?stream=yes", .post, [:], #"{"run_id":"run_never"}"#, .badRequest, "invalid-parameter"),
                ("/v1/workspaces/ws_1/runs/run_1/nothing", .get, [:], "", .notFound, "not-found"),
                ("/v1/workspaces/ws_1/runs/run_1", .delete, [:], "", .methodNotAllowed, "method-not-allowed"),
            ]
            for (uri, method, headers, body, status, kind) in cases {
                let response = try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: body))
                #expect(response.status == status, "\(method) \(uri)")
                #expect(response.headers[.contentType] == "application/problem+json", "\(method) \(uri)")
                let problem = try object(response)
                #expect(problem["type"] as? String == "/problems/\(kind)", "\(method) \(uri): \(problem)")
                #expect(problem["status"] as? Int == Int(status.code))
                #expect(problem["title"] is String && problem["detail"] is String)
            }
            let lined = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: "{\"type\":\"a.b\"}\n\n{\"type\":1}")))
            #expect(lined["line"] as? Int == 3)
            let mismatch = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events?expected_last_sequence=9", method: .post, headers: ndjson, body: ByteBuffer(string: "{\"type\":\"a.b\"}")))
            #expect(mismatch["last_sequence"] as? Int == 1)
            // Nothing refused reached the log.
            #expect(try await runs.store.lastSequence(of: try RunKey(workspace: "ws_1", run: "run_1")) == 1)
            #expect(try await runs.catalog.run(workspace: "ws_1", id: "run_never") == nil, "a refused create made a run")
        }
    }

    @Test func sseReplaysThenGoesLiveAndEndsAfterCompletion() async throws {
        try await withGateway({ $0.heartbeatInterval = .milliseconds(50) }) { client, base, _ in
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1"}"#))
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: "{\"type\":\"run.started\"}\n{\"type\":\"console.line\"}"))
            async let stream = readSSE(base + "/v1/workspaces/ws_1/runs/run_1/events")
            async let resumed = readSSE(base + "/v1/workspaces/ws_1/runs/run_1/events?after_sequence=0", lastEventID: "1")
            for index in 0..<5 {
                _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: "{\"type\":\"console.line\",\"payload\":\(index)}"))
            }
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: #"{"type":"run.completed","payload":{"status":"succeeded"}}"#))
            let (ids, comments, status) = try await stream
            #expect(status == 200)
            #expect(ids == Array(1...8))
            #expect(comments >= 1)  // the opening comment; heartbeats while idle
            #expect(try await resumed.ids == Array(2...8))  // Last-Event-ID wins over after_sequence
            // Reconnecting after the end: 204, so EventSource stops.
            #expect(try await readSSE(base + "/v1/workspaces/ws_1/runs/run_1/events", lastEventID: "8").status == 204)
        }
    }

    @Test func aRequestHeadOverTheLimitGets431AndANormalOneStillGoesThrough() async throws {
        try await withGateway { _, base, _ in
            let port = try #require(base.split(separator: ":").last.flatMap { Int($0) })
            func exchange(header bytes: Int) async throws -> String {
                try await offPool {
                    let connection = try RawConnection(port: port)
                    defer { connection.close() }
                    try connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: \(String(repeating: "p", count: bytes))\r\nConnection: close\r\n\r\n")
                    return String(decoding: connection.readToEnd().bytes, as: UTF8.self)
                }
            }
            // 64 KiB of header (Hummingbird's own limit is 80 KiB): refused, and said why.
            let refused = try await exchange(header: 64 << 10)
            #expect(refused.hasPrefix("HTTP/1.1 431 "), "\(refused.prefix(200))")
            #expect(refused.contains(#""type":"/problems/headers-too-large""#) && refused.contains("16384 bytes"), "\(refused)")
            // Under the 16 KiB default it is served.
            #expect(try await exchange(header: 8 << 10).hasPrefix("HTTP/1.1 200 "))
        }
    }

    @Test func aFilteredReaderOfACompletedRunEndsAtTheLogsEndAndGets204OnReconnecting() async throws {
        try await withServedGateway { client, base, gateway in
            let events = base + "/v1/workspaces/ws_1/runs/run_1/events"
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1"}"#))
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: "{\"type\":\"run.started\"}\n{\"type\":\"step.done\"}"))
            // Live: the filter passes step.done but not run.completed, which arrives while it waits.
            async let live = readSSE(events + "?types=step.*")
            try await waitUntil("the reader to catch up and park") { gateway.feeds.readerCount == 1 }
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: "{\"type\":\"console.line\"}\n{\"type\":\"step.done\"}\n{\"type\":\"console.line\"}"))
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: #"{"type":"run.completed","payload":{"status":"succeeded"}}"#))
            // The two step events, then an id alone: the log's last sequence, where a reconnection resumes.
            #expect(try await live.ids == [2, 4, 6])
            // Replayed: the same.
            let replayed = try await readSSE(events + "?types=step.*")
            #expect(replayed.ids == [2, 4, 6])
            // EventSource reconnects with the last id it saw: 204 stops it.
            #expect(try await readSSE(events + "?types=step.*", lastEventID: "6").status == 204)
            // Unfiltered streams end on run.completed itself, with no extra frame.
            #expect(try await readSSE(events).ids == Array(1...6))
        }
    }

    @Test func concurrentAppendersAndLateJoiningReadersSeeEveryEventOnce() async throws {
        try await withGateway { client, base, _ in
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"race"}"#))
            let url = base + "/v1/workspaces/ws_1/runs/race/events"
            let appenders = 8
            let perAppender = 40
            let total = appenders * perAppender
            // 50 streams stay open at once: a client allowing that many connections per host.
            var clientConfiguration = HTTPClient.Configuration()
            clientConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 100)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
            defer { _ = http.shutdown() }
            try await withThrowingTaskGroup(of: [Int64]?.self) { group in
                for reader in 0..<50 {
                    group.addTask {
                        // Join at a random moment during the appends.
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...150)))
                        _ = reader
                        return try await readSSE(url, client: http).ids
                    }
                }
                for appender in 0..<appenders {
                    group.addTask {
                        for index in 0..<perAppender {
                            var request = HTTPClientRequest(url: url)
                            request.method = .POST
                            request.headers.add(name: "content-type", value: "application/x-ndjson")
                            request.body = .bytes(ByteBuffer(string: "{\"type\":\"console.line\",\"payload\":{\"a\":\(appender),\"i\":\(index)}}"))
                            let response = try await http.execute(request, timeout: .seconds(30))
                            #expect(response.status == .ok)
                            _ = try await response.body.collect(upTo: 1 << 16)
                        }
                        return nil
                    }
                }
                var appendersDone = 0
                var readers: [[Int64]] = []
                while let result = try await group.next() {
                    if let ids = result {
                        readers.append(ids)
                    } else {
                        appendersDone += 1
                        if appendersDone == appenders {
                            var request = HTTPClientRequest(url: url)
                            request.method = .POST
                            request.headers.add(name: "content-type", value: "application/x-ndjson")
                            request.body = .bytes(ByteBuffer(string: #"{"type":"run.completed","payload":{"status":"succeeded"}}"#))
                            _ = try await http.execute(request, timeout: .seconds(30)).body.collect(upTo: 1 << 16)
                        }
                    }
                }
                #expect(readers.count == 50)
                for ids in readers { #expect(ids == Array(1...Int64(total + 1))) }
            }
        }
    }
}
