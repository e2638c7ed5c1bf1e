import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import RunlogCatalog
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Synchronization
import Testing

@testable import RunlogGateway

/// A run's feed and parked readers on an event loop whose clock the test moves: passes in
/// slices, events that arrive during a pass, and a loop that falls behind.
@Suite(.timeLimit(.minutes(1))) struct LiveFeedTests {
    @Test func aPassGoesOnWithWhatArrivedAndABackloggedLoopHoldsTheFeedBack() async throws {
        try await withRunService { runs in
            let run = try RunKey(workspace: "ws_1", run: "run_1")
            func append(_ n: Int) async throws {
                _ = try await runs.store.append(try EventBatch(ndjson: Array(#"{"type":"step.done","payload":{"n":\#(n)}}"#.utf8)), to: run)
            }
            try await append(1)

            // More readers than one slice, all on one loop whose scheduled tasks wait for the test.
            // Set up in one go on the loop, and what they are written is recorded as it goes: each
            // await on this loop is a hop that a busy test process makes slow.
            let feeds = LiveFeeds(runs: runs, logger: quietLogger, metrics: GatewayMetrics())
            let key = LiveFeed.Key(run: run, format: .sse)
            let loop = NIOAsyncTestingEventLoop()
            let channels = (0..<100).map { _ in NIOAsyncTestingChannel(loop: loop) }
            let wire = WrittenEvents(readers: channels.count)
            let parked = try await loop.executeInContext {
                try channels.enumerated().map { index, channel in
                    try channel.pipeline.syncOperations.addHandlers([WrittenEvents.Recorder(wire, reader: index), LiveSender()])
                    channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 9), promise: nil)
                    let sender = try channel.pipeline.syncOperations.handler(type: LiveSender.self)
                    return sender.park(
                        LiveSubscription(position: 1, types: nil), in: feeds, key: key, signal: StreamSignal(),
                        heartbeat: 1_000_000_000_000, endsAt: .max
                    )
                }
            }
            #expect(parked.allSatisfy { $0 })
            let feed = try #require(feeds.feed(key))

            // The first event starts a pass: its first slice is written at once, the next waits
            // for the loop's clock. Every later event is one more batch the pass has not finished.
            // One batch per event: each is appended once the feed has handed out the one before.
            var last = 1
            while last < LoopSweep.backlogBatches + 1 {
                last += 1
                try await append(last)
                try await waitUntil("the feed to hand out event \(last)") { feed.position >= last }
                #expect(!feed.isWaitingForLoops, "the feed waits with only \(last - 1) batches held")
            }
            // One more than the loop may hold: the feed hands it out, then waits for the loop.
            last += 1
            try await append(last)
            try await waitUntil("the feed to wait for its loop (at \(feed.position))") { feed.isWaitingForLoops }
            #expect(feed.position == Int64(last))
            var written = wire.ids
            #expect(written.filter { $0 == [2] }.count == 64, "one slice had the first batch")
            #expect(written.filter { $0.isEmpty }.count == 36, "the rest of the pass waits for the clock")

            // More events while the feed waits; then the loop's clock moves and the passes end.
            for n in (last + 1)...(last + 5) { try await append(n) }
            last += 5
            let deadline = ContinuousClock.now + .seconds(30)
            while feed.position < last || written.contains(where: { ($0.last ?? 0) < Int64(last) }) {
                try Task.checkCancellation()
                guard ContinuousClock.now < deadline else {
                    throw WaitTimedOut(description: "readers still short of \(last): \(written.map { $0.last ?? 0 }), feed at \(feed.position), waiting: \(feed.isWaitingForLoops)")
                }
                await loop.advanceTime(by: .milliseconds(1))
                written = wire.ids
            }
            // Every reader has every event once, in order: those of the first slice in later passes,
            // the others in the first pass with everything that had arrived before their turn.
            for ids in written { #expect(ids == Array(2...Int64(last))) }
            #expect(!feed.isWaitingForLoops)

            for channel in channels { _ = try await channel.finish() }
        }
    }
}

/// What each reader's connection has been written, by event id.
final class WrittenEvents: Sendable {
    private let written: Mutex<[[Int64]]>

    init(readers: Int) {
        written = Mutex(Array(repeating: [], count: readers))
    }

    var ids: [[Int64]] { written.withLock { $0 } }

    /// At the head of a reader's pipeline: records the SSE ids of each body part, and writes nothing on.
    final class Recorder: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = HTTPResponsePart

        let events: WrittenEvents
        let reader: Int

        init(_ events: WrittenEvents, reader: Int) {
            self.events = events
            self.reader = reader
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .body(let bytes) = unwrapOutboundIn(data) {
                let ids = String(buffer: bytes).split(separator: "\n").compactMap { $0.hasPrefix("id: ") ? Int64($0.dropFirst(4)) : nil }
                events.written.withLock { $0[reader] += ids }
            }
            promise?.succeed(())
        }
    }
}
