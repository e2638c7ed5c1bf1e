import Hummingbird
import Logging
import RunlogStorage

/// A live stream that has taken its connection over (``ConnectionHandover``): while it is
/// parked on its run's feed, no task holds it.
///
/// Each time its signal rings (a heartbeat or expiry due, a stop, the connection's sender
/// handing it back) a short task takes it up: it takes the stream off the feed, reads what the
/// feed did not deliver, and parks it again, or ends the response and closes the connection.
final class ParkingStream: @unchecked Sendable {
    // Unchecked: one task at a time uses the mutable state. The next task starts only from the
    // first ring after a park, and registering for that ring is the last thing a task does.
    private let streamer: EventStreamer
    private let connection: LiveConnection
    private let handover: ConnectionHandover
    private var writer: any ResponseBodyWriter
    private var progress: EventStreamer.Progress
    private var caughtUp = false

    private init(_ streamer: EventStreamer, connection: LiveConnection, writer: any ResponseBodyWriter, handover: ConnectionHandover) {
        self.streamer = streamer
        self.connection = connection
        self.writer = writer
        self.handover = handover
        self.progress = EventStreamer.Progress(position: streamer.query.after)
    }

    /// Runs `streamer` in the calling task up to its first park, and from then on in tasks of
    /// its own until it ends.
    static func start(_ streamer: EventStreamer, writer: any ResponseBodyWriter, handover: ConnectionHandover) async {
        let connection: LiveConnection
        do {
            connection = try await streamer.connection.attach(watching: streamer.signal)
        } catch {
            // The connection's pipeline has gone (its event loop is shutting down).
            streamer.services.logger.info("an event stream could not start", metadata: ["run": "\(streamer.key)", "error": "\(error)"])
            handover.close()
            streamer.streamEnded()
            return
        }
        let stream = ParkingStream(streamer, connection: connection, writer: writer, handover: handover)
        do {
            try await streamer.writePreamble(to: &stream.writer)
        } catch {
            await stream.end(after: error)
            return
        }
        await stream.run()
    }

    /// Reads on until caught up, then parks; or ends the stream.
    private func run() async {
        do {
            while try await streamer.advance(to: &writer, progress: &progress, caughtUp: &caughtUp) {
                if try await streamer.park(with: connection, progress: progress) {
                    // The feed writes new events from the event loop until the stream is needed again.
                    let metrics = streamer.services.metrics
                    streamer.signal.wakeup.whenRung { Task { await metrics.counting(.stream) { await self.resume() } } }
                    return
                }
            }
            await end(after: nil)
        } catch {
            await end(after: error)
        }
    }

    /// Takes the stream off the feed at the point the feed reached, and runs on from there.
    private func resume() async {
        do {
            if let handoff = try await connection.unpark() { progress.resume(from: handoff) }
        } catch {
            await end(after: error)
            return
        }
        await run()
    }

    private func end(after failure: (any Error)?) async {
        do {
            try await streamer.end(&writer, at: progress, after: failure)
        } catch {
            // A failed stream is logged by end(_:after:); a client that left makes the end fail.
            streamer.services.logger.debug("an event stream's response could not end", metadata: ["run": "\(streamer.key)", "error": "\(error)"])
        }
        handover.close()
        streamer.streamEnded()
    }
}
