import Logging
import NIOCore
import RunlogStorage
import Synchronization

/// One run's new events for its parked live readers of one format: read once from the store,
/// encoded once, and handed to the readers on their connections' event loops.
///
/// The feed waits for its next batch until every loop has written the last one, so a busy
/// server sends fewer, larger batches rather than queueing work on its loops.
final class LiveFeed: Sendable {
    struct Key: Hashable, Sendable {
        let run: RunKey
        let format: EventQuery.Format
    }

    private struct Group {
        let loop: any EventLoop
        var readers: [ObjectIdentifier: NIOLoopBound<LiveSender>] = [:]
    }

    private struct State {
        /// The last sequence handed out: a reader joins only at or past it.
        var position: Int64
        /// Readers by event loop; a loop with none has no group.
        var groups: [ObjectIdentifier: Group] = [:]
        var stopped = false
    }

    let key: Key
    private let logger: Logger
    private let state: Mutex<State>
    private let wakeup = Wakeup()

    init(key: Key, position: Int64, logger: Logger) {
        self.key = key
        self.logger = logger
        self.state = Mutex(State(position: position))
    }

    var readerCount: Int { state.withLock { $0.groups.values.reduce(0) { $0 + $1.readers.count } } }

    /// Adds a reader that has passed `position` (on `loop`); false if the feed has passed more,
    /// since the reader would miss events, or has stopped.
    func add(_ sender: LiveSender, on loop: any EventLoop, at position: Int64) -> Bool {
        state.withLock { state in
            guard !state.stopped, position >= state.position else { return false }
            let id = ObjectIdentifier(loop)
            state.groups[id, default: Group(loop: loop)].readers[ObjectIdentifier(sender)] = NIOLoopBound(sender, eventLoop: loop)
            return true
        }
    }

    /// Removes a reader; true if it was the last one, which stops the feed.
    func remove(_ sender: LiveSender, on loop: any EventLoop) -> Bool {
        let last = state.withLock { state -> Bool in
            let id = ObjectIdentifier(loop)
            state.groups[id]?.readers[ObjectIdentifier(sender)] = nil
            if state.groups[id]?.readers.isEmpty == true { state.groups[id] = nil }
            if state.groups.isEmpty { state.stopped = true }
            return state.stopped
        }
        if last { wakeup.ring() }
        return last
    }

    /// Reads and hands out the run's new events until the last reader leaves or reading fails.
    func run(store: EventStore, onFailure: @Sendable (LiveFeed) -> Void) async {
        var position = state.withLock { $0.position }
        do {
            while !state.withLock({ $0.stopped }) {
                _ = try await store.waitForEvents(of: key.run, after: position, orUntil: wakeup)
                if let recent = try await store.recentEvents(of: key.run, after: position) {
                    // Everything since the last batch in one: a busy feed sends fewer, larger writes.
                    position = await publish(recent, after: position)
                } else {
                    // Behind what the store keeps in memory (a stall): the files have the rest.
                    for try await chunk in store.events(of: key.run, after: position) {
                        position = await publish(CollectionOfOne(chunk), after: position)
                    }
                }
            }
        } catch {
            logger.warning("a live feed stopped; its readers read on by themselves", metadata: ["run": "\(key.run)", "error": "\(error)"])
            let groups = state.withLock { state -> [Group] in
                state.stopped = true
                return Array(state.groups.values)
            }
            onFailure(self)
            for group in groups {
                group.loop.execute {
                    for reader in group.readers.values { reader.value.feedEnded(self) }
                }
            }
        }
    }

    /// Hands the events of `chunks` after `position` to every reader; returns the new position.
    private func publish(_ chunks: some Sequence<EventChunk>, after position: Int64) async -> Int64 {
        let frames = LiveFrames(chunks, after: position, format: key.format)
        guard !frames.events.isEmpty else { return position }
        let groups = state.withLock { state -> [Group] in
            state.position = frames.last
            return Array(state.groups.values)
        }
        let now = StreamAlarms.now()
        let deliveries = groups.map { group in
            let frames = groups.count > 1 ? frames.copied() : frames
            return group.loop.submit {
                for reader in group.readers.values { reader.value.deliver(frames, from: self, now: now) }
            }
        }
        for delivery in deliveries {
            do {
                try await delivery.get()
            } catch {
                // Only a loop that has shut down fails a submit; its readers are gone with it.
                logger.debug("a live delivery did not run", metadata: ["run": "\(key.run)", "error": "\(error)"])
            }
        }
        return frames.last
    }
}
