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
/// writes new events from the connection's event loop while no task runs for the stream, until
/// it is needed again (a heartbeat, a stop, a full connection); a task then reads on from the
/// position the feed reached: from the store's in-memory tail of the run, or from the files
/// when it is behind what that tail holds, until caught up again (``ParkingStream``). Either way
/// a reader costs a position and at most one chunk in flight, never a queue.
final class EventStreamer: Sendable {
    /// What a stream needs of the server besides the run's log.
    struct Services: Sendable {
        let runs: RunService
        let configuration: GatewayConfiguration
        let metrics: GatewayMetrics
        let alarms: StreamAlarms
        let feeds: LiveFeeds
        let logger: Logger
    }

    let services: Services
    let key: RunKey
    let query: EventQuery
    /// The response's connection: live streams park on it, and whole downloads of plain
    /// files go out through it with sendfile.
    let connection: ResponseConnection
    /// Send the whole log as one gzip stream (a finite, unfiltered NDJSON download).
    let gzip: Bool
    /// A live stream ends at this moment (``StreamAlarms/now()``): its token's expiry.
    let endsAt: Int64
    /// Wakes the live loop when it waits (new lines, a stop, a heartbeat or expiry due).
    let signal = StreamSignal()

    private var runs: RunService { services.runs }
    private var metrics: GatewayMetrics { services.metrics }

    init(services: Services, key: RunKey, query: EventQuery, connection: ResponseConnection, gzip: Bool, endsAt: Int64) {
        self.services = services
        self.key = key
        self.query = query
        self.connection = connection
        self.gzip = gzip
        self.endsAt = endsAt
    }

    /// A caught-up live stream parks on its run's feed; one with a limit waits in its task
    /// instead, since a feed counts no limits.
    private var parksOnFeed: Bool { query.isLive && query.limit == nil }

    /// A whole, uncompressed download of plain files goes out with sendfile.
    private var sendsFiles: Bool {
        query.isWholeDownload && !gzip && query.after == 0
    }

    /// The stream's label in the readers metric.
    private var metricLabel: String {
        query.format == .sse ? "sse" : (query.follow ? "ndjson_follow" : "ndjson")
    }

    /// Where a stream stands: its position in the run and what it has sent.
    struct Progress {
        var position: Int64
        var sent = 0
        var sawCompletion = false
        /// When the stream last wrote (``StreamAlarms/now()``): heartbeats go out after a quiet interval.
        var lastWrite = StreamAlarms.now()

        /// Takes up where the connection's sender left off.
        mutating func resume(from handoff: LiveSender.Handoff) {
            position = handoff.position
            sawCompletion = sawCompletion || handoff.sawCompletion
            if let written = handoff.lastWrite { lastWrite = max(lastWrite, written) }
        }
    }

    /// Writes the response body and ends it. A live stream that parks takes its connection
    /// over instead (``ConnectionHandover``), and ends both later on its own (``ParkingStream``).
    func respond(to writer: inout any ResponseBodyWriter) async throws {
        metrics.readers(metricLabel, change: 1)
        if query.isLive { services.alarms.add(signal) }
        if parksOnFeed, let handover = connection.takeOver() {
            await ParkingStream.start(self, writer: writer, handover: handover)
            return
        }
        defer { streamEnded() }
        var failure: (any Error)?
        var progress = Progress(position: query.after)
        do {
            if query.isLive {
                try await streamWaiting(to: &writer, progress: &progress)
            } else {
                // A download ends by itself; a vanished client makes the next write fail.
                try await download(to: &writer, progress: &progress)
            }
        } catch {
            failure = error
        }
        try await end(&writer, at: progress, after: failure)
    }

    /// Ends the response, or throws to drop the connection instead.
    func end(_ writer: inout any ResponseBodyWriter, at progress: Progress, after failure: (any Error)?) async throws {
        if failure == nil, query.format == .sse, query.types != nil, progress.sawCompletion {
            // A filtered stream may not have sent the run's last event, so its client's
            // Last-Event-ID would name an earlier one, and a reconnection would get a stream of
            // nothing instead of the 204 that stops EventSource. A frame with an id and no data
            // moves the client's Last-Event-ID to the end of the log without firing an event.
            try await writer.write(ByteBuffer(string: "id: \(progress.position)\n\n"))
        }
        if let failure {
            // The stream is under way, so the status cannot change any more; operators see why.
            services.logger.info("an event stream ended early", metadata: ["run": "\(key)", "error": "\(failure)"])
            // NDJSON has no end marker but the end of the body: finishing it would present a
            // shortened log as complete, so the connection is dropped instead and the client
            // sees an incomplete transfer. SSE ends cleanly: EventSource resumes by Last-Event-ID.
            if query.format == .ndjson { throw failure }
        }
        try await writer.finish(nil)
    }

