import Hummingbird
import Logging
import NIOCore
import RunlogCatalog
import RunlogRuns
import RunlogStorage

/// Writes a run's events to a response: replayed from the files, then live.
///
/// Replay and live are one loop over one position, so they join with no gap and no duplicate
/// whatever appends race them. Once caught up, a stream parks on its run's ``LiveFeed``, which
/// writes new events from the connection's event loop until the stream's task is needed again
/// (a heartbeat, a stop, a full connection); the task then reads on from the position the feed
/// reached: from the store's in-memory tail of the run, or from the files when it is behind
/// what that tail holds, until caught up again. Either way a reader costs a position and at
/// most one chunk in flight, never a queue.
struct EventStreamer: Sendable {
    let runs: RunService
    let key: RunKey
    let query: EventQuery
    let configuration: GatewayConfiguration
    /// Wakes the live loop when it waits (new lines, a stop, a heartbeat or expiry due).
    let signal: StreamSignal
    let metrics: GatewayMetrics
    /// Send the whole log as one gzip stream (a finite, unfiltered NDJSON download).
    var gzip = false
    /// A live stream ends at this moment (``StreamAlarms/now()``): its token's expiry.
    var endsAt = Int64.max
    /// Send a whole log of plain files through this connection's ``FileRegionSender``.
    var filesTo: (any Channel)?
    /// Once caught up, park with this connection's ``LiveSender`` on the run's feed.
    var parking: (connection: LiveSender.Handle, feeds: LiveFeeds)?

    /// Where this stream parks once caught up; nil if it waits in its task (a feed counts
    /// no limits, so a stream with one does).
    private var feedParking: (connection: LiveSender.Handle, feeds: LiveFeeds)? {
        query.limit == nil ? parking : nil
    }

    /// Where a stream stands: its position in the run and what it has sent.
    struct Progress {
        var position: Int64
        var sent = 0
        var sawCompletion = false
        /// When the stream last wrote (``StreamAlarms/now()``): heartbeats go out after a quiet interval.
        var lastWrite = StreamAlarms.now()
    }

    func stream(to writer: inout any ResponseBodyWriter) async throws {
        let live = query.format == .sse || query.follow
        if query.format == .sse {
            try await writer.write(ByteBuffer(string: ": runlog event stream\nretry: \(configuration.retryMilliseconds)\n\n"))
        }
        if gzip {
            try await sendGzipped(to: &writer)
            return
        }
        if let channel = filesTo, try await sendFiles(through: channel, to: &writer) { return }
        // The live loop keeps its own frame small: every idle reader holds it while it waits, so
        // the file reading lives in functions of its own whose frames go when they return.
        var progress = Progress(position: query.after)
        var caughtUp = false
        let heartbeat = StreamAlarms.nanoseconds(configuration.heartbeatInterval)
        while true {
            if caughtUp, let recent = try await runs.store.recentEvents(of: key, after: progress.position) {
                for chunk in recent where try await send(chunk, to: &writer, progress: &progress) { return }
            } else {
                // Parked streams are counted when their connection fills (see LiveSender).
                if caughtUp, feedParking == nil { metrics.slowReaderFellBack() }
                if try await replay(to: &writer, progress: &progress) { return }
                caughtUp = live
            }
            // The stream ends once run.completed has been sent (or passed by the type filter).
            guard live, !progress.sawCompletion, !signal.isStopped else { return }
            let now = StreamAlarms.now()
            if now >= endsAt { return }
            if now - progress.lastWrite >= heartbeat {
                if try await sendHeartbeat(to: &writer, progress: progress) { return }
                progress.lastWrite = now
            }
            signal.wake(at: min(progress.lastWrite + heartbeat, endsAt))
            if let parking = feedParking {
                // The feed writes new events from the event loop until this task is needed.
                try await park(with: parking.connection, on: parking.feeds, heartbeat: heartbeat, progress: &progress)
            } else {
                // One continuation, rung by the run (new lines) or by the signal (stop, alarms).
                _ = try await runs.store.waitForEvents(of: key, after: progress.position, orUntil: signal.wakeup)
            }
        }
    }

