package import RunlogStorage

/// How long logs are kept: when a finished run's logs are gzipped, when they are deleted,
/// and whether the run's row goes with them.
package struct RetentionPolicy: Sendable, Equatable {
    /// Gzip the logs of runs completed longer ago than this (and closed segments of live runs
    /// whose last event is older).
    package var compressAfter: Duration
    /// Delete the logs of runs completed longer ago than this.
    package var deleteAfter: Duration
    /// Delete the runs' rows too, not only their logs.
    package var deleteRows: Bool

    package init(compressAfter: Duration = .seconds(7 * 86_400), deleteAfter: Duration = .seconds(90 * 86_400), deleteRows: Bool = false) {
        self.compressAfter = compressAfter
        self.deleteAfter = deleteAfter
        self.deleteRows = deleteRows
    }

    /// The moments before which runs are due, as of `now` (milliseconds since the epoch).
    package func cutoffs(asOf now: Timestamp) -> (compressBefore: Int64, deleteBefore: Int64) {
        (now.millisecondsSinceEpoch - Self.milliseconds(compressAfter), now.millisecondsSinceEpoch - Self.milliseconds(deleteAfter))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
