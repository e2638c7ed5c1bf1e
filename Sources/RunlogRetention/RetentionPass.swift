package import Logging
package import NIOPosix
package import RunlogCatalog
package import RunlogStorage

/// One pass of the retention policy over a storage root and its catalog.
///
/// In order: it finishes deletions an interrupted pass left in the trash; deletes the logs
/// (and with `deleteRows` the rows) of runs completed before the delete cutoff; gzips the
/// whole logs of runs completed before the compress cutoff; and gzips closed segments of live
/// runs whose last event is older than that cutoff. The catalog's `completed_at` decides what
/// is due, never a file's clock. Each step is atomic on disk and recorded in the catalog after
/// it is done, so a pass killed at any moment is finished by the next one; a lock keeps two
/// passes from overlapping.
package struct RetentionPass: Sendable {
    /// Runs done so far out of the runs due.
    package struct Progress: Sendable, Equatable {
        package var done: Int
        package var total: Int
    }

    package let catalog: any RunCatalog
    package let maintenance: LogMaintenance
    private let logger: Logger
    private let threadPool: NIOThreadPool
    private let pageSize = 256

    /// Told about every action as it is done (for `--verbose`).
    package var onAction: (@Sendable (RetentionReport.Action) -> Void)?
    /// Told after each run.
    package var onProgress: (@Sendable (Progress) -> Void)?
    /// Told about each run whose files changed, so that a server in this process re-reads them.
    package var onLogChanged: (@Sendable (RunKey) -> Void)?

    package init(catalog: any RunCatalog, maintenance: LogMaintenance, logger: Logger, threadPool: NIOThreadPool = .singleton) {
        self.catalog = catalog
        self.maintenance = maintenance
        self.logger = logger
        self.threadPool = threadPool
    }

    /// Runs one pass of `policy` as of `asOf`; with `dryRun`, reports what it would do and
    /// changes nothing. Failures on single runs are in the report; the pass goes on.
    package func run(policy: RetentionPolicy, asOf: Timestamp, dryRun: Bool = false) async throws(RetentionError) -> RetentionReport {
        let lock = try RetentionLock.acquire(root: maintenance.configuration.root)
        defer { withExtendedLifetime(lock) {} }
        let started = ContinuousClock.now
        var report = RetentionReport(asOf: asOf.rfc3339, dryRun: dryRun, policy: policy)
        let (compressBefore, deleteBefore) = policy.cutoffs(asOf: asOf)
        let deletable = Int64.min..<deleteBefore
        // Runs due for deletion are not compressed first.
        let compressible = min(deleteBefore, compressBefore)..<compressBefore
        var pass = State(report: report, dryRun: dryRun)
        do {
            if !dryRun {
                let maintenance = self.maintenance
                pass.report.trashBytesFreed = try await threadPool.runIfActive { try maintenance.emptyTrash() }
            }
            pass.progress.total = try await catalog.countCompletedRuns(in: deletable, logs: .present)
                + (policy.deleteRows ? try await catalog.countCompletedRuns(in: deletable, logs: .deleted) : 0)
                + catalog.countCompletedRuns(in: compressible, logs: .awaitingCompression)
                + catalog.countLiveRuns(createdBefore: compressBefore)
            try await forEachCompletedRun(in: deletable, logs: .present, pass: &pass) { key, pass in
                try await deleteLogs(of: key, deletingRow: policy.deleteRows, pass: &pass)
            }
            if policy.deleteRows {
                try await forEachCompletedRun(in: deletable, logs: .deleted, pass: &pass) { key, pass in
                    if !dryRun { try await catalog.deleteRun(workspace: key.workspaceID, id: key.runID) }
                    record(.init(action: .deleteRow, workspaceID: key.workspaceID, runID: key.runID, segments: 0, bytesBefore: 0, bytesAfter: 0), in: &pass)
                }
            }
            try await forEachCompletedRun(in: compressible, logs: .awaitingCompression, pass: &pass) { key, pass in
                try await compressLog(of: key, pass: &pass)
            }
            try await forEachLiveRun(createdBefore: compressBefore, pass: &pass) { key, pass in
                try await compressClosedSegments(of: key, before: Timestamp(millisecondsSinceEpoch: compressBefore), pass: &pass)
            }
        } catch is CancellationError {
            pass.report.interrupted = true
        } catch let error as StorageError {
            throw .io(error.description)  // the trash, outside any one run
        } catch {
            throw .catalog("\(error)")
        }
        report = pass.report
        let elapsed = ContinuousClock.now - started
        report.durationSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return report
    }

    // MARK: Steps

    private struct State {
        var report: RetentionReport
        var dryRun: Bool
        var progress = Progress(done: 0, total: 0)
    }

    private func deleteLogs(of key: RunKey, deletingRow: Bool, pass: inout State) async throws {
        let maintenance = self.maintenance
        let bytes: Int64
        if pass.dryRun {
            bytes = try await blocking { try maintenance.logBytes(of: key) }
        } else {
            // Out of the tree first (one rename), then the row, then the bytes: a pass killed
            // between two steps leaves a row whose files are already gone, which the next pass
            // finishes, never a row without files that no pass would revisit.
            bytes = try await blocking { try maintenance.moveToTrash(key) } ?? 0
            if deletingRow {
                try await catalog.deleteRun(workspace: key.workspaceID, id: key.runID)
            } else {
                try await catalog.markLogsDeleted(workspace: key.workspaceID, id: key.runID, at: Timestamp.now().millisecondsSinceEpoch)
            }
            onLogChanged?(key)
            _ = try await blocking { try maintenance.emptyTrash() }
        }
        record(.init(action: .deleteLogs, workspaceID: key.workspaceID, runID: key.runID, segments: 0, bytesBefore: bytes, bytesAfter: 0), in: &pass)
        if deletingRow { record(.init(action: .deleteRow, workspaceID: key.workspaceID, runID: key.runID, segments: 0, bytesBefore: 0, bytesAfter: 0), in: &pass) }
    }

    private func compressLog(of key: RunKey, pass: inout State) async throws {
        let (maintenance, dryRun) = (self.maintenance, pass.dryRun)
        let result = try await blocking { try maintenance.compress(key, scope: .wholeSealedLog, dryRun: dryRun) }
        if !dryRun {
            try await catalog.markLogsCompressed(workspace: key.workspaceID, id: key.runID, at: Timestamp.now().millisecondsSinceEpoch)
            if result.segments > 0 { onLogChanged?(key) }
        }
        record(
            .init(action: .compress, workspaceID: key.workspaceID, runID: key.runID, segments: result.segments, bytesBefore: result.bytesBefore, bytesAfter: result.bytesAfter),
            in: &pass
        )
    }

    private func compressClosedSegments(of key: RunKey, before cutoff: Timestamp, pass: inout State) async throws {
        let (maintenance, dryRun) = (self.maintenance, pass.dryRun)
        let result = try await blocking { try maintenance.compress(key, scope: .closedSegments(lastEventBefore: cutoff), dryRun: dryRun) }
        guard result.segments > 0 else { return }
        record(
            .init(
                action: .compressClosedSegments, workspaceID: key.workspaceID, runID: key.runID, segments: result.segments,
                bytesBefore: result.bytesBefore, bytesAfter: result.bytesAfter
            ),
            in: &pass
        )
    }

    private func record(_ action: RetentionReport.Action, in pass: inout State) {
        pass.report.record(action)
        onAction?(action)
    }

    // MARK: Scans

    /// Calls `body` for each run of a catalog scan; a failure on one run is recorded and the
    /// scan goes on. Stops (throwing `CancellationError`) when the task is cancelled.
    private func forEachCompletedRun(
        in range: Range<Int64>, logs state: RunLogState, pass: inout State,
        _ body: (RunKey, inout State) async throws -> Void
    ) async throws {
        guard !range.isEmpty else { return }
        let kind: RetentionReport.ActionKind = state == .awaitingCompression ? .compress : (state == .present ? .deleteLogs : .deleteRow)
        var position: ScanPosition?
        while true {
            let page = try await catalog.completedRuns(in: range, logs: state, after: position, limit: pageSize)
            for record in page {
                position = .init(time: record.completedAt ?? 0, workspaceID: record.workspaceID, id: record.id)
                try await visit(record, kind: kind, pass: &pass, body)
            }
            if page.count < pageSize { return }
        }
    }

    private func forEachLiveRun(createdBefore cutoff: Int64, pass: inout State, _ body: (RunKey, inout State) async throws -> Void) async throws {
        var position: ScanPosition?
        while true {
            let page = try await catalog.liveRuns(createdBefore: cutoff, after: position, limit: pageSize)
            for record in page {
                position = .init(time: record.createdAt, workspaceID: record.workspaceID, id: record.id)
                try await visit(record, kind: .compressClosedSegments, pass: &pass, body)
            }
            if page.count < pageSize { return }
        }
    }

    private func visit(
        _ record: RunRecord, kind: RetentionReport.ActionKind, pass: inout State, _ body: (RunKey, inout State) async throws -> Void
    ) async throws {
        try Task.checkCancellation()
        do {
            let key = try RunKey(workspace: record.workspaceID, run: record.id)
            try await body(key, &pass)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.error(
                "retention failed on a run",
                metadata: ["workspace_id": "\(record.workspaceID)", "run_id": "\(record.id)", "action": "\(kind.rawValue)", "error": "\(error)"]
            )
            pass.report.errors.append(.init(action: kind, workspaceID: record.workspaceID, runID: record.id, message: "\(error)"))
        }
        pass.progress.done += 1
        onProgress?(pass.progress)
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threadPool.runIfActive(body)
    }
}
