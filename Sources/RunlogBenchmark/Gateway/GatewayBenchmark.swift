import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import RunlogStorage

/// `runlog-bench gateway`: the HTTP server under load, as a child process (release build),
/// driven by lean NIO clients in this process; both share the machine's cores.
struct GatewayBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "HTTP appends, NDJSON download (against nginx), SSE replay and live fan-out."
    )

    @Option(help: "Where to keep the server's storage (removed afterwards).")
    var directory: String = NSTemporaryDirectory() + "runlog-bench-gateway"

    @Option(help: "Repetitions per throughput measurement; the median is reported.")
    var repetitions: Int = 3

    @Option(help: "The server's durability.")
    var durability: String = "fsync"

    @Option(help: "Megabytes of log for the download and replay measurements.")
    var downloadMegabytes: Int = 256

    @Option(help: "Reader counts for live fan-out.")
    var readers: [Int] = [100, 1_000, 10_000]

    @Option(help: "Events per second the appender sends during fan-out.")
    var fanOutRate: Int = 20

    @Option(help: "Seconds of appends during fan-out.")
    var fanOutSeconds: Int = 10

    @Flag(help: "Small sizes, for a quick check that everything runs.")
    var quick = false

    @Flag(inversion: .prefixedNo, help: "Also measure single appends and fan-out against servers that store nothing (baseline-server).")
    var baselines = true

    enum Part: String, ExpressibleByArgument, CaseIterable { case appends, downloads, fanout, slowloris }

    @Option(help: "Which measurements to run (appends, downloads, fanout, slowloris); all by default.")
    var only: [Part] = Part.allCases

    func run() async throws {
        try ScratchDirectory.prepare(directory)
        defer { ScratchDirectory.remove(directory) }
        OpenFileLimit.raiseToHardLimit()
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServedProcess.runlog(
            storage: directory + "/storage", arguments: ["--durability", durability, "--segment-size", "4GiB", "--max-body-size", "64MiB"]
        )
        defer { server.stop() }
        print("# runlog-bench gateway (server durability \(durability), \(repetitions) repetitions, medians; load generator in this process)\n")
        if only.contains(.appends) { try await appends(server: server, group: group) }
        if only.contains(.downloads) { try await downloads(server: server, group: group) }
        if only.contains(.fanout) { try await fanOut(server: server, group: group) }
        if only.contains(.slowloris) { try await slowloris(group: group) }
    }

    // MARK: Appends

    func createRun(_ id: String, server: ServedProcess, group: any EventLoopGroup) async throws {
        let connection = try await LoadConnection.connect(port: server.port, group: group)
        try await connection.send(LoadRequest.post("/v1/workspaces/bench/runs", body: Array(#"{"run_id":"\#(id)"}"#.utf8), contentType: "application/json"))
    }

    /// `connections` clients each sending `requests` bodies to `run`; events per second.
    func appendRate(run: String, body: [UInt8], eventsPerBody: Int, connections: Int, requests: Int, server: ServedProcess, group: any EventLoopGroup) async throws -> Double {
        let request = LoadRequest.post("/v1/workspaces/bench/runs/\(run)/events", body: body)
        var clients: [ClosedLoopClient.Connection] = []
        for _ in 0..<connections {
            clients.append(try await ClosedLoopClient.connect(sending: request, times: requests, port: server.port, group: group))
        }
        let started = ContinuousClock.now
        for client in clients { client.start() }
        for client in clients { try await client.finish() }
        return Double(connections * requests * eventsPerBody) / (ContinuousClock.now - started).seconds
    }

    func appends(server: ServedProcess, group: any EventLoopGroup) async throws {
        let scale = quick ? 20 : 1
        let line = Array(Workload.sampleLine.utf8)
        let batch = Workload.bodies(batchSize: 1000, events: 1000)[0]
        print("payload: \(line.count) bytes of producer JSON per event\n")
        print("| workload | connections | events | runlog HTTP events/s | engine in-process events/s | HTTP / engine |")
        print("|---|---:|---:|---:|---:|---:|")
        let storeDurability = Durability(rawValue: durability) ?? .fsync

        try await compareAppends(
            "batches of 1,000, one run", run: "batch", body: batch, eventsPerBody: 1000, connections: 4, requests: 250 / scale, server: server, group: group
        ) { root in
            try await Workload.appendRunlog(root: root, durability: storeDurability, batchSize: 1000, events: 1_000_000 / scale)
        }
        let singles = try await compareAppends(
            "single events, one run", run: "single", body: line, eventsPerBody: 1, connections: 64, requests: 2000 / scale, server: server, group: group
        ) { root in
            try await Workload.appendRunlogConcurrently(root: root, durability: storeDurability, appenders: 64, events: 128_000 / scale)
        }
        guard baselines else { return }
        // The same requests to servers that store nothing: what the framework, the kernel and
        // this load generator leave on these cores.
        print("\n| single events, 64 connections, to a server that stores nothing | events/s | runlog / it |")
        print("|---|---:|---:|")
        for (kind, name) in [(BaselineServer.Kind.hummingbird, "Hummingbird, empty append handler"), (.nio, "bare SwiftNIO handler")] {
            let baseline = try await ServedProcess.baseline(kind)
            defer { baseline.stop() }
            var rates: [Double] = []
            for _ in 0..<repetitions {
                rates.append(try await appendRate(run: "single", body: line, eventsPerBody: 1, connections: 64, requests: 2000 / scale, server: baseline, group: group))
            }
            print("| \(name) | \(format(median(of: rates))) | \(ratio(singles, median(of: rates))) |")
        }
    }

    /// Prints one row: HTTP appends to a fresh run against the same appends to the engine in
    /// this process, medians over the repetitions. Returns the HTTP median.
    @discardableResult
    func compareAppends(
        _ name: String, run: String, body: [UInt8], eventsPerBody: Int, connections: Int, requests: Int,
        server: ServedProcess, group: any EventLoopGroup, engine: (_ root: String) async throws -> Measurement
    ) async throws -> Double {
        var httpRates: [Double] = []
        var engineRates: [Double] = []
        for repetition in 0..<repetitions {
            try await createRun("\(run)_\(repetition)", server: server, group: group)
            httpRates.append(
                try await appendRate(
                    run: "\(run)_\(repetition)", body: body, eventsPerBody: eventsPerBody, connections: connections, requests: requests, server: server, group: group
                )
            )
            let measured = try await engine(directory + "/engine-\(run)-\(repetition)")
            engineRates.append(Double(measured.events) / measured.seconds)
        }
        let events = connections * requests * eventsPerBody
        print("| \(name) | \(connections) | \(events) | \(format(median(of: httpRates))) | \(format(median(of: engineRates))) | \(ratio(median(of: httpRates), median(of: engineRates))) |")
        return median(of: httpRates)
    }

    // MARK: Download and replay

    func downloads(server: ServedProcess, group: any EventLoopGroup) async throws {
        let scale = quick ? 16 : 1
        try await createRun("download", server: server, group: group)
        let batch = Workload.bodies(batchSize: 1000, events: 1000)[0]
        let batches = downloadMegabytes * 1024 * 1024 / scale / (Workload.storedLineEstimate * 1000)
        _ = try await appendRate(run: "download", body: batch, eventsPerBody: 1000, connections: 1, requests: batches, server: server, group: group)
        let segment = directory + "/storage/workspaces/bench/runs/download/logs/events.ndjson"
        let bytes = try FileManager.default.attributesOfItem(atPath: segment)[.size] as? Int ?? 0
        // nginx serves the same bytes: the run's only segment, linked into its root.
        let www = directory + "/www"
        try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
        try FileManager.default.linkItem(atPath: segment, toPath: www + "/download.ndjson")
        let placement = CorePlacement.forThisMachine()
        let nginx = try await ServedProcess.nginx(root: www, scratch: directory, placement: placement)
        defer { nginx?.stop() }
        // Both servers on the same cores, the client on its own, for every download.
        try placement?.place(server: server.process.processIdentifier)
        defer {
            do { try placement?.release(server: server.process.processIdentifier) } catch { print("note: \(error)") }
        }
        if let placement {
            print("(downloads: load generator on core \(placement.clientCores), servers on cores \(placement.serverCores))")
        }

        var runlogRates: [Double] = []
        var nginxRates: [Double] = []
        let ndjson = LoadRequest.get("/v1/workspaces/bench/runs/download/events", accept: "application/x-ndjson")
        for repetition in 0..<max(repetitions, 5) {
            // Back to back, each going first in every other repetition: whatever the first
            // download of a pair pays or leaves behind falls on both alike.
            let runlogFirst = repetition % 2 == 0
            if runlogFirst { runlogRates.append(try await downloadRate(ndjson, port: server.port, group: group, expected: bytes)) }
            if let nginx {
                nginxRates.append(try await downloadRate(LoadRequest.get("/download.ndjson", accept: "*/*"), port: nginx.port, group: group, expected: bytes))
            }
            if !runlogFirst { runlogRates.append(try await downloadRate(ndjson, port: server.port, group: group, expected: bytes)) }
        }
        print("\n| read | bytes of log | runlog MB/s | nginx sendfile MB/s | runlog / nginx |")
        print("|---|---:|---:|---:|---:|")
        if nginxRates.isEmpty {
            print("| NDJSON download | \(bytes) | \(format(median(of: runlogRates))) | (nginx not installed) | |")
        } else {
            print("| NDJSON download | \(bytes) | \(format(median(of: runlogRates))) | \(format(median(of: nginxRates))) | \(ratio(median(of: runlogRates), median(of: nginxRates))) |")
        }
        if !nginxRates.isEmpty {
            // Each repetition downloads from both servers back to back: the ratio within a
            // repetition is steadier than the ratio of medians on a machine whose speed drifts.
            let ratios = zip(runlogRates, nginxRates).map { $0 / $1 }.sorted()
            let listed = ratios.map { String(format: "%.2f", $0) }.joined(separator: ", ")
            print("\nrunlog / nginx within each repetition: median \(String(format: "%.2f", median(of: ratios)))x (\(listed))\n")
        }

        // SSE replay ends at run.completed.
        let completion = LoadRequest.post("/v1/workspaces/bench/runs/download/events", body: Array(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#.utf8))
        try await LoadConnection.connect(port: server.port, group: group).send(completion)
        var replayRates: [Double] = []
        let sse = LoadRequest.get("/v1/workspaces/bench/runs/download/events", accept: "text/event-stream")
        for _ in 0..<repetitions {
            replayRates.append(try await downloadRate(sse, port: server.port, group: group, expected: bytes))
        }
        print("| SSE replay (MB/s of SSE framing received) | \(bytes) | \(format(median(of: replayRates))) | | |")
    }

    /// MB/s of response bytes for one request read to the end.
    func downloadRate(_ request: ByteBuffer, port: Int, group: any EventLoopGroup, expected: Int) async throws -> Double {
        let connection = try await LoadConnection.connect(port: port, group: group)
        let started = ContinuousClock.now
        let received = try await connection.download(request)
        let seconds = (ContinuousClock.now - started).seconds
        guard received >= expected else {
            throw LoadConnection.Failure(description: "download got \(received) bytes of \(expected)")
        }
        return Double(received) / seconds / 1e6
    }

    // MARK: Live fan-out

    func fanOut(server: ServedProcess, group: any EventLoopGroup) async throws {
        // Per event, "first" is its latency to the first reader that got it (the append, the
        // feed and one write) and "spread" the time from that reader to the last (the pass over
        // the readers): what p99 is made of.
        print("\n| readers on one run | server | rate | events | deliveries | p50 ms | p99 ms | max ms | append ms p50/p99 | first ms p50/p99 | spread ms p50/p99 | server RSS per idle reader |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        // Each count against runlog, then against a bare SwiftNIO server that stores nothing
        // (``ReaderRegistry``): the same readers, appender and cores.
        let baseline = baselines ? try await ServedProcess.baseline(.nio) : nil
        defer { baseline?.stop() }
        for count in readers {
            try await fanOut(to: count, server: server, name: "runlog", group: group)
            if let baseline { try await fanOut(to: count, server: baseline, name: "bare SwiftNIO, a pass per batch", group: group) }
        }
    }

    /// One row: `count` SSE readers of a new run on `server`, and appends at the steady rate.
    func fanOut(to count: Int, server: ServedProcess, name: String, group: any EventLoopGroup) async throws {
        let readerGroup = MultiThreadedEventLoopGroup.singleton
        let run = "fan_\(count)"
        try await createRun(run, server: server, group: group)
        let recorder = LatencyRecorder(group: readerGroup)
        let before = server.residentBytes
        let channels = try await LiveReader.open(count, path: "/v1/workspaces/bench/runs/\(run)/events", port: server.port, group: readerGroup, recorder: recorder)
        let perReader = (server.residentBytes - before) / count
        let events = fanOutRate * (quick ? 2 : fanOutSeconds)
        let connection = try await LoadConnection.connect(port: server.port, group: group)
        let interval = Duration.nanoseconds(1_000_000_000 / fanOutRate)
        var next = ContinuousClock.now
        var sent = 0
        var stamped: Int64?
        var appendTimes: [Int64] = []
        try await connection.exchange {
            // This closure runs between exchanges: the last append has just been answered.
            if let stamped { appendTimes.append(wallNanoseconds() - stamped) }
            guard sent < events else { return nil }
            sent += 1
            // A steady rate: each append waits for its slot (asleep: a polling wait would
            // take the cores the server and the readers share).
            next += interval
            try await Task.sleep(until: next, clock: .continuous)
            stamped = wallNanoseconds()
            return LoadRequest.post("/v1/workspaces/bench/runs/\(run)/events", body: Array(#"{"type":"bench.tick","payload":{"t":\#(stamped!)}}"#.utf8))
        }
        appendTimes.sort()
        let expected = events * count
        let deadline = ContinuousClock.now + .seconds(60)
        while recorder.count < expected, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let deliveries = try await recorder.all()
        for channel in channels { channel.close(promise: nil) }
        guard !deliveries.isEmpty else {
            print("| \(format(Double(count))) | \(name) | \(fanOutRate)/s | \(events) | 0 | | | | | | | \(perReader) B |")
            return
        }
        let samples = deliveries.map(\.latency).sorted()
        var perEvent: [Int64: (first: Int64, last: Int64)] = [:]
        for delivery in deliveries {
            let seen = perEvent[delivery.stamp] ?? (.max, .min)
            perEvent[delivery.stamp] = (min(seen.first, delivery.latency), max(seen.last, delivery.latency))
        }
        let firsts = perEvent.values.map(\.first).sorted()
        let spreads = perEvent.values.map { $0.last - $0.first }.sorted()
        print("| \(format(Double(count))) | \(name) | \(fanOutRate)/s | \(events) | \(samples.count) of \(expected) | \(milliseconds(samples, 0.5)) | \(milliseconds(samples, 0.99)) | \(milliseconds(samples, 1)) | \(milliseconds(appendTimes, 0.5))/\(milliseconds(appendTimes, 0.99)) | \(milliseconds(firsts, 0.5))/\(milliseconds(firsts, 0.99)) | \(milliseconds(spreads, 0.5))/\(milliseconds(spreads, 0.99)) | \(format(Double(perReader))) B |")
    }

    // MARK: Helpers

    /// The `quantile` of `sorted` nanoseconds, in milliseconds.
    func milliseconds(_ sorted: [Int64], _ quantile: Double) -> String {
        String(format: "%.1f", Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))]) / 1e6)
    }


    func ratio(_ value: Double, _ baseline: Double) -> String {
        String(format: "%.2fx", value / baseline)
    }
}
