import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import RunlogCatalog
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Testing

/// Readers downloading a run while retention (from another process, as cron runs it) gzips or
/// deletes its files: they get the whole log or a transfer that visibly fails, never a shortened
/// log presented as complete.
@Suite(.timeLimit(.minutes(2))) struct RetentionReadTests {
    /// A completed run of about 25 MB in 256 KiB segments; returns its NDJSON as stored.
    static func makeLargeRun(_ runs: RunService) async throws -> [UInt8] {
        let key = try RunKey(workspace: "ws_1", run: "run_1")
        _ = try await runs.createRun(workspace: "ws_1", runID: "run_1")
        let padding = String(repeating: "z", count: 180)
        for batch in 0..<100 {
            let lines = (0..<1000).map { #"{"type":"console.line","payload":{"n":\#(batch * 1000 + $0),"text":"\#(padding)"}}"# }
            _ = try await runs.append(try EventBatch(ndjson: Array(lines.joined(separator: "\n").utf8)), to: key)
        }
        let done = #"{"type":"run.completed","payload":{"status":"succeeded"}}"#
        _ = try await runs.append(try EventBatch(ndjson: Array(done.utf8)), to: key)
        // More than a sendfile download takes (see below): these tests are about the reader.
        #expect(try await runs.store.snapshot(of: key).closedSegments.count >= 64)
        var expected: [UInt8] = []
        for try await chunk in runs.store.events(of: key) { expected.append(contentsOf: chunk.bytes.readableBytesView) }
        return expected
    }

    /// Starts a download, calls `during` once the first bytes arrived (the server is then held
    /// back by the socket, far from the end), and reads the rest. Returns the body, or the error
    /// that ended the transfer.
    static func download(_ url: String, during: () async throws -> Void) async throws -> Result<[UInt8], any Error> {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(60))
        #expect(response.status == .ok)
        var iterator = response.body.makeAsyncIterator()
        var body: [UInt8] = []
        if let first = try await iterator.next() { body.append(contentsOf: first.readableBytesView) }
        try await during()
        do {
            while let buffer = try await iterator.next() { body.append(contentsOf: buffer.readableBytesView) }
            return .success(body)
        } catch {
            return .failure(error)
        }
    }

    static func maintenance(_ runs: RunService) -> LogMaintenance {
        LogMaintenance(configuration: runs.store.configuration, logger: .init(label: "test"))
    }

    // These runs have more segments than a download sends with sendfile (64), so they exercise
    // the reader that follows renames and deletions as it goes. A smaller run's download holds
    // every file open from its start and completes whole (GatewayStreamTests).
    @Test(.slow) func aDownloadWhileTheRunIsCompressedGetsTheWholeLog() async throws {
        try await withGateway(segmentBytes: 256 << 10) { _, base, runs in
            let expected = try await Self.makeLargeRun(runs)
            let key = try RunKey(workspace: "ws_1", run: "run_1")
            let result = try await Self.download(base + "/v1/workspaces/ws_1/runs/run_1/events?format=ndjson") {
                let maintenance = Self.maintenance(runs)
                let compressed = try await NIOThreadPool.singleton.runIfActive { try maintenance.compress(key, scope: .wholeSealedLog) }
                #expect(compressed.segments > 50)
            }
            let body = try result.get()
            #expect(body.count == expected.count)
            #expect(body == expected)
            // A new reader, through the same server, reads the gzipped log whole.
            let again = try await Self.download(base + "/v1/workspaces/ws_1/runs/run_1/events?format=ndjson") {}
            #expect(try again.get() == expected)
        }
    }

    @Test func aDownloadWhileTheRunIsDeletedFailsVisiblyOrIsComplete() async throws {
        try await withGateway(segmentBytes: 256 << 10) { _, base, runs in
            let expected = try await Self.makeLargeRun(runs)
            let key = try RunKey(workspace: "ws_1", run: "run_1")
            let result = try await Self.download(base + "/v1/workspaces/ws_1/runs/run_1/events?format=ndjson") {
                let maintenance = Self.maintenance(runs)
                try await NIOThreadPool.singleton.runIfActive {
                    _ = try maintenance.moveToTrash(key)
                    try maintenance.emptyTrash()
                }
                try await runs.catalog.markLogsDeleted(workspace: "ws_1", id: "run_1", at: 1)
            }
            switch result {
            case .success(let body):
                // Allowed only if it is the whole log.
                #expect(body == expected, "a truncated download (\(body.count) of \(expected.count) bytes) ended cleanly")
            case .failure:
                break  // the client saw an incomplete transfer: the right outcome
            }
            // The server only had a few MB out when the files went: the transfer must have failed.
            #expect(throws: (any Error).self) { try result.get() }
            // Later readers are told the logs are gone.
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/v1/workspaces/ws_1/runs/run_1/events?format=ndjson"), timeout: .seconds(10))
            #expect(response.status == .gone)
            #expect(response.headers.first(name: "content-type") == "application/problem+json")
            _ = try await response.body.collect(upTo: 1 << 20)
        }
    }
}
