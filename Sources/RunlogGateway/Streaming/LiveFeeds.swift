import Logging
import NIOCore
import RunlogRuns
import RunlogStorage
import Synchronization

/// The gateway's live feeds: one per run and format while it has parked readers.
final class LiveFeeds: Sendable {
    private let runs: RunService
    private let logger: Logger
    /// Where parked readers count their falls behind.
    let metrics: GatewayMetrics
    private let feeds = Mutex<[LiveFeed.Key: LiveFeed]>([:])

    init(runs: RunService, logger: Logger, metrics: GatewayMetrics) {
        self.runs = runs
        self.logger = logger
        self.metrics = metrics
    }

    /// How many runs (and formats) have a feed running.
    var count: Int { feeds.withLock { $0.count } }

    /// The feed of `key`, if it has readers.
    func feed(_ key: LiveFeed.Key) -> LiveFeed? { feeds.withLock { $0[key] } }

    /// How many streams are parked on the feeds.
    var readerCount: Int { feeds.withLock { $0.values.reduce(0) { $0 + $1.readerCount } } }

    /// Adds a reader at `position` to its run's feed, starting the feed if there is none; nil if
    /// the feed has passed `position`.
    func join(_ key: LiveFeed.Key, sender: LiveSender, on loop: any EventLoop, at position: Int64) -> LiveFeed? {
        let (feed, started) = feeds.withLock { feeds -> (LiveFeed?, Bool) in
            if let feed = feeds[key] {
                return (feed.add(sender, on: loop, at: position) ? feed : nil, false)
            }
            let feed = LiveFeed(key: key, position: position, logger: logger)
            _ = feed.add(sender, on: loop, at: position)
            feeds[key] = feed
            return (feed, true)
        }
        if started, let feed {
            let runs = self.runs
            Task { await feed.run(runs: runs) { [weak self] failed in self?.forget(failed) } }
        }
        return feed
    }

    /// Removes a reader from `feed`; the last one out stops it.
    func leave(_ feed: LiveFeed, sender: LiveSender, on loop: any EventLoop) {
        // Under the registry's lock, so that nobody joins a feed that is stopping.
        feeds.withLock { feeds in
            if feed.remove(sender, on: loop), feeds[feed.key] === feed { feeds[feed.key] = nil }
        }
    }

    private func forget(_ feed: LiveFeed) {
        feeds.withLock { feeds in
            if feeds[feed.key] === feed { feeds[feed.key] = nil }
        }
    }
}
