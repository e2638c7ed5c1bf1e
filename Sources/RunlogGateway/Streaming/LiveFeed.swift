import Logging
import NIOCore
import RunlogRuns
import RunlogStorage
import Synchronization

/// One run's new events for its parked live readers of one format: read once from the store,
/// encoded once, and handed to the readers on their connections' event loops.
///
/// Each loop sweeps its readers (``LoopSweep``) in slices, so that other connections' work
/// runs between them, and each reader gets all that arrived before its turn in one write.
/// The feed reads on while the loops sweep, up to a bounded backlog per loop.
final class LiveFeed: Sendable {
    struct Key: Hashable, Sendable {
        let run: RunKey
        let format: EventQuery.Format
    }

    private struct Group {
        let loop: any EventLoop
        /// Tells this group from a later one on the same loop, whose passes are its own.
        let id: UInt64
        var readers: [ObjectIdentifier: NIOLoopBound<LiveSender>] = [:]
        var sweep = LoopSweep()
    }

    private struct State {
        /// The last sequence handed out: a reader joins only at or past it.
        var position: Int64
        /// Readers by event loop; a loop with none has no group.
        var groups: [ObjectIdentifier: Group] = [:]
        var lastGroupID: UInt64 = 0
        var stopped = false
        /// The feed, waiting for loops to work their backlogs off.
        var waiting: CheckedContinuation<Void, Never>?

        /// Whether the feed must wait before it adds more: a loop is backlogged, and the feed runs.
        var mustWait: Bool { !stopped && groups.values.contains { $0.sweep.isBacklogged } }

        /// The waiting feed, if it may go on.
        mutating func feedToResume() -> CheckedContinuation<Void, Never>? {
            guard !mustWait else { return nil }
            defer { waiting = nil }
            return waiting
        }
    }

    /// Readers one slice of a pass writes before the loop runs other work.
    private static let sliceSize = 64
    /// What the next slice waits. A task the loop is given while it runs its tasks runs in the
    /// same go, before the loop looks at its sockets again; one due a moment later lets the
    /// loop serve its other connections' reads and writes between slices.
    private static let pause = TimeAmount.microseconds(20)

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

    /// The last sequence handed to the loops.
    var position: Int64 { state.withLock { $0.position } }

    /// Whether the feed waits for a backlogged loop's passes before reading on.
    var isWaitingForLoops: Bool { state.withLock { $0.waiting != nil } }

    /// Adds a reader that has passed `position` (on `loop`); false if the feed has passed more,
    /// since the reader would miss events, or has stopped.
    func add(_ sender: LiveSender, on loop: any EventLoop, at position: Int64) -> Bool {
        state.withLock { state in
            guard !state.stopped, position >= state.position else { return false }
            let id = ObjectIdentifier(loop)
            if state.groups[id] == nil {
                state.lastGroupID += 1
                state.groups[id] = Group(loop: loop, id: state.lastGroupID)
            }
            state.groups[id]!.readers[ObjectIdentifier(sender)] = NIOLoopBound(sender, eventLoop: loop)
            return true
        }
    }

    /// Removes a reader; true if it was the last one, which stops the feed.
    func remove(_ sender: LiveSender, on loop: any EventLoop) -> Bool {
        let (last, feed) = state.withLock { state in
            let id = ObjectIdentifier(loop)
            state.groups[id]?.readers[ObjectIdentifier(sender)] = nil
            if state.groups[id]?.readers.isEmpty == true { state.groups[id] = nil }
            if state.groups.isEmpty { state.stopped = true }
            return (state.stopped, state.feedToResume())
        }
        feed?.resume()
        if last { wakeup.ring() }
        return last
    }

    /// Reads and hands out the run's new events until the last reader leaves or reading fails.
    func run(runs: RunService, onFailure: @Sendable (LiveFeed) -> Void) async {
        var position = state.withLock { $0.position }
        do {
            while !state.withLock({ $0.stopped }) {
                _ = try await runs.waitForEvents(of: key.run, after: position, orUntil: wakeup)
                if let recent = try await runs.recentEvents(of: key.run, after: position) {
                    // Everything since the last batch in one: a busy feed sends fewer, larger writes.
                    position = await publish(recent, after: position)
                } else {
                    // Behind what the store keeps in memory (a stall): the files have the rest.
                    for try await chunk in runs.events(of: key.run, after: position) {
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

    /// Hands the events of `chunks` after `position` to every loop's readers; returns the new
    /// position once no loop is backlogged.
    private func publish(_ chunks: some Sequence<EventChunk>, after position: Int64) async -> Int64 {
        let frames = LiveFrames(chunks, after: position, format: key.format)
        guard !frames.events.isEmpty else { return position }
        let passes = state.withLock { state -> [(loop: any EventLoop, id: UInt64)] in
            state.position = frames.last
            var passes: [(loop: any EventLoop, id: UInt64)] = []
            let copies = state.groups.count > 1
            for key in Array(state.groups.keys) where state.groups[key]!.sweep.add(copies ? frames.copied() : frames) {
                passes.append((state.groups[key]!.loop, state.groups[key]!.id))
            }
            return passes
        }
        for pass in passes {
            pass.loop.execute { self.sweep(on: pass.loop, group: pass.id) }
        }
        guard state.withLock({ $0.mustWait }) else { return frames.last }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            // Checked again: a pass may have ended since.
            let goOn = state.withLock { state -> Bool in
                guard state.mustWait else { return true }
                state.waiting = continuation
                return false
            }
            if goOn { continuation.resume() }
        }
        return frames.last
    }

    /// Starts a pass over the readers of group `id` on `loop` (on that loop).
    private func sweep(on loop: any EventLoop, group id: UInt64) {
        let readers = state.withLock { state -> [NIOLoopBound<LiveSender>]? in
            guard let group = state.groups[ObjectIdentifier(loop)], group.id == id else { return nil }
            return Array(group.readers.values)
        }
        // A group that has gone (its readers left) has no pass to make.
        guard let readers else { return }
        sweep(readers, from: 0, on: loop, group: id)
    }

    /// Writes the readers from `start` on, a slice at a time, each what it lacks of the batches
    /// there are at its turn; then ends the pass.
    private func sweep(_ readers: [NIOLoopBound<LiveSender>], from start: Int, on loop: any EventLoop, group id: UInt64) {
        let batches = state.withLock { state -> [LiveFrames]? in
            guard let group = state.groups[ObjectIdentifier(loop)], group.id == id else { return nil }
            return group.sweep.batches
        }
        guard let batches else { return }
        let now = StreamAlarms.now()
        let end = min(start + Self.sliceSize, readers.count)
        for reader in readers[start..<end] { reader.value.deliver(batches, from: self, now: now) }
        if end < readers.count {
            loop.scheduleTask(in: Self.pause) { self.sweep(readers, from: end, on: loop, group: id) }
            return
        }
        let (again, feed) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            let key = ObjectIdentifier(loop)
            guard state.groups[key]?.id == id else { return (false, nil) }
            let again = state.groups[key]!.sweep.passEnded()
            return (again, state.feedToResume())
        }
        feed?.resume()
        if again {
            loop.scheduleTask(in: Self.pause) { self.sweep(on: loop, group: id) }
        }
    }
}
