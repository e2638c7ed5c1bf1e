import Hummingbird
import Logging
import NIOCore
import RunlogCatalog
import RunlogRuns
import RunlogStorage

/// Writes a run's events to a response: replayed from the files, then live.
///
/// Replay and live are one loop over one position, so they join with no gap and no duplicate
/// whatever appends race them. Once caught up, the reader takes new lines from the store's
/// in-memory tail of the run; when it falls behind what that tail holds (a slow client, a
/// burst), it reads the files again until caught up, then rejoins. Either way a reader costs a
/// position and at most one chunk in flight, never a queue.
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

    func stream(to writer: inout any ResponseBodyWriter) async throws {
        let sse = query.format == .sse
        let live = sse || query.follow
        if sse {
            try await writer.write(ByteBuffer(string: ": runlog event stream\nretry: \(configuration.retryMilliseconds)\n\n"))
        }
        if gzip {
            for try await bytes in runs.store.gzippedEvents(of: key, after: query.after) { try await writer.write(bytes) }
            return
        }
        var position = query.after
        var sent = 0
        var sawCompletion = false
        var caughtUp = false
        let heartbeat = StreamAlarms.nanoseconds(configuration.heartbeatInterval)
        var lastWrite = StreamAlarms.now()

        /// Writes one chunk's wanted lines; true once the limit is reached.
        func send(_ chunk: EventChunk) async throws -> Bool {
            var output = ByteBuffer()
            var done = false
            chunk.forEachEvent { sequence, type, line in
                guard !done, sequence > position else { return }
                position = sequence
                if type == "run.completed" { sawCompletion = true }
                guard query.types?.matches(type) ?? true else { return }
                if sse {
                    output.writeString("id: \(sequence)\nevent: \(type)\ndata: ")
                    output.writeImmutableBuffer(line)
                    output.writeString("\n\n")
                } else {
                    output.writeImmutableBuffer(line)
                    output.writeString("\n")
                }
                sent += 1
                if let limit = query.limit, sent >= limit { done = true }
            }
            if output.readableBytes > 0 {
                try await writer.write(output)
                lastWrite = StreamAlarms.now()
            }
            return done
        }

        while true {
            if caughtUp, let recent = try await runs.store.recentEvents(of: key, after: position) {
                for chunk in recent where try await send(chunk) { return }
            } else {
                if caughtUp { metrics.slowReaderFellBack() }
                for try await chunk in runs.store.events(of: key, after: position) where try await send(chunk) { return }
                caughtUp = live
            }
            // The stream ends once run.completed has been sent (or passed by the type filter).
            guard live, !sawCompletion, !signal.isStopped else { return }
            let now = StreamAlarms.now()
            if now >= endsAt { return }
            if now - lastWrite >= heartbeat {
                if sse {
                    try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                    lastWrite = now
                } else {
                    // Nothing to send on NDJSON: a run that has completed meanwhile ends the stream.
                    if try await runs.run(key).status.isTerminal, try await runs.store.lastSequence(of: key) <= position { return }
                    lastWrite = now
                }
            }
            // One continuation, rung by the run (new lines) or by the signal (stop, alarms).
            signal.wake(at: min(lastWrite + heartbeat, endsAt))
            _ = try await runs.store.waitForEvents(of: key, after: position, orUntil: signal.wakeup)
        }
    }
}
