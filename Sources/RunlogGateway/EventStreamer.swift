import Hummingbird
import Logging
import NIOCore
import RunlogCatalog
import RunlogRuns
import RunlogStorage
import Synchronization

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
    let stop: StreamStop
    let metrics: GatewayMetrics
    /// Send the whole log as one gzip stream (a finite, unfiltered NDJSON download).
    var gzip = false

    enum Wake: Sendable { case events, heartbeat, stop }

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
            if output.readableBytes > 0 { try await writer.write(output) }
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
            guard live, !sawCompletion else { return }
            switch try await nextWake(after: position) {
            case .events: continue
            case .stop: return
            case .heartbeat:
                if sse {
                    try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                } else {
                    // Nothing to send on NDJSON: a run that has completed meanwhile ends the stream.
                    if try await runs.run(key).status.isTerminal, try await runs.store.lastSequence(of: key) <= position { return }
                }
            }
        }
    }

    /// Waits for lines after `position`, the heartbeat interval, or a stop, whichever comes first.
    private func nextWake(after position: Int64) async throws -> Wake {
        let (store, key, interval, stop) = (runs.store, key, configuration.heartbeatInterval, stop)
        return try await withThrowingTaskGroup(of: Wake.self) { group in
            group.addTask {
                _ = try await store.waitForEvents(of: key, after: position)
                return .events
            }
            group.addTask {
                try await Task.sleep(for: interval)
                return .heartbeat
            }
            group.addTask {
                await stop.wait()
                return .stop
            }
            defer { group.cancelAll() }
            return try await group.next() ?? .stop
        }
    }
}

/// Ends event streams: when the client goes away or the server shuts down.
final class StreamStop: Sendable {
    private let state = Mutex<(stopped: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func stop() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopped = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Returns once stopped, or when the calling task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.stopped || Task.isCancelled { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            // Wake every waiter: the ones still wanted simply wait again.
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }
}
