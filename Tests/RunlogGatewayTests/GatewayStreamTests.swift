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

@Suite(.timeLimit(.minutes(2))) struct GatewayStreamTests {
    @Test func disconnectedClientsLeaveNoReaderBehind() async throws {
        try await withServedGateway { client, base, gateway in
            let runs = gateway.runs
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1"}"#))
            let key = try RunKey(workspace: "ws_1", run: "run_1")
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 100)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let readers = (0..<20).map { index in
                Task {
                    var request = HTTPClientRequest(url: base + "/v1/workspaces/ws_1/runs/run_1/events" + (index % 2 == 0 ? "" : "?follow=true"))
                    request.headers.add(name: "accept", value: index % 2 == 0 ? "text/event-stream" : "application/x-ndjson")
                    let response = try await http.execute(request, timeout: .seconds(60))
                    for try await _ in response.body {}
                }
            }
            // All twenty are caught up and parked on the run's feeds (one per format), which
            // wait for events on their behalf...
            try await waitUntil("20 parked readers") { gateway.feeds.readerCount >= 20 }
            #expect(gateway.feeds.count == 2)
            #expect(runs.store.watcherCount(of: key) == 2)
            // ...then every client goes away: each stream must notice and let go, and the feeds stop.
            for reader in readers { reader.cancel() }
            try await http.shutdown()
            try await waitUntil("the feeds, watchers and alarms to go") { gateway.feeds.count == 0 && runs.store.watcherCount(of: key) == 0 && gateway.alarms.count == 0 }
            #expect(gateway.feeds.readerCount == 0)
        }
    }

    /// Parked readers get each batch from their connection's event loop, most of them as a
    /// chunk made once for the loop: what curl sees raw must be well-formed HTTP/1.1 chunks,
    /// for readers of the whole stream and for a filtered one, written beside the task's writes.
    @Test func parkedReadersGetWellFormedChunks() async throws {
        try await withServedGateway { client, base, gateway in
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_c"}"#))
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_c/events", method: .post, headers: ndjson, body: ByteBuffer(string: #"{"type":"run.started"}"#))
            let url = base + "/v1/workspaces/ws_1/runs/run_c/events"
            let readers = [
                ["-H", "Accept: text/event-stream", url],
                ["-H", "Accept: text/event-stream", url + "?types=step.*"],
                [url + "?follow=true"],
            ].map { arguments in
                Task { try await CompressionTests.run("/usr/bin/curl", ["-sS", "--raw", "-N"] + arguments) }
            }
            try await waitUntil("3 parked readers") { gateway.feeds.readerCount >= 3 }
            for batch in [[1], [2, 3, 4], [5]] {
                let lines = batch.map { #"{"type":"step.done","payload":{"n":\#($0)}}"# }
                _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_c/events", method: .post, headers: ndjson, body: ByteBuffer(string: lines.joined(separator: "\n")))
            }
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_c/events", method: .post, headers: ndjson, body: ByteBuffer(string: #"{"type":"run.completed","payload":{"status":"succeeded"}}"#))

            var bodies: [String] = []
            for reader in readers {
                let (status, output) = try await reader.value
                #expect(status == 0)
                let body = try #require(Self.dechunked(Array(output)), "not HTTP/1.1 chunks: \(String(decoding: output, as: UTF8.self))")
                bodies.append(body)
            }
            func ids(_ sse: String) -> [String] { sse.split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) } }
            #expect(ids(bodies[0]) == ["1", "2", "3", "4", "5", "6", "7"])
            // The filtered one's last frame is an id alone: the end of the log, where it would resume.
            #expect(ids(bodies[1]) == ["2", "3", "4", "5", "6", "7"])
            let lines = bodies[2].split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(lines.compactMap { $0["sequence"] as? Int } == Array(1...7))
        }
    }

    /// The body of a chunked message (as `curl --raw` prints it), or nil unless every chunk is
    /// well-formed and the last one ends it.
    static func dechunked(_ raw: [UInt8]) -> String? {
        var body: [UInt8] = []
        var index = 0
        let crlf: [UInt8] = [13, 10]
        while true {
            guard let lineEnd = (index..<max(index, raw.count - 1)).first(where: { raw[$0] == 13 && raw[$0 + 1] == 10 }),
                let size = Int(String(decoding: raw[index..<lineEnd], as: UTF8.self), radix: 16)
            else { return nil }
            let start = lineEnd + 2
            guard raw.count >= start + size + 2, Array(raw[(start + size)..<(start + size + 2)]) == crlf else { return nil }
            if size == 0 { return start + 2 == raw.count ? String(decoding: body, as: UTF8.self) : nil }
            body += raw[start..<(start + size)]
            index = start + size + 2
        }
    }

    @Test func idleStreamsGetHeartbeats() async throws {
        try await withGateway({ $0.heartbeatInterval = .milliseconds(50) }) { client, base, _ in
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"idle"}"#))
            var request = HTTPClientRequest(url: base + "/v1/workspaces/ws_1/runs/idle/events")
            request.headers.add(name: "accept", value: "text/event-stream")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.headers.first(name: "cache-control") == "no-cache")
            #expect(response.headers.first(name: "x-accel-buffering") == "no")
            var text = ""
            for try await part in response.body {
                text += String(buffer: part)
                if text.components(separatedBy: ": heartbeat\n\n").count > 2 { break }
            }
            // Nothing happened on the run, and the stream said so twice.
            #expect(text.hasPrefix(": runlog event stream: workspace ws_1, run idle\nretry: 2000\n\n"))
            #expect(text.components(separatedBy: ": heartbeat\n\n").count > 2)
            #expect(!text.contains("id: "))
        }
    }

    @Test func createAndStreamNDJSONFollowFiltersAndSegments() async throws {
        try await withGateway(segmentBytes: 2048) { client, base, runs in
            // POST .../runs?stream=true: the new run's SSE stream, for fetch-based clients.
            var create = HTTPClientRequest(url: base + "/v1/workspaces/ws_1/runs?stream=true")
            create.method = .POST
            create.body = .bytes(ByteBuffer(string: #"{"run_id":"run_s"}"#))
            let created = try await HTTPClient.shared.execute(create, timeout: .seconds(30))
            #expect(created.headers.first(name: "content-type") == "text/event-stream")
            #expect(created.headers.first(name: "location") == "/v1/workspaces/ws_1/runs/run_s")
            // A live stream's connection closes at its end, and the response says so up front.
            #expect(created.headers.first(name: "connection") == "close")
            let lines = (1...60).map { #"{"type":"console.line","payload":{"n":\#($0),"pad":"\#(String(repeating: "p", count: 60))"}}"# }
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_s/events", method: .post, headers: ndjson, body: ByteBuffer(string: #"{"type":"run.started"}"# + "\n" + lines.joined(separator: "\n")))
            let key = try RunKey(workspace: "ws_1", run: "run_s")
            #expect(try await runs.store.archiveClosedSegments(of: key).count >= 2)
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_s/events", method: .post, headers: ndjson, body: ByteBuffer(string: #"{"type":"run.completed","payload":{"status":"succeeded"}}"#))
            var streamed = ""
            for try await part in created.body { streamed += String(buffer: part) }
            #expect(streamed.components(separatedBy: "\nid: ").count - 1 == 62)
            #expect(streamed.hasPrefix(": runlog event stream: workspace ws_1, run run_s\n"))

            // Without a run_id the id is generated, and the stream tells it at once.
            var anonymous = HTTPClientRequest(url: base + "/v1/workspaces/ws_1/runs?stream=true")
            anonymous.method = .POST
            let generated = try await HTTPClient.shared.execute(anonymous, timeout: .seconds(30))
            let location = try #require(generated.headers.first(name: "location"))
            let runID = String(try #require(location.split(separator: "/").last))
            #expect(runID.hasPrefix("run_") && location == "/v1/workspaces/ws_1/runs/\(runID)")
            var opening = ByteBuffer()
            for try await part in generated.body {
                opening.writeImmutableBuffer(part)
                if String(buffer: opening).contains("\n\n") { break }
            }
            #expect(String(buffer: opening).hasPrefix(": runlog event stream: workspace ws_1, run \(runID)\n"))

            // NDJSON across plain and gzipped segments, whole.
            let download = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_s/events", method: .get)
            #expect(text(download).split(separator: "\n").count == 62)
            // from_sequence is inclusive; types filters with a suffix wildcard; limit bounds.
            let page = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_s/events?format=json&from_sequence=61&types=run.*", method: .get))
            #expect((page["items"] as? [[String: Any]])?.map { $0["sequence"] as? Int } == [62])
            // Live streams close their connection when they end: read them on connections of their own.
            func fetch(_ path: String) async throws -> String {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + path), timeout: .seconds(30))
                return String(buffer: try await response.body.collect(upTo: 1 << 20))
            }
            #expect(try await fetch("/v1/workspaces/ws_1/runs/run_s/events?follow=true&after_sequence=59&limit=2").split(separator: "\n").count == 2)
            // A follow on a completed run ends after run.completed.
            #expect(try await fetch("/v1/workspaces/ws_1/runs/run_s/events?follow=true&after_sequence=60").split(separator: "\n").count == 2)
        }
    }

    @Test func wholeDownloadsOfPlainFilesGoOutWithSendfileAndLetGoOfThem() async throws {
        try await withGateway(segmentBytes: 64 << 10) { client, base, runs in
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_f"}"#))
            let key = try RunKey(workspace: "ws_1", run: "run_f")
            let lines = (1...4000).map { #"{"type":"console.line","payload":{"n":\#($0),"pad":"\#(String(repeating: "x", count: 100))"}}"# }
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_f/events", method: .post, headers: ndjson, body: ByteBuffer(string: lines.joined(separator: "\n")))
            func filesSent() async throws -> Int {
                let metrics = text(try await client.execute(uri: "/metrics", method: .get))
                let line = metrics.split(separator: "\n").first { $0.hasPrefix("runlog_download_files_sent_total ") }
                return Int(line?.split(separator: " ").last ?? "") ?? -1
            }
            func sequences(_ body: String) -> [Int] {
                body.split(separator: "\n").compactMap { line in
                    (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["sequence"] as? Int
                }
            }

            // Several plain segments and the active one, each sent as a file: the whole log, in order.
            let segments = try await runs.store.snapshot(of: key).closedSegments.count + 1
            #expect(segments > 3)
            let download = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_f/events", method: .get)
            #expect(download.status == .ok)
            #expect(sequences(text(download)) == Array(1...4000))
            #expect(try await filesSent() == segments)

            // With archived segments it reads the usual way, with the same result.
            #expect(try await runs.store.archiveClosedSegments(of: key).count == segments - 1)
            let archived = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_f/events", method: .get)
            #expect(text(archived) == text(download))
            #expect(try await filesSent() == segments)

            // A client that leaves mid-download: the server lets go of every file it had open.
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_big"}"#))
            let big = String(repeating: lines.joined(separator: "\n") + "\n", count: 20)
            for _ in 0..<4 {
                _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_big/events", method: .post, headers: ndjson, body: ByteBuffer(string: big))
            }
            let directory = runs.store.configuration.root
            // Closed segments only: the writer holds the active one open, or not, as it sees fit
            // (it lets go of an idle log's file), and only a reader opens closed ones.
            func openLogFiles() -> Int {
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
                return entries.filter { entry in
                    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry) else { return false }
                    return target.hasPrefix(directory) && target.contains("run_big") && (target as NSString).lastPathComponent.hasPrefix("events-")
                }.count
            }
            let before = openLogFiles()
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let response = try await http.execute(HTTPClientRequest(url: base + "/v1/workspaces/ws_1/runs/run_big/events"), timeout: .seconds(30))
            // Mid-transfer (about 100 MB of log; the socket buffers hold far less), the server has
            // files open. Not at every instant: a reader between two segments holds none, so the
            // client reads on until it has seen one open.
            var received = 0
            var mostOpen = before
            for try await part in response.body {
                received += part.readableBytes
                mostOpen = max(mostOpen, openLogFiles())
                if received >= 1 << 16, mostOpen > before { break }
            }
            #expect(mostOpen > before)
            try await http.shutdown()
            // Once the server has seen the client go (its download stream has ended), nothing of
            // the download stays open.
            func downloads() async throws -> Double? {
                let metrics = text(try await client.execute(uri: "/metrics", method: .get))
                let line = metrics.split(separator: "\n").first { $0.hasPrefix("runlog_stream_readers{format=\"ndjson\"} ") }
                return line.flatMap { Double($0.split(separator: " ").last!) }
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while try await downloads() != 0 || openLogFiles() > before, ContinuousClock.now < deadline { await Task.yield() }
            #expect(try await downloads() == 0)
            #expect(openLogFiles() == before)
        }
    }

    /// A file larger than one `sendfile` goes out as several regions: whole, in order, and
    /// exactly as stored.
    @Test func aFileLargerThanOneSendfileGoesOutWholeInRegions() async throws {
        try await withGateway { client, _, runs in
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_r"}"#))
            let pad = String(repeating: "y", count: 300)
            let lines = (1...12_000).map { #"{"type":"console.line","payload":{"n":\#($0),"pad":"\#(pad)"}}"# }
            let appended = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_r/events", method: .post, headers: ndjson, body: ByteBuffer(string: lines.joined(separator: "\n")))
            #expect(appended.status == .ok)
            try await runs.store.flush()
            let key = try RunKey(workspace: "ws_1", run: "run_r")
            let snapshot = try await runs.store.snapshot(of: key)
            #expect(snapshot.closedSegments.isEmpty)
            let stored = try Data(contentsOf: URL(fileURLWithPath: snapshot.directory + "/events.ndjson"))
            // Three whole regions and a part of one.
            #expect(stored.count > 3 * FileRegionSender.regionSize && stored.count % FileRegionSender.regionSize != 0)
            let download = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_r/events", method: .get)
            #expect(download.status == .ok)
            let received = Data(download.body.readableBytesView)
            // Compared whole, reported by the first difference (a diff of megabytes would take minutes).
            let firstDifference = zip(received, stored).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? (received.count == stored.count ? nil : min(received.count, stored.count))
            #expect(firstDifference == nil, "the download differs from the stored file from byte \(firstDifference ?? 0) on")
        }
    }

    @Test func hostileBodiesAreRefused() async throws {
        try await withGateway { client, _, runs in
            _ = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1"}"#))
            var invalidUTF8 = ByteBuffer(string: #"{"type":"a.b","payload":""#)
            invalidUTF8.writeBytes([0xC3, 0x28, 0xFF])
            invalidUTF8.writeString(#""}"#)
            let utf8 = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: invalidUTF8)
            #expect(utf8.status == .badRequest)
            #expect((try object(utf8)["detail"] as? String)?.contains("UTF-8") == true)
            let big = #"{"type":"a.b","payload":""# + String(repeating: "x", count: (1 << 20) + 10) + #""}"#
            let oversized = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: big))
            #expect(oversized.status == .badRequest)
            #expect((try object(oversized)["detail"] as? String)?.contains("more than the limit") == true)
            let malformed = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "[{\"type\":\"a.b\"},"))
            #expect(malformed.status == .badRequest)
            #expect(try await runs.store.lastSequence(of: try RunKey(workspace: "ws_1", run: "run_1")) == 0)
        }
    }
}
