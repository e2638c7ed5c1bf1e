package import CoreMetrics
import Foundation
package import Logging
import NIOCore
package import RunlogCatalog
package import RunlogStorage
import ServiceLifecycle
import Synchronization

/// Runs: the catalog row and the event log of each, kept in step.
///
/// **The one door to runs.** Whatever serves runs (the gateway, a command) goes through this
/// service and never holds the store or the catalog: it names a run by the key ``key(workspace:run:)``
/// validates, hands over request bodies as bytes to be parsed here with the store's configured
/// limits (``append(_:as:to:expectedLastSequence:)``), and reads events and rows through the
/// methods below. So every limit and lifecycle rule is applied in one place, whoever calls.
///
/// Lifecycle events change the row at once (`run.started`: running; `run.completed`: terminal,
/// final summary, closed). Other events only update an in-memory summary; the rows of live runs
/// get their counts and summary in one batched write every `progressInterval`, off the append path.
package final class RunService: Service, Sendable {
    /// The logs. For wiring and tests; callers that serve runs go through the service.
    package let store: EventStore
    /// The rows. For wiring and tests; callers that serve runs go through the service.
    package let catalog: any RunCatalog
    let logger: Logger
    private let progressInterval: Duration
    private let wallClock: @Sendable () -> Timestamp
    let live = Mutex<[RunKey: LiveRun]>([:])
    /// Live runs with no append for this long are completed as timed out; nil: never.
    let runTimeout: Duration?
    /// The clock inactivity is measured with.
    let now: @Sendable () -> ContinuousClock.Instant
    let timedOutRuns: Counter

    /// The in-memory state of a live run.
    final class LiveRun: Sendable {
        struct State {
            var builder: SummaryBuilder
            var status: RunStatus
            var dirty = false
            /// The last append, or when the server took the run up (a restart does not count
            /// the time it was down against a producer).
            var lastActivity: ContinuousClock.Instant
        }

        let state: Mutex<State>

        init(builder: SummaryBuilder, status: RunStatus, at now: ContinuousClock.Instant) {
            state = Mutex(State(builder: builder, status: status, lastActivity: now))
        }

        /// The summary of a run whose log holds `run.completed` but whose row is not terminal
        /// yet (its catalog write failed); nil otherwise.
        var pendingCompletion: SummaryBuilder? {
            state.withLock { $0.builder.completion == nil ? nil : $0.builder }
        }
    }

    /// - Parameters:
    ///   - runTimeout: complete live runs with no append for this long (see ``completeInactiveRuns()``).
    ///   - now: the clock inactivity is measured with (tests move it).
    package init(
        store: EventStore, catalog: any RunCatalog, logger: Logger, progressInterval: Duration = .seconds(1),
        runTimeout: Duration? = nil, metricsFactory: any MetricsFactory = MetricsSystem.factory,
        wallClock: @escaping @Sendable () -> Timestamp = { Timestamp.now() },
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.store = store
        self.catalog = catalog
        self.logger = logger
        self.progressInterval = progressInterval
        self.runTimeout = runTimeout
        self.timedOutRuns = Counter(label: Self.timedOutLabel, factory: metricsFactory)
        self.wallClock = wallClock
        self.now = now
    }

    // MARK: Runs

    /// The key of a run, once its ids are checked (1-128 of `[A-Za-z0-9_.-]`, not `.` or `..`).
    package func key(workspace: String, run: String) throws(RunError) -> RunKey {
        do {
            return try RunKey(workspace: workspace, run: run)
        } catch {
            throw .storage(error)
        }
    }

    /// Creates a queued run with an empty log. `runID` defaults to a generated `run_<ULID>`.
    package func createRun(workspace: String, runID: String?, configurationID: String? = nil, metadata: String? = nil) async throws(RunError) -> RunRecord {
        let id = runID ?? "run_" + String(Self.generatedID().dropFirst(4))
        let key: RunKey
        do {
            key = try RunKey(workspace: workspace, run: id)
        } catch {
            throw .storage(error)
        }
        let record = RunRecord(
            workspaceID: workspace, id: id, configurationID: configurationID, createdAt: wallClock().millisecondsSinceEpoch,
            eventsPath: EventStoreConfiguration.relativeLogDirectory(for: key), metadata: metadata
        )
        do {
            try await catalog.create(record)
        } catch RunCatalogError.runExists {
            throw .exists(key)
        } catch {
            throw RunError(error)
        }
        do {
            try await store.createLog(for: key)
        } catch {
            // Without its log the row would claim the id for good: a retry must be able to create it.
            do {
                _ = try await catalog.deleteRun(workspace: workspace, id: id)
            } catch let removal {
                logger.error("could not remove the row of a run whose log could not be created", metadata: ["run": "\(key)", "error": "\(removal)"])
            }
            throw .storage(error)
        }
        live.withLock { $0[key] = LiveRun(builder: SummaryBuilder(), status: .queued, at: now()) }
        return record
    }

    /// The run's row, with live counts no older than one progress interval.
    package func run(_ key: RunKey) async throws(RunError) -> RunRecord {
        guard let record = try await fetch(key) else { throw .notFound(key) }
        return record
    }

    /// The run's summary: from memory while it is live, from its row once it is terminal.
    package func summary(_ key: RunKey) async throws(RunError) -> RunSummary {
        let record = try await run(key)
        if record.status.isTerminal, let stored = record.summary, let summary = RunSummary(json: stored) {
            return summary
        }
        let liveRun = try await liveRun(key, record: record)
        return liveRun.state.withLock { $0.builder.summary(status: $0.status.rawValue, exitCode: nil) }
    }

    // MARK: Appending

    /// How an append's body is written.
    package enum BodyFormat: Sendable {
        /// One JSON object per line.
        case ndjson
        /// One JSON object, or an array of them.
        case json
    }

    /// Parses `body` with the store's event limits and appends it (see ``append(_:to:expectedLastSequence:)``).
    package func append(_ body: [UInt8], as format: BodyFormat, to key: RunKey, expectedLastSequence: Int64? = nil) async throws(RunError) -> AppendReceipt {
        let limits = store.configuration.eventLimits
        let batch: EventBatch
        do {
            switch format {
            case .ndjson: batch = try EventBatch(ndjson: body, limits: limits)
            case .json: batch = try EventBatch(json: body, limits: limits)
            }
        } catch {
            throw .storage(error)
        }
        return try await append(batch, to: key, expectedLastSequence: expectedLastSequence)
    }

    /// Appends to a run: refused for unknown and completed runs, and for a `run.completed` whose
    /// `payload.status` is not `succeeded`, `failed` or `cancelled`.
    package func append(_ batch: EventBatch, to key: RunKey, expectedLastSequence: Int64? = nil) async throws(RunError) -> AppendReceipt {
        let liveRun: LiveRun
        if let cached = live.withLock({ $0[key] }), !cached.state.withLock({ $0.status.isTerminal }) {
            // An open run with live state: no catalog read on the append path.
            liveRun = cached
            try Self.validateLifecycle(batch)
        } else {
            guard let record = try await fetch(key) else { throw .notFound(key) }
            if record.status.isTerminal { return try await retry(batch, toCompleted: record, key: key, expectedLastSequence: expectedLastSequence) }
            try Self.validateLifecycle(batch)
            liveRun = try await self.liveRun(key, record: record)
        }
        let appendedAt = now()
        liveRun.state.withLock { $0.lastActivity = max($0.lastActivity, appendedAt) }
        let receipt = try await storeAppend(batch, to: key, expectedLastSequence: expectedLastSequence)
        guard let first = receipt.firstSequence else {
            // All repeats: perhaps the retry of a completion whose row could not be written
            // (the catalog was unavailable). The retry finishes it, as the producer expects.
            if let pending = liveRun.pendingCompletion { try await complete(key, builder: pending) }
            return receipt
        }

        // Fold the new events (not the duplicates) into the live summary.
        let createdAt = receipt.createdAt?.millisecondsSinceEpoch ?? 0
        // New events have rising sequences in batch order, from `first`; a repeat within the
        // batch has one already seen, and a duplicate of a stored event one below `first`.
        var lastFolded = first - 1
        var started = false
        var completed = false
        let (builder, status) = liveRun.state.withLock { state -> (SummaryBuilder, RunStatus) in
            for (index, sequence) in receipt.sequences.enumerated() where sequence > lastFolded {
                lastFolded = sequence
                let type = batch.type(at: index)
                state.builder.fold(sequence: sequence, type: type, createdAt: createdAt, payload: batch.payload(at: index))
                if type == LifecycleEvent.started { started = true }
                if type == LifecycleEvent.completed { completed = true }
            }
            state.builder.add(storedBytes: receipt.storedBytes)
            if started && state.status == .queued { state.status = .running }
            state.dirty = true
            return (state.builder, state.status)
        }
        if completed {
            try await complete(key, builder: builder)
        } else if started {
            let startedAt = builder.startedAt ?? createdAt
            do {
                try await catalog.update(workspace: key.workspaceID, id: key.runID) { record in
                    guard !record.status.isTerminal else { return }
                    record.status = status
                    record.startedAt = record.startedAt ?? startedAt
                }
            } catch {
                throw RunError(error)
            }
        }
        return receipt
    }

    /// An append to a completed run: refused, unless every event repeats one already stored
    /// (by its producer `event_id`), as the retried completion of a producer whose reply was
    /// lost does; that is acknowledged as duplicates, like any exact retry.
    private func retry(_ batch: EventBatch, toCompleted record: RunRecord, key: RunKey, expectedLastSequence: Int64?) async throws(RunError) -> AppendReceipt {
        // Without its files there is nothing to compare with, and the store would start a new log.
        guard record.logsDeletedAt == nil else { throw .closed(key, lastSequence: record.lastSequence) }
        // A completed run's log holds its terminal event (the row turns terminal only after it
        // is stored), so the store appends nothing new to it: it reports the repeats, or
        // refuses the batch as closed.
        return try await storeAppend(batch, to: key, expectedLastSequence: expectedLastSequence)
    }

    /// The store's append, its refusal of a closed log told as the run's.
    private func storeAppend(_ batch: EventBatch, to key: RunKey, expectedLastSequence: Int64?) async throws(RunError) -> AppendReceipt {
        do {
            return try await store.append(batch, to: key, expectedLastSequence: expectedLastSequence)
        } catch .logClosed(_, let last) {
            throw .closed(key, lastSequence: last)
        } catch {
            throw .storage(error)
        }
    }

    /// Makes the row terminal with the exact final figures and summary.
    private func complete(_ key: RunKey, builder: SummaryBuilder) async throws(RunError) {
        guard let completion = builder.completion else { return }
        do {
            try await catalog.update(workspace: key.workspaceID, id: key.runID) { record in
                record.complete(completion, from: builder)
            }
        } catch {
            throw RunError(error)
        }
        live.withLock { $0[key] = nil }
    }

    static func validateLifecycle(_ batch: EventBatch) throws(RunError) {
        for index in 0..<batch.count where batch.type(at: index) == LifecycleEvent.completed {
            let payload = batch.payload(at: index).flatMap { JSONValue(parsing: $0) }
            let status = payload?["status"]?.string
            guard let status, ["succeeded", "failed", "cancelled"].contains(status) else {
                throw .invalidEvent(EventRejection(line: batch.line(at: index), reason: "'run.completed' needs payload.status: succeeded, failed or cancelled"))
            }
            if let exitCode = payload?["exit_code"] {
                guard case .number(let number) = exitCode, number == number.rounded(), abs(number) <= Double(Int32.max) else {
                    throw .invalidEvent(EventRejection(line: batch.line(at: index), reason: "'run.completed' payload.exit_code must be an integer"))
                }
            }
        }
    }

    // MARK: Progress and reconciliation

    /// Writes the counts and summary of every live run that changed, in one transaction, and
    /// completes the rows of runs whose completion could not be written when it was appended.
    package func flushProgress() async throws(RunError) {
        let pending = live.withLock { runs in runs.compactMap { key, run in run.pendingCompletion.map { (key, $0) } } }
        for (key, builder) in pending {
            try await complete(key, builder: builder)
            logger.notice("completed a run whose completion had not reached the catalog", metadata: ["run": "\(key)"])
        }
        let changed = live.withLock { runs in
            runs.compactMap { key, run -> RunProgress? in
                run.state.withLock { state in
                    guard state.dirty, state.builder.completion == nil else { return nil }
                    state.dirty = false
                    let builder = state.builder
                    return RunProgress(
                        workspaceID: key.workspaceID, runID: key.runID, lastSequence: builder.lastSequenceSeen,
                        eventCount: builder.eventCount, byteSize: builder.storedBytes, errorCount: builder.errorCount,
                        summary: builder.summary(status: state.status.rawValue, exitCode: nil).json
                    )
                }
            }
        }
        do {
            try await catalog.record(changed)
        } catch {
            throw RunError(error)
        }
    }

    /// Brings every live row in line with its log (after a crash or restart): counts and summary
    /// rebuilt from the files, and a run whose log ends with `run.completed` completed.
    package func reconcile() async throws(RunError) -> Int {
        let rows: [RunRecord]
        do {
            rows = try await catalog.liveRuns()
        } catch {
            throw RunError(error)
        }
        var corrected = 0
        for record in rows {
            let key: RunKey
            do {
                key = try RunKey(workspace: record.workspaceID, run: record.id)
            } catch {
                logger.error("a catalog row has an invalid id", metadata: ["workspace_id": "\(record.workspaceID)", "run_id": "\(record.id)"])
                continue
            }
            let builder: SummaryBuilder
            do {
                builder = try await rebuild(key)
            } catch .storage(.logNotFound) {
                logger.warning("a live run has no event log", metadata: ["workspace_id": "\(key.workspaceID)", "run_id": "\(key.runID)"])
                continue
            }
            if builder.completion != nil {
                try await complete(key, builder: builder)
                corrected += 1
                logger.notice("completed a run whose log holds run.completed", metadata: ["run": "\(key)"])
                continue
            }
            if builder.lastSequenceSeen != record.lastSequence || builder.eventCount != record.eventCount {
                corrected += 1
            }
            let status: RunStatus = builder.startedAt != nil ? .running : record.status
            live.withLock { $0[key] = LiveRun(builder: builder, status: status, at: now()) }
            do {
                try await catalog.update(workspace: key.workspaceID, id: key.runID) { row in row.takeProgress(status, from: builder) }
            } catch {
                throw RunError(error)
            }
        }
        return corrected
    }

    /// The run's summary folded from its files, ignoring what is in memory (what a restart costs).
    package func summaryFromFiles(_ key: RunKey) async throws(RunError) -> RunSummary {
        let record = try await run(key)
        return try await rebuild(key).summary(status: record.status.rawValue, exitCode: record.exitCode)
    }

    /// Folds a run's whole log.
    func rebuild(_ key: RunKey) async throws(RunError) -> SummaryBuilder {
        var builder = SummaryBuilder()
        do {
            for try await chunk in store.events(of: key) {
                chunk.forEachLine { _, line in builder.fold(line: line) }
            }
        } catch {
            throw RunError(error)
        }
        return builder
    }

    /// Reconciles the catalog with the logs, then writes progress every interval until graceful
    /// shutdown, and once more after it.
    package func run() async throws {
        let corrected = try await reconcile()
        logger.info("reconciled the catalog with the event logs", metadata: ["runs_corrected": "\(corrected)"])
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: self.progressInterval)
                    do {
                        try await self.flushProgress()
                    } catch {
                        self.logger.error("could not write run progress to the catalog", metadata: ["error": "\(error)"])
                    }
                    await self.completeInactiveRuns()
                }
            }
        } catch is CancellationError {
            // Graceful shutdown ends the loop; the final write follows.
        }
        try await flushProgress()
    }

    // MARK: Internals

    /// Drops a run's in-memory state (it is rebuilt from the files on next use).
    func forgetLiveState(of key: RunKey) {
        live.withLock { $0[key] = nil }
    }

    func fetch(_ key: RunKey) async throws(RunError) -> RunRecord? {
        do {
            return try await catalog.run(workspace: key.workspaceID, id: key.runID)
        } catch {
            throw RunError(error)
        }
    }

    /// The live state of a run, rebuilt from its log when not in memory (after a restart).
    private func liveRun(_ key: RunKey, record: RunRecord) async throws(RunError) -> LiveRun {
        if let run = live.withLock({ $0[key] }) { return run }
        let builder = try await rebuild(key)
        return live.withLock { runs in
            if let run = runs[key] { return run }
            let run = LiveRun(builder: builder, status: record.status, at: now())
            runs[key] = run
            return run
        }
    }

    private static func generatedID() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")
        let time = UInt64(max(0, Timestamp.now().millisecondsSinceEpoch))
        var text = ""
        for index in 0..<10 { text.append(alphabet[Int((time >> UInt64(45 - index * 5)) & 31)]) }
        for _ in 0..<16 { text.append(alphabet[Int(generator.next() & 31)]) }
        return "run_" + text
    }
}

extension RunSummary {
    /// Decodes a stored summary.
    init?(json: String) {
        guard let summary = try? JSONDecoder().decode(RunSummary.self, from: Data(json.utf8)) else { return nil }
        self = summary
    }
}
