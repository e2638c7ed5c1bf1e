import Foundation
import RunlogStorage  // OpenFileLimit, to hold thousands of client sockets
import RunlogTestSupport
import Testing

/// `runlog serve` under load, watched from outside: slow readers, many readers, churn.
@Suite(.serialized, .slow, .timeLimit(.minutes(5))) struct ServerUnderLoadTests {
    /// Runs curl to completion; returns its output.
    static func curl(_ arguments: [String]) async throws -> String { try await ChildProcess.curl(arguments).output }

    /// ``curl(_:)`` for code already off the pool.
    static func curlBlocking(_ arguments: [String]) throws -> String { try ChildProcess.curlBlocking(arguments).output }

    /// The last SSE `id:` of a stream saved to a file, read from its last 8 KiB only (cheap to
    /// poll while the file grows to 100 MB).
    static func lastEventID(inStreamAt path: String) throws -> Int64? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer {
            do { try handle.close() } catch { Issue.record("closing \(path): \(error)") }
        }
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size > 8192 ? size - 8192 : 0)
        return eventIDs(in: try handle.readToEnd() ?? Data()).last
    }

    /// The SSE `id:` lines of a stream saved to a file, in order.
    static func eventIDs(inStreamAt path: String) throws -> [Int64] {
        eventIDs(in: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The `id:` lines of SSE bytes (a line cut at their start is no `id:` line).
    static func eventIDs(in data: Data) -> [Int64] {
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
        _ = try await Self.curl(["-XPOST", runs, "-d", #"{"run_id":"run_1"}"#])

        // One batch: 1,000 events of about 1 KB.
        let padding = String(repeating: "x", count: 960)
        let batch = server.storage + "/batch.ndjson"
        try (1...1000).map { #"{"type":"console.line","payload":{"n":\#($0),"text":"\#(padding)"}}"# }
            .joined(separator: "\n").write(toFile: batch, atomically: true, encoding: .utf8)
        @Sendable func appendBatch() throws {
            let receipt = try Self.curlBlocking(["-XPOST", runs + "/run_1/events", "-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + batch])
            #expect(receipt.contains(#""appended":1000"#), "\(receipt)")
        }

        /// A real SSE client of the run, saving what it gets to `file`.
        func sseClient(savingTo file: String) throws -> Process {
            let client = Process()
            client.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            client.arguments = ["-sN", "--max-time", "120", "-H", "Accept: text/event-stream", "-o", file, runs + "/run_1/events"]
            try client.run()
            return client
        }
        // SIGSTOP makes this one stop reading its socket...
        let streamed = server.storage + "/stream.txt"
        let reader = try sseClient(savingTo: streamed)
        defer { if reader.isRunning { reader.terminate() } }
        // ...while a second reader of the same run keeps reading throughout.
        let keptUp = server.storage + "/kept-up.txt"
        let other = try sseClient(savingTo: keptUp)
        defer { if other.isRunning { other.terminate() } }
        try appendBatch()
        let baseline = server.residentBytes
        kill(reader.processIdentifier, SIGSTOP)

        // 100 MB appended while it reads nothing.
        let peak = try await offPool {
            var peak = baseline
            for _ in 0..<100 {
                try appendBatch()
                peak = max(peak, server.residentBytes)
            }
            return peak
        }
        let growth = peak - baseline
        // The stalled reader held nobody back: the other one gets the last of those events while
        // the first is still stopped.
        // (Files are read off Swift's cooperative pool, which the other suites share.)
        let deadline = ContinuousClock.now + .seconds(60)
        while try await offPool({ try Self.lastEventID(inStreamAt: keptUp) }) != 101_000, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))  // polling another process's output, with a deadline
        }
        let keptUpIDs = try await offPool { try Self.eventIDs(inStreamAt: keptUp) }
        #expect(keptUpIDs == Array(1...101_000), "the reader that kept reading fell behind")
        print("slow reader: server RSS \(baseline >> 20) MiB before, peak \(peak >> 20) MiB during 100 MB of appends (growth \(growth >> 20) MiB)")
        // Buffering for the stalled reader would grow it by the 100 MB it missed.
        #expect(growth < 40 << 20, "server memory grew by \(growth >> 20) MiB while a reader stalled")

        // The run completes; the reader resumes, catches up from the files and ends with it.
        let completed = try await Self.curl(["-XPOST", runs + "/run_1/events", "-H", "Content-Type: application/x-ndjson", "--data-binary", #"{"type":"run.completed","payload":{"status":"succeeded"}}"#])
        #expect(completed.contains(#""last_sequence":101001"#), "\(completed)")
        kill(reader.processIdentifier, SIGCONT)
        try await offPool { reader.waitUntilExit() }
        try await offPool { other.waitUntilExit() }
        #expect(try await offPool { try Self.eventIDs(inStreamAt: keptUp) }.count == 101_001)
        let ids = try await offPool { try Self.eventIDs(inStreamAt: streamed) }
        #expect(ids.count == 101_001, "got \(ids.count) events")
        #expect(ids == Array(1...Int64(ids.count)), "events out of order or missing")
        let metrics = try await Self.curl([server.base + "/metrics"])
        let fallbacks = metrics.firstMatch(of: /runlog_slow_reader_fallbacks_total (\d+)/).flatMap { Int($0.1) } ?? 0
        #expect(fallbacks >= 1, "the reader never fell back to the files: \(metrics)")
    }

    static let sseReaders = #"runlog_stream_readers{format="sse"}"#
    /// Tasks serving connections: a scrape of `/metrics` comes on a connection of its own, so
    /// the fewest it can see is 1.
    static let connectionTasks = #"runlog_server_tasks{kind="connection"}"#
    static let streamTasks = #"runlog_server_tasks{kind="stream"}"#

    /// `total` SSE readers spread evenly over `runCount` runs, all held at once; then one event
    /// per run reaches every one of them.
    func holdReaders(_ total: Int, over runCount: Int) async throws {
        // The readers' client sockets are opened in this process.
        let hardLimit = Int(OpenFileLimit.raiseToHardLimit()?.after.hard ?? 0)
        try #require(hardLimit >= total + 512, "the hard open-file limit (\(hardLimit)) cannot hold \(total) readers")
        // Started with a low soft limit, as many systems default to: the server raises it.
        let server = try await ServerProcess(arguments: ["--durability", "none"], softFileLimit: 1024)
        defer { server.stop() }
        #expect(server.softFileLimit == hardLimit)
        let runs = (0..<runCount).map { "run_\($0)" }
        for run in runs {
            #expect(try RawConnection.request(port: server.port, "POST", "/v1/workspaces/ws_1/runs", body: #"{"run_id":"\#(run)"}"#).status == 201)
        }
        let before = server.residentBytes
        let port = server.port
        var connections = try await offPool {
            var connections: [RawConnection] = []
            connections.reserveCapacity(total)
            for index in 0..<total {
                let connection = try RawConnection(port: port)
                connections.append(connection)
                try connection.requestStream("/v1/workspaces/ws_1/runs/\(runs[index % runCount])/events")
            }
            return connections
        }
        defer { for connection in connections { connection.close() } }
        #expect(try await server.waitForMetric(Self.sseReaders, toBe: Double(total)) == Double(total))
        let perReader = (server.residentBytes - before) / total
        print("\(total) readers over \(runCount) runs: \(perReader) bytes of server RSS per idle reader (debug build), \(server.openDescriptors) descriptors")
        // The release figure is in docs/benchmarks.md; this bound catches a per-reader buffer.
        #expect(perReader < 64 * 1024)

        for run in runs {
            let appended = try RawConnection.request(
                port: server.port, "POST", "/v1/workspaces/ws_1/runs/\(run)/events", body: #"{"type":"console.line","payload":{}}"#, contentType: "application/x-ndjson")
            #expect(appended.status == 200, "\(appended.body)")
        }
        let opened = connections
        let missed = try await offPool {
            var missed = 0
            for connection in opened {
                var received: [UInt8] = []
                if !connection.read(until: "id: 1\nevent: console.line\n", into: &received) { missed += 1 }
            }
            return missed
        }
        #expect(missed == 0, "\(missed) of \(total) readers did not get the event")
        for connection in connections { connection.close() }
        connections.removeAll()
        #expect(try await server.waitForMetric(Self.sseReaders, toBe: 0) == 0)
    }

    /// A live stream takes its connection over from the connection's task (which then ends),
    /// after requests on the same connection whose bodies were read, or left unread.
    @Test func aConnectionCarriesRequestsThenALiveStreamThatEndsIt() async throws {
        let server = try await ServerProcess(arguments: ["--durability", "none"])
        defer { #expect(server.stop()) }
        let port = server.port
        let connection = try RawConnection(port: port)
        defer { connection.close() }
        let create = #"{"run_id":"run_1"}"#
        let unread = String(repeating: "x", count: 3000)
        // Three requests at once: a body the handler reads, one it never reads (no such route),
        // then the run's SSE stream.
        try connection.send(
            "POST /v1/workspaces/ws_1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(create.utf8.count)\r\n\r\n\(create)"
                + "POST /v1/workspaces/ws_1/nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(unread.utf8.count)\r\n\r\n\(unread)"
                + "GET /v1/workspaces/ws_1/runs/run_1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        )
        var received: [UInt8] = []
        let opened = try await offPool { [received] in
            var received = received
            return (connection.read(until: ": runlog event stream", into: &received), received)
        }
        #expect(opened.0)
        received = opened.1
        // The stream is parked on its feed: its events and its end come from elsewhere.
        #expect(try await server.waitForMetric(Self.sseReaders, toBe: 1) == 1)
        let events = #"{"type":"console.line","payload":{}}"# + "\n" + #"{"type":"run.completed","payload":{"status":"succeeded"}}"#
        #expect(try RawConnection.request(port: port, "POST", "/v1/workspaces/ws_1/runs/run_1/events", body: events, contentType: "application/x-ndjson").status == 200)
        // The stream ends at run.completed, with the chunked body's end, and the server closes.
        let rest = try await offPool { [received] in
            var received = received
            return (connection.read(until: "\u{1}never", into: &received), received)
        }
        #expect(!rest.0, "the server closed the connection")
        let text = String(decoding: rest.1, as: UTF8.self)
        let statuses = text.matches(of: /HTTP\/1\.1 (\d{3})/).map { String($0.1) }
        #expect(statuses == ["201", "404", "200"], "\(text)")
        #expect(text.contains("id: 1\nevent: console.line\n"))
        #expect(text.contains("id: 2\nevent: run.completed\n"))
        #expect(text.hasSuffix("\r\n0\r\n\r\n"), "\(text.suffix(200))")
        #expect(try await server.waitForMetric(Self.sseReaders, toBe: 0) == 0)
    }

    @Test func holdsTenThousandReadersOnOneRun() async throws {
        try await holdReaders(10_000, over: 1)
    }

    @Test func holdsTenThousandReadersOverAThousandRuns() async throws {
        try await holdReaders(10_000, over: 1_000)
    }

    @Test func connectionChurnLeavesDescriptorsTasksThreadsAndMemoryAsTheyWere() async throws {
        let server = try await ServerProcess(arguments: ["--durability", "none"])
        defer { server.stop() }
        #expect(try RawConnection.request(port: server.port, "POST", "/v1/workspaces/ws_1/runs", body: #"{"run_id":"run_1"}"#).status == 201)
        let appended = try RawConnection.request(
            port: server.port, "POST", "/v1/workspaces/ws_1/runs/run_1/events", body: #"{"type":"console.line","payload":{}}"#, contentType: "application/x-ndjson")
        #expect(appended.status == 200)
        /// Connects, subscribes and goes away: after the first event, or abruptly mid-request.
        let port = server.port
        @Sendable func cycle(_ index: Int) throws {
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            if index % 2 == 0 {
                try connection.requestStream("/v1/workspaces/ws_1/runs/run_1/events")
                var received: [UInt8] = []
                #expect(connection.read(until: "id: 1\n", into: &received))
            } else {
                try connection.send("GET /v1/workspaces/ws_1/runs/run_1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            }
        }
        // Warm-up: pools, caches and thread pools reach their working size.
        try await offPool { for index in 0..<100 { try cycle(index) } }
        #expect(try await server.waitForMetric(Self.sseReaders, toBe: 0) == 0)
        #expect(try await server.waitForMetric(Self.connectionTasks, toBe: 1) == 1)
        let descriptors = server.openDescriptors
        let threads = server.threads
        let memory = server.residentBytes

        try await offPool { for index in 0..<1_000 { try cycle(index) } }
        #expect(try await server.waitForMetric(Self.sseReaders, toBe: 0) == 0)
        // No task is left serving a connection that went, nor taking up a stream that ended.
        #expect(try await server.waitForMetric(Self.connectionTasks, toBe: 1) == 1)
        #expect(try server.metric(Self.streamTasks) == 0)
        // Closed sockets are released as the server notices them, and idle worker threads of
        // Swift's executor exit after a few seconds of idleness; allow it that.
        let end = ContinuousClock.now + .seconds(30)
        while server.openDescriptors > descriptors || server.threads > threads, ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(50))  // polling a condition, with a deadline
        }
        print("churn: descriptors \(descriptors) -> \(server.openDescriptors), threads \(threads) -> \(server.threads), RSS \(memory >> 10) -> \(server.residentBytes >> 10) KiB")
        #expect(server.openDescriptors <= descriptors)
        #expect(server.threads <= threads)
        #expect(server.residentBytes - memory < 4 << 20, "memory grew by \((server.residentBytes - memory) >> 10) KiB over 1,000 connections")
    }
}