    /// Undoes what ``respond(to:)`` counted and registered when the stream began.
    func streamEnded() {
        metrics.readers(metricLabel, change: -1)
        if query.isLive { services.alarms.remove(signal) }
    }

    /// The whole log: gzipped, as its files, or read line by line.
    private func download(to writer: inout any ResponseBodyWriter, progress: inout Progress) async throws {
        if gzip {
            try await sendGzipped(to: &writer)
            return
        }
        if sendsFiles, try await sendFiles(to: &writer) { return }
        var caughtUp = false
        _ = try await advance(to: &writer, progress: &progress, caughtUp: &caughtUp)
    }

    /// A live stream that waits in its task between reads, for one continuation rung by the run
    /// (new lines) or by the signal: the client left or the server is shutting down (the
    /// connection sees both), or an alarm is due.
    private func streamWaiting(to writer: inout any ResponseBodyWriter, progress: inout Progress) async throws {
        _ = try await connection.attach(watching: signal)
        try await writePreamble(to: &writer)
        var caughtUp = false
        while try await advance(to: &writer, progress: &progress, caughtUp: &caughtUp) {
            _ = try await runs.waitForEvents(of: key, after: progress.position, orUntil: signal.wakeup)
        }
    }

    /// SSE starts with a comment naming the run (a created run's generated id, too) and the
    /// reconnection delay.
    func writePreamble(to writer: inout any ResponseBodyWriter) async throws {
        guard query.format == .sse else { return }
        let opening = ": runlog event stream: workspace \(key.workspaceID), run \(key.runID)\nretry: \(services.configuration.retryMilliseconds)\n\n"
        try await writer.write(ByteBuffer(string: opening))
    }

    /// Sends what is new since the position (from the store's tail once caught up, else from
    /// the files) and, on a live stream, a heartbeat when one is due, setting the signal's next
    /// alarm; false when the stream should end.
    @inline(never)
    func advance(to writer: inout any ResponseBodyWriter, progress: inout Progress, caughtUp: inout Bool) async throws -> Bool {
        if caughtUp, let recent = try await runs.recentEvents(of: key, after: progress.position) {
            for chunk in recent where try await send(chunk, to: &writer, progress: &progress) { return false }
        } else {
            // Parked streams are counted when their connection fills (see LiveSender).
            if caughtUp, !parksOnFeed { metrics.slowReaderFellBack() }
            if try await replay(to: &writer, progress: &progress) { return false }
            caughtUp = query.isLive
        }
        // The stream ends once run.completed has been sent (or passed by the type filter).
        guard query.isLive, !progress.sawCompletion, !signal.isStopped else { return false }
        let now = StreamAlarms.now()
        if now >= endsAt { return false }
        let heartbeat = StreamAlarms.nanoseconds(services.configuration.heartbeatInterval)
        if now - progress.lastWrite >= heartbeat {
            if try await sendHeartbeat(to: &writer, progress: progress) { return false }
            progress.lastWrite = now
        }
        signal.wake(at: min(progress.lastWrite + heartbeat, endsAt))
        return true
    }

    /// Parks the caught-up stream on its run's feed, which then writes its new events until the
    /// signal rings (a stop, an alarm, or the sender handing the stream back); false if the feed
    /// is ahead of the position, so the stream reads up to it first.
    func park(with connection: LiveConnection, progress: Progress) async throws -> Bool {
        let subscription = LiveSubscription(position: progress.position, types: query.types)
        let heartbeat = StreamAlarms.nanoseconds(services.configuration.heartbeatInterval)
        let (key, signal, endsAt, feeds) = (LiveFeed.Key(run: self.key, format: query.format), self.signal, self.endsAt, services.feeds)
        return try await connection.park(subscription, in: feeds, key: key, signal: signal, heartbeat: heartbeat, endsAt: endsAt)
    }

    /// The whole log as one gzip stream.
    @inline(never)
    private func sendGzipped(to writer: inout any ResponseBodyWriter) async throws {
        for try await bytes in runs.gzippedEvents(of: key, after: query.after) { try await writer.write(bytes) }
    }

    /// Sends the whole log as its plain files, with sendfile; false (having sent nothing) when
    /// it has archived segments or its files moved meanwhile.
    @inline(never)
    private func sendFiles(to writer: inout any ResponseBodyWriter) async throws -> Bool {
        guard let files = try await runs.plainFiles(of: key) else { return false }
        try await connection.sendFiles(files, through: &writer)
        metrics.sentFiles(files.filter { $0.length > 0 }.count)
        return true
    }

    /// Sends the lines the files hold after the position; true once the limit is reached.
    @inline(never)
    private func replay(to writer: inout any ResponseBodyWriter, progress: inout Progress) async throws -> Bool {
        for try await chunk in runs.events(of: key, after: progress.position) where try await send(chunk, to: &writer, progress: &progress) {
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
            return try await runs.lastSequence(of: key) <= progress.position
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
            if type == LifecycleEvent.completed { progress.sawCompletion = true }
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
