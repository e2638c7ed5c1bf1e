import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import RunlogStorage
import Testing

@testable import RunlogGateway

/// A run's feed and parked readers on an event loop whose clock the test moves: passes in
/// slices, events that arrive during a pass, and a loop that falls behind.
@Suite(.timeLimit(.minutes(1))) struct LiveFeedTests {
    @Test func aPassGoesOnWithWhatArrivedAndABackloggedLoopHoldsTheFeedBack() async throws {
        let root = NSTemporaryDirectory() + "runlog-feed-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer {
            do { try FileManager.default.removeItem(atPath: root) } catch { Issue.record("cleanup: \(error)") }
        }
        var configuration = EventStoreConfiguration(root: root)
        configuration.durability = .flush
        let logger = Logger(label: "test")
        let store = EventStore(configuration: configuration, logger: logger)
        let run = try RunKey(workspace: "ws_1", run: "run_1")
        func append(_ n: Int) async throws {
            _ = try await store.append(try EventBatch(ndjson: Array(#"{"type":"step.done","payload":{"n":\#(n)}}"#.utf8)), to: run)
        }
        try await append(1)

        // More readers than one slice, all on one loop whose scheduled tasks wait for the test.
        let feeds = LiveFeeds(store: store, logger: logger, metrics: GatewayMetrics())
        let key = LiveFeed.Key(run: run, format: .sse)
        let loop = NIOAsyncTestingEventLoop()
        var channels: [NIOAsyncTestingChannel] = []
        for _ in 0..<100 {
            let channel = try await NIOAsyncTestingChannel(handler: LiveSender(), loop: loop)
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).get()
            let parked = try await loop.submit {
                let sender = try channel.pipeline.syncOperations.handler(type: LiveSender.self)
                return sender.park(
                    LiveSubscription(position: 1, types: nil), in: feeds, key: key, signal: StreamSignal(),
                    heartbeat: 1_000_000_000_000, endsAt: .max
                )
            }.get()
            #expect(parked)
            channels.append(channel)
        }
        let feed = try #require(feeds.feed(key))

        // The first event starts a pass: its first slice is written at once, the next waits
        // for the loop's clock. Every later event is one more batch the pass has not finished.
        // One batch per event: each is appended once the feed has handed out the one before.
        var last = 1
        while last < LoopSweep.backlogBatches + 1 {
            last += 1
            try await append(last)
            try await waitUntil { feed.position >= last }
            #expect(!feed.isWaitingForLoops, "the feed waits with only \(last - 1) batches held")
        }
        // One more than the loop may hold: the feed hands it out, then waits for the loop.
        last += 1
        try await append(last)
        try await waitUntil { feed.isWaitingForLoops }
        #expect(feed.position == Int64(last))
        var written: [[Int64]] = []
        for channel in channels { written.append(try await Self.ids(from: channel)) }
        #expect(written.filter { $0 == [2] }.count == 64, "one slice had the first batch")
        #expect(written.filter { $0.isEmpty }.count == 36, "the rest of the pass waits for the clock")

        // More events while the feed waits; then the loop's clock moves and the passes end.
        for n in (last + 1)...(last + 5) { try await append(n) }
        last += 5
        while feed.position < last || written.contains(where: { ($0.last ?? 0) < Int64(last) }) {
            try Task.checkCancellation()
            await loop.advanceTime(by: .milliseconds(1))
            for (index, channel) in channels.enumerated() { written[index] += try await Self.ids(from: channel) }
            await Task.yield()
        }
        // Every reader has every event once, in order: those of the first slice in later passes,
        // the others in the first pass with everything that had arrived before their turn.
        for ids in written { #expect(ids == Array(2...Int64(last))) }
        #expect(!feed.isWaitingForLoops)

        for channel in channels { _ = try await channel.finish() }
        await store.shutdown()
    }

    /// The event ids in what `channel` has been written since the last call.
    static func ids(from channel: NIOAsyncTestingChannel) async throws -> [Int64] {
        var text = ""
        while let part = try await channel.readOutbound(as: HTTPResponsePart.self) {
            guard case .body(let bytes) = part else { continue }
            text += String(buffer: bytes)
        }
        return text.split(separator: "\n").compactMap { $0.hasPrefix("id: ") ? Int64($0.dropFirst(4)) : nil }
    }
}
