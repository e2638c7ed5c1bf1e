/// What one retention pass did (or, in a dry run, would do): totals, every action, and every
/// failure. Encodes to the `--json` report.
package struct RetentionReport: Sendable, Equatable, Codable {
    /// Counts and sizes of one kind of action.
    package struct Totals: Sendable, Equatable, Codable {
        package var runs = 0
        package var segments = 0
        package var bytesBefore: Int64 = 0
        package var bytesAfter: Int64 = 0

        enum CodingKeys: String, CodingKey {
            case runs, segments
            case bytesBefore = "bytes_before"
            case bytesAfter = "bytes_after"
        }
    }

    /// What a pass does to one run.
    package enum ActionKind: String, Sendable, Codable {
        /// Gzip every segment of a finished run's log.
        case compress
        /// Gzip old closed segments of a live run's log.
        case compressClosedSegments = "compress_closed_segments"
        /// Delete a finished run's log files (the row stays, without `events_path`).
        case deleteLogs = "delete_logs"
        /// Delete a finished run's row (`--delete-rows`).
        case deleteRow = "delete_row"
    }

    package struct Action: Sendable, Equatable, Codable {
        package var action: ActionKind
        package var workspaceID: String
        package var runID: String
        package var segments: Int
        package var bytesBefore: Int64
        package var bytesAfter: Int64

        enum CodingKeys: String, CodingKey {
            case action, segments
            case workspaceID = "workspace_id"
            case runID = "run_id"
            case bytesBefore = "bytes_before"
            case bytesAfter = "bytes_after"
        }
    }

    package struct Failure: Sendable, Equatable, Codable {
        package var action: ActionKind
        package var workspaceID: String
        package var runID: String
        package var message: String

        enum CodingKeys: String, CodingKey {
            case action, message
            case workspaceID = "workspace_id"
            case runID = "run_id"
        }
    }

    /// The moment the policy was evaluated at (RFC 3339).
    package var asOf: String
    package var dryRun: Bool
    package var compressAfterSeconds: Int64
    package var deleteAfterSeconds: Int64
    package var deleteRows: Bool
    /// Finished runs whose whole log was gzipped.
    package var compressed = Totals()
    /// Live runs some of whose closed segments were gzipped.
    package var compressedClosedSegments = Totals()
    /// Finished runs whose logs were deleted.
    package var deletedLogs = Totals()
    package var deletedRows = 0
    /// Bytes freed from deletions an earlier, interrupted pass left in the trash.
    package var trashBytesFreed: Int64 = 0
    /// Whether the pass stopped early (server shutdown); the next one carries on.
    package var interrupted = false
    package var actions: [Action] = []
    package var errors: [Failure] = []
    package var durationSeconds: Double = 0

    package init(asOf: String, dryRun: Bool, policy: RetentionPolicy) {
        self.asOf = asOf
        self.dryRun = dryRun
        self.compressAfterSeconds = policy.compressAfter.components.seconds
        self.deleteAfterSeconds = policy.deleteAfter.components.seconds
        self.deleteRows = policy.deleteRows
    }

    enum CodingKeys: String, CodingKey {
        case asOf = "as_of"
        case dryRun = "dry_run"
        case compressAfterSeconds = "compress_after_seconds"
        case deleteAfterSeconds = "delete_after_seconds"
        case deleteRows = "delete_rows"
        case compressed
        case compressedClosedSegments = "compressed_closed_segments"
        case deletedLogs = "deleted_logs"
        case deletedRows = "deleted_rows"
        case trashBytesFreed = "trash_bytes_freed"
        case interrupted, actions, errors
        case durationSeconds = "duration_seconds"
    }

    /// Records an action and adds it to its totals.
    mutating func record(_ action: Action) {
        actions.append(action)
        switch action.action {
        case .compress: compressed.add(action)
        case .compressClosedSegments: compressedClosedSegments.add(action)
        case .deleteLogs: deletedLogs.add(action)
        case .deleteRow: deletedRows += 1
        }
    }
}

extension RetentionReport.Totals {
    mutating func add(_ action: RetentionReport.Action) {
        runs += 1
        segments += action.segments
        bytesBefore += action.bytesBefore
        bytesAfter += action.bytesAfter
    }
}
