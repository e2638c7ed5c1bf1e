/// The run catalog: one row per run (metadata, status, counts, summary and the `events_path`
/// pointer), never an event, so its size grows with runs and not with events. It knows nothing
/// of log files: `events_path` is just a string to it.
///
/// A backend implements these operations with the same meaning whatever the database:
/// ``SQLiteRunCatalog`` is the embedded default, ``PostgresRunCatalog`` the one several nodes
/// share; the shared test suites run against each.
package protocol RunCatalog: Sendable {
    // MARK: Runs

    /// Inserts a new run; fails with ``RunCatalogError/runExists(workspace:run:)`` if its id is taken.
    func create(_ record: RunRecord) async throws

    /// The run's row, or nil.
    func run(workspace: String, id: String) async throws -> RunRecord?

    /// Changes a run with `change`, in one transaction; fails with
    /// ``RunCatalogError/runNotFound(workspace:run:)`` if the run does not exist.
    @discardableResult
    func update(workspace: String, id: String, _ change: @escaping @Sendable (inout RunRecord) throws -> Void) async throws -> RunRecord

    /// Writes the progress of many live runs in one transaction. Rows of runs that became
    /// terminal meanwhile are left alone (their completion wrote exact figures).
    func record(_ progress: [RunProgress]) async throws

    /// Runs that are not terminal, across workspaces (for reconciliation at start-up).
    func liveRuns() async throws -> [RunRecord]

    /// Every run, in pages of `size`, in (workspace, id) order (for verification).
    func allRuns(after last: (workspace: String, id: String)?, size: Int) async throws -> [RunRecord]

    /// Runs of a workspace, newest first (ties on `created_at` broken by id), `limit` at a time.
    /// Pagination is by keyset (``ListCursor``): deep pages cost what the first one does.
    /// Fails with ``RunCatalogError/invalidCursor`` for a cursor it did not issue.
    func list(workspace: String, filter: RunFilter, limit: Int, cursor: String?) async throws -> RunPage

    // MARK: Retention

    /// Finished runs with `completed_at` in `completed` whose logs are in `state`, oldest
    /// first, `limit` at a time after `position` (a keyset: rows changed meanwhile never
    /// make the scan skip or repeat one).
    func completedRuns(in completed: Range<Int64>, logs state: RunLogState, after position: ScanPosition?, limit: Int) async throws -> [RunRecord]

    /// How many finished runs ``completedRuns(in:logs:after:limit:)`` will go through.
    func countCompletedRuns(in completed: Range<Int64>, logs state: RunLogState) async throws -> Int

    /// Runs not finished yet and created before `cutoff`, oldest first, `limit` at a time.
    func liveRuns(createdBefore cutoff: Int64, after position: ScanPosition?, limit: Int) async throws -> [RunRecord]

    /// How many runs ``liveRuns(createdBefore:after:limit:)`` will go through.
    func countLiveRuns(createdBefore cutoff: Int64) async throws -> Int

    /// Records that a run's whole log is now gzipped. False when the run is gone or its logs
    /// were deleted meanwhile.
    @discardableResult
    func markLogsCompressed(workspace: String, id: String, at time: Int64) async throws -> Bool

    /// Records that a run's log files are gone: `events_path` cleared, the deletion time kept
    /// (an earlier one wins). The row stays, so listings still show the run.
    @discardableResult
    func markLogsDeleted(workspace: String, id: String, at time: Int64) async throws -> Bool

    /// Removes a run's row; false when it was already gone.
    @discardableResult
    func deleteRun(workspace: String, id: String) async throws -> Bool

    // MARK: Lifetime

    /// Ends the catalog's use, leaving its storage tidy (for SQLite: the WAL checkpointed and
    /// removed). Nothing else is called after it.
    func close() async throws
}

extension RunCatalog {
    /// The first page of a workspace's runs.
    package func list(workspace: String, filter: RunFilter = RunFilter(), limit: Int) async throws -> RunPage {
        try await list(workspace: workspace, filter: filter, limit: limit, cursor: nil)
    }

    /// The page after `cursor`, unfiltered.
    package func list(workspace: String, limit: Int, cursor: String?) async throws -> RunPage {
        try await list(workspace: workspace, filter: RunFilter(), limit: limit, cursor: cursor)
    }
}