    /// Parks the caught-up stream on its run's feed until the signal rings (a stop, an alarm, or
    /// the sender handing it back), then takes up where the sender left off. Returns at once if
    /// the feed is ahead: the loop reads up to it first.
    @inline(never)
    private func park(with connection: LiveSender.Handle, on feeds: LiveFeeds, heartbeat: Int64, progress: inout Progress) async throws {
        let subscription = LiveSubscription(position: progress.position, types: query.types)
        let (key, signal, endsAt) = (LiveFeed.Key(run: self.key, format: query.format), self.signal, self.endsAt)
        guard try await connection.run({ $0.park(subscription, in: feeds, key: key, signal: signal, heartbeat: heartbeat, endsAt: endsAt) }) else { return }
        try await signal.wakeup.wait()
        guard let handoff = try await connection.run({ $0.unpark() }) else { return }
        progress.position = handoff.position
        progress.sawCompletion = progress.sawCompletion || handoff.sawCompletion
        if let written = handoff.lastWrite { progress.lastWrite = max(progress.lastWrite, written) }
    }

    /// The whole log as one gzip stream.
    @inline(never)
    private func sendGzipped(to writer: inout any ResponseBodyWriter) async throws {
        for try await bytes in runs.store.gzippedEvents(of: key, after: query.after) { try await writer.write(bytes) }
    }

    /// Sends the whole log as its plain files, with sendfile; false (having sent nothing) when
    /// it has archived segments or its files moved meanwhile.
    @inline(never)
    private func sendFiles(through channel: any Channel, to writer: inout any ResponseBodyWriter) async throws -> Bool {
        guard let files = try await runs.store.plainFiles(of: key) else { return false }
        let offers = files.filter { $0.length > 0 }.map { (FileRegionSender.nextID(), $0) }
        // Offered before their tickets are written: both reach the event loop in this order.
        try await channel.eventLoop.submit {
            let sender = try channel.pipeline.syncOperations.handler(type: FileRegionSender.self)
            for (id, file) in offers { sender.offer(file, id: id) }
        }.get()
        for (id, _) in offers { try await writer.write(FileRegionSender.ticket(id)) }
        metrics.sentFiles(offers.count)
        return true
    }

    /// Sends the lines the files hold after the position; true once the limit is reached.
    @inline(never)
    private func replay(to writer: inout any ResponseBodyWriter, progress: inout Progress) async throws -> Bool {
        for try await chunk in runs.store.events(of: key, after: progress.position) where try await send(chunk, to: &writer, progress: &progress) {
            return true
        }
        return false
    }

    /// A heartbeat comment on SSE; on NDJSON, which has none, true when the run has completed
    /// meanwhile and the stream should end.
    @inline(never)
    private func sendHeartbeat(to writer: inout any ResponseBodyWriter, progress: Progress) async throws -> Bool {
        guard query.format == .sse else {
            guard try await runs.run(key).status.isTerminal else { return false }
            return try await runs.store.lastSequence(of: key) <= progress.position
        }
        try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
        return false
    }

    /// Writes one chunk's wanted lines; true once the limit is reached.
    @inline(never)
    private func send(_ chunk: EventChunk, to writer: inout any ResponseBodyWriter, progress: inout Progress) async throws -> Bool {
        var output = ByteBuffer()
        var done = false
        chunk.forEachEvent { sequence, type, line in
            guard !done, sequence > progress.position else { return }
            progress.position = sequence
            if type == "run.completed" { progress.sawCompletion = true }
            guard query.types?.matches(type) ?? true else { return }
            query.format.writeFrame(sequence: sequence, type: type, line: line, to: &output)
            progress.sent += 1
            if let limit = query.limit, progress.sent >= limit { done = true }
        }
        if output.readableBytes > 0 {
            try await writer.write(output)
            progress.lastWrite = StreamAlarms.now()
        }
        return done
    }
}
