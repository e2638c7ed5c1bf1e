package import Logging
package import RunlogStorage
import ServiceLifecycle

/// Runs a retention pass inside the server every `interval` (`runlog serve
/// --retention-interval`), the first one at start-up. A pass already running elsewhere (cron)
/// makes this one skip; graceful shutdown stops a pass between two runs.
package struct RetentionService: Service {
    let pass: RetentionPass
    let policy: RetentionPolicy
    let interval: Duration
    let clock: @Sendable () -> Timestamp
    let logger: Logger
    /// Told about every finished pass (for tests and metrics).
    let onReport: (@Sendable (RetentionReport) -> Void)?

    package init(
        pass: RetentionPass, policy: RetentionPolicy, interval: Duration, logger: Logger,
        clock: @escaping @Sendable () -> Timestamp = { Timestamp.now() }, onReport: (@Sendable (RetentionReport) -> Void)? = nil
    ) {
        self.pass = pass
        self.policy = policy
        self.interval = interval
        self.clock = clock
        self.logger = logger
        self.onReport = onReport
    }

    package func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    await runOnce()
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            // Graceful shutdown ends the loop.
        }
    }

    /// One pass, logged: a summary line at info, each failed run at error (by the pass).
    func runOnce() async {
        do {
            let report = try await pass.run(policy: policy, asOf: clock())
            logger.info(
                "retention pass finished",
                metadata: [
                    "event_type": "retention.pass",
                    "compressed_runs": "\(report.compressed.runs)",
                    "compressed_live_runs": "\(report.compressedClosedSegments.runs)",
                    "deleted_runs": "\(report.deletedLogs.runs)",
                    "deleted_rows": "\(report.deletedRows)",
                    "bytes_freed": "\(report.compressed.bytesBefore - report.compressed.bytesAfter + report.compressedClosedSegments.bytesBefore - report.compressedClosedSegments.bytesAfter + report.deletedLogs.bytesBefore)",
                    "errors": "\(report.errors.count)",
                    "interrupted": "\(report.interrupted)",
                    "duration_seconds": "\(report.durationSeconds)",
                ]
            )
            onReport?(report)
        } catch .alreadyRunning(let pid, _) {
            logger.notice("retention pass skipped: another pass is running", metadata: ["pid": "\(pid.map(String.init) ?? "unknown")"])
        } catch {
            logger.error("retention pass failed", metadata: ["error": "\(error)"])
        }
    }
}
