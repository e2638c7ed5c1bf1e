import CoreMetrics
import Logging
import RunlogCatalog
import RunlogStorage
import Synchronization

/// Abandoned runs: a producer that dies leaves its run live forever, and retention never
/// touches a live run. With a run timeout, the server completes such a run itself.
extension RunService {
    /// Completes every live run with no append for ``runTimeout`` with a `run.completed` event
    /// of its own (`status: cancelled`, `reason: timed_out`, `source: runlog`), which readers
    /// see like any other and which makes the row terminal. Returns how many it completed.
    ///
    /// A run that receives an append while this decides is left alone: the completion is
    /// appended only if the log still ends where it ended when the run was found inactive.
    @discardableResult
    package func completeInactiveRuns() async -> Int {
        guard let timeout = runTimeout else { return 0 }
        let now = now()
        let inactive = live.withLock { runs in
            runs.compactMap { key, run in
                run.state.withLock { state -> (RunKey, Int64)? in
                    guard !state.status.isTerminal, now - state.lastActivity >= timeout else { return nil }
                    return (key, state.builder.lastSequenceSeen)
                }
            }
        }
        var completed = 0
        for (key, lastSequence) in inactive {
            do {
                _ = try await append(Self.timeoutCompletion(after: timeout), to: key, expectedLastSequence: lastSequence)
                completed += 1
                timedOutRuns.increment()
                logger.notice("completed an inactive run as timed out", metadata: ["run": "\(key)", "inactive_for": "\(timeout)"])
            } catch .storage(.sequenceMismatch), .closed {
                continue  // an append (a completion among them) came in meanwhile: not abandoned
            } catch {
                logger.error("could not complete an inactive run", metadata: ["run": "\(key)", "error": "\(error)"])
            }
        }
        return completed
    }

    /// The counter of runs completed by ``completeInactiveRuns()``.
    static let timedOutLabel = "runlog_runs_timed_out_total"

    static func timeoutCompletion(after timeout: Duration) -> EventBatch {
        let seconds = timeout.components.seconds
        let line = #"{"type":"\#(LifecycleEvent.completed)","source":"runlog","payload":{"status":"cancelled","reason":"timed_out","inactive_seconds":\#(seconds)}}"#
        // A fixed, valid line: parsing it cannot fail.
        return try! EventBatch(ndjson: Array(line.utf8))
    }
}
