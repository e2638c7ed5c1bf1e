public import CoreMetrics
public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The storage engine: every run's append-only NDJSON log under one storage root.
///
/// Appends are validated, sequenced and buffered per run, flushed by count, bytes and time,
/// and acknowledged once as durable as ``Durability`` says. Readers stream from the files.
/// Blocking work runs on the store's own I/O thread pool, never on the caller's executor.
///
/// Run it as a `Service` to release idle runs' files in the background and to flush
/// everything on graceful shutdown; or call ``releaseIdleResources(now:)`` and
/// ``shutdown()`` yourself.
public final class EventStore: Service, Sendable {
    public let configuration: EventStoreConfiguration
    private let environment: RunLogEnvironment
    private let logs = Mutex<[RunKey: RunLog]>([:])
    private let isShutDown = Atomic<Bool>(false)

    public init(
        configuration: EventStoreConfiguration,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        wallClock: @escaping @Sendable () -> Timestamp = { Timestamp.now() }
    ) {
        self.configuration = configuration
        let threadPool = NIOThreadPool(numberOfThreads: max(1, configuration.ioThreads))
        threadPool.start()
        self.environment = RunLogEnvironment(
            configuration: configuration, threadPool: threadPool, logger: logger, wallClock: wallClock, openFiles: OpenFileCounter(),
            metrics: StoreMetrics(factory: metricsFactory), space: SpaceMonitor(logger: logger, factory: metricsFactory)
        )
    }

    // MARK: Writing

    /// Appends a batch to a run's log (creating the log on first use): all of it or, on any
    /// error, none of it. Returns once the batch is as durable as the configuration says.
    ///
    /// - Parameter expectedLastSequence: when given, the append is refused with
    ///   ``StorageError/sequenceMismatch(expected:actual:)`` unless the log ends there.
    public func append(_ batch: EventBatch, to key: RunKey, expectedLastSequence: Int64? = nil) async throws(StorageError) -> AppendReceipt {
        defer { trimOpenFilesIfNeeded() }
        return try await withLog(key) { log in
            try await log.append(batch, expectedLastSequence: expectedLastSequence)
        }
    }

    /// Creates a run's log directory and empty active segment, so it can be read before its
    /// first event. Returns false when the log already existed.
    @discardableResult
    public func createLog(for key: RunKey) async throws(StorageError) -> Bool {
        if let log = logs.withLock({ $0[key] }), log.isSealed, !FileSystem.exists(log.directory) {
            // Retention deleted this sealed log; the id is being used again.
            forgetSealedLog(of: key)
        }
        do {
            return try await withLog(key) { log in try await log.create() }
        } catch {
            if case .outOfSpace = error { environment.space.noteWrite(failure: error) }
            throw error
        }
    }

    /// Writes every run's buffered lines now and waits for them.
    public func flush() async throws(StorageError) {
        for log in logs.withLock({ Array($0.values) }) {
            do {
                try await log.flushBuffered()
            } catch is RunLogRetired {
                continue  // retired logs have nothing buffered
            } catch {
                throw StorageError(error)
            }
        }
    }

    // MARK: Reading

    /// What may be read of a run's log now.
    public func snapshot(of key: RunKey) async throws(StorageError) -> LogSnapshot {
        try await withLog(key) { log in try await log.snapshot() }
    }

    /// A new snapshot of a log already being read: its absence now means it was deleted.
    func snapshotOfExistingLog(_ key: RunKey) async throws(StorageError) -> LogSnapshot {
        do {
            return try await snapshot(of: key)
        } catch .logNotFound {
            throw .logDeleted(key)
        }
    }

    /// The last sequence of a run's log, creating the log if it has none (a cheap probe that the
    /// storage root is writable and readable).
    public func lastSequenceOrCreate(_ key: RunKey) async throws(StorageError) -> Int64 {
        try await createLog(for: key)
        return try await lastSequence(of: key)
    }

    /// The last sequence readers can see (0 for an empty log).
    public func lastSequence(of key: RunKey) async throws(StorageError) -> Int64 {
        try await snapshot(of: key).lastSequence
    }

    /// The lines after `sequence` (through `upperBound`, if given) as they are now, in chunks of
    /// whole lines, across plain and gzipped segments.
    public func events(of key: RunKey, after sequence: Int64 = 0, through upperBound: Int64? = nil) -> EventLogReader {
        EventLogReader(store: self, key: key, after: sequence, upperBound: upperBound)
    }

    /// The lines after `sequence` as they are now, as one gzip stream: archived segments are
    /// sent as stored, the rest compressed on the way.
    public func gzippedEvents(of key: RunKey, after sequence: Int64 = 0) -> GzipLogReader {
        GzipLogReader(store: self, key: key, after: sequence)
    }

    /// A run's whole log as open plain files, in order, when every segment is plain and there
    /// are at most `maximumFiles` of them; nil when it must be read with
    /// ``events(of:after:through:)`` instead (archived segments, or files that moved since
    /// the snapshot). For sending a whole log without copying it through user space.
    package func plainFiles(of key: RunKey, maximumFiles: Int = 64) async throws(StorageError) -> [PlainLogFile]? {
        let snapshot: LogSnapshot
        do {
            snapshot = try await self.snapshot(of: key)
        } catch .logNotFound {
            return nil  // the usual reader says what is missing
        }
        guard !snapshot.closedSegments.contains(where: \.isCompressed), snapshot.closedSegments.count < maximumFiles else { return nil }
        return try await runBlocking { () throws -> [PlainLogFile]? in
            var files: [PlainLogFile] = []
            for segment in snapshot.closedSegments {
                // Archived or deleted since the snapshot: the usual reader sorts that out.
                guard let file = try PosixFile.openIfExists(path: snapshot.directory + "/" + segment.plainFileName, flags: O_RDONLY) else { return nil }
                files.append(try PlainLogFile(duplicating: file, length: try file.status().size))
            }
            if let active = snapshot.active, active.readableLength > 0 {
                // Rotated since the snapshot: its inode changed.
                guard let file = try PosixFile.openIfExists(path: snapshot.activePath, flags: O_RDONLY), try file.status().inode == active.inode else { return nil }
                files.append(try PlainLogFile(duplicating: file, length: active.readableLength))
            }
            return files
        }
    }

    /// Waits until a run's log has readable lines after `sequence`, and returns its new last
    /// sequence. Returns at once when it already has. Cancel the task to stop waiting.
    public func waitForEvents(of key: RunKey, after sequence: Int64) async throws(StorageError) -> Int64 {
        let wakeup = Wakeup()
        while true {
            let written = try await waitForEvents(of: key, after: sequence, orUntil: wakeup)
            if written > sequence { return written }
        }
    }

    /// Waits until a run's log has readable lines after `sequence`, or `wakeup` rings, and
    /// returns its last readable sequence: greater than `sequence` when there are new lines.
    /// A live reader waits this way on one continuation, woken by the run or by its owner.
    package func waitForEvents(of key: RunKey, after sequence: Int64, orUntil wakeup: Wakeup) async throws(StorageError) -> Int64 {
        try await withLog(key) { log in try await log.waitForEvents(after: sequence, wakeup: wakeup) }
    }

    /// The lines after `sequence` from memory, when the store still holds all of them there
    /// (live readers following a run); nil when they must be read with ``events(of:after:through:)``.
    /// Empty when there is nothing newer yet.
    public func recentEvents(of key: RunKey, after sequence: Int64) async throws(StorageError) -> [EventChunk]? {
        let lookup = try await withLog(key) { log in try await log.recentLines(after: sequence) }
        switch lookup {
        case .lines(let chunks): return chunks
        case .behind: return nil
        }
    }

    /// The last `count` lines of a run's log (each with its newline), oldest first, reading
    /// only the end of the log.
    public func lastEvents(of key: RunKey, count: Int) async throws(StorageError) -> [ByteBuffer] {
        let snapshot = try await snapshot(of: key)
        do {
            return try await runBlocking { try TailReader.lastLines(of: snapshot, count: count) }
        } catch .io(let error) where error.errno == ENOENT && forgetSealedLog(of: key) {
            // Retention moved the sealed log's files since the snapshot: read them afresh.
            let fresh = try await self.snapshot(of: key)
            return try await runBlocking { try TailReader.lastLines(of: fresh, count: count) }
        }
    }

    /// Every run with a log directory under the root (`workspaces/<ws>/runs/<run>/logs`), in
    /// (workspace, run) order by bytes: what the files alone say exists. Directories whose
    /// names are not valid ids are left out.
    package func storedRuns() async throws(StorageError) -> [RunKey] {
        let configuration = configuration
        let root = configuration.root
        return try await runBlocking {
            var keys: [RunKey] = []
            for workspace in try FileSystem.contentsOfDirectory(root + "/workspaces") ?? [] {
                for run in try FileSystem.contentsOfDirectory("\(root)/workspaces/\(workspace)/runs") ?? [] {
                    guard let key = try? RunKey(workspace: workspace, run: run), FileSystem.exists(configuration.logDirectory(for: key)) else { continue }
                    keys.append(key)
                }
            }
            return keys.sorted { lhs, rhs in
                lhs.workspaceID == rhs.workspaceID
                    ? lhs.runID.utf8.lexicographicallyPrecedes(rhs.runID.utf8) : lhs.workspaceID.utf8.lexicographicallyPrecedes(rhs.workspaceID.utf8)
            }
        }
    }

    /// Checks a run's files without changing them (see ``LogInspector``).
    package func inspect(_ key: RunKey) async throws(StorageError) -> LogInspector.Report {
        let root = configuration.root
        return try await runBlocking { LogInspector.inspect(root: root, key: key) }
    }

    // MARK: Archiving

    /// Gzips every closed, still plain segment of a run's log. Readers see the same events
    /// before, during and after.
    package func archiveClosedSegments(of key: RunKey) async throws(StorageError) -> [SegmentArchiver.Result] {
        try await withLog(key) { log in
            let snapshot = try await log.snapshot()
            var results: [SegmentArchiver.Result] = []
            let level = configuration.compressionLevel
            for segment in snapshot.closedSegments where !segment.isCompressed {
                let result = try await environment.threadPool.runIfActive {
                    try SegmentArchiver.archive(segment, in: snapshot.directory, level: level)
                }
                log.markArchived(segment)
                if let result { results.append(result) }
            }
            return results
        }
    }

    /// Drops what the store holds in memory about a sealed run's log, so its next use reads
    /// the files again: for when another process (retention) compressed or deleted them.
    /// Returns false when the log is live or has work pending (then nothing changes).
    @discardableResult
    public func forgetSealedLog(of key: RunKey) -> Bool {
        guard let log = logs.withLock({ $0[key] }), log.retireIfSealed() else { return false }
        logs.withLock { logs in
            if logs[key] === log { logs[key] = nil }
        }
        return true
    }

    // MARK: Space

    /// Whether appends can be stored as far as space goes: false from a write that failed for
    /// want of space (`ENOSPC`, `EDQUOT`) until a write, or a probe file this call writes at
    /// most once a second, succeeds again.
    package func hasSpace() async -> Bool {
        let space = environment.space
        let path = configuration.root + "/" + Self.spaceProbeName
        return await space.hasSpace {
            do {
                return try await runBlocking { space.probe(at: path) }
            } catch {
                return StorageError(error)
            }
        }
    }

    /// The probe file ``hasSpace()`` writes and removes in the storage root.
    static let spaceProbeName = ".space-probe"

    // MARK: Resources

    /// Log files currently open for writing.
    public var openFileCount: Int { environment.openFiles.value }

    /// Readers waiting in ``waitForEvents(of:after:)`` on a run (live streams; for metrics and tests).
    public func watcherCount(of key: RunKey) -> Int {
        logs.withLock { $0[key] }?.watcherCount ?? 0
    }

    /// Runs currently held in memory.
    public var openRunCount: Int { logs.withLock { $0.count } }

    /// Retires runs idle for the configured timeout and closes least recently used writers
    /// while over the open-file budget. Returns how many runs were retired.
    @discardableResult
    public func releaseIdleResources(now: ContinuousClock.Instant = .now) -> Int {
        let candidates = logs.withLock { Array($0) }
        var retired = 0
        for (key, log) in candidates where log.retireIfIdle(now: now, idleTimeout: configuration.idleTimeout) {
            logs.withLock { logs in
                if logs[key] === log { logs[key] = nil }
            }
            retired += 1
        }
        trimOpenFilesIfNeeded()
        return retired
    }

    /// Closes idle writers, least recently used first, until the open-file budget holds
    /// with a margin.
    private func trimOpenFilesIfNeeded() {
        let budget = configuration.maxOpenFiles
        guard environment.openFiles.value > budget else { return }
        let target = budget - budget / 10
        let candidates = logs.withLock { Array($0.values) }.map { ($0.lastUse, $0) }.sorted { $0.0 < $1.0 }
        for (_, log) in candidates {
            if environment.openFiles.value <= target { break }
            _ = log.releaseWriterIfIdle()
        }
    }

    /// Flushes every run's buffered lines, closes all files and stops the I/O threads.
    public func shutdown() async {
        guard !isShutDown.exchange(true, ordering: .relaxed) else { return }
        for log in logs.withLock({ Array($0.values) }) {
            do {
                try await log.flushBuffered()
            } catch is RunLogRetired {
                continue
            } catch {
                environment.logger.error("could not flush a run's log at shutdown", metadata: ["run": "\(log.key)", "error": "\(error)"])
            }
        }
        for log in logs.withLock({ Array($0.values) }) { _ = log.releaseWriterIfIdle() }
        logs.withLock { $0.removeAll() }
        do {
            try await environment.threadPool.shutdownGracefully()
        } catch {
            environment.logger.error("could not stop the storage I/O threads", metadata: ["error": "\(error)"])
        }
    }

    /// Releases idle runs periodically until graceful shutdown, then flushes and closes.
    public func run() async throws {
        let period = min(configuration.idleTimeout / 2, .seconds(5))
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: period)
                    self.releaseIdleResources()
                }
            }
        } catch is CancellationError {
            // Graceful shutdown (or cancellation) ends the loop; shut down below either way.
        }
        await shutdown()
    }

    // MARK: Internals

    private func withLog<T>(_ key: RunKey, _ body: (RunLog) async throws -> T) async throws(StorageError) -> T {
        while true {
            guard !isShutDown.load(ordering: .relaxed) else { throw .shutDown }
            let log = logs.withLock { logs in
                if let log = logs[key] { return log }
                let log = RunLog(key: key, environment: environment)
                logs[key] = log
                return log
            }
            do {
                return try await body(log)
            } catch is RunLogRetired {
                logs.withLock { logs in
                    if logs[key] === log { logs[key] = nil }
                }
            } catch {
                throw StorageError(error)
            }
        }
    }

    func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws(StorageError) -> T {
        do {
            return try await environment.threadPool.runIfActive(body)
        } catch {
            throw StorageError(error)
        }
    }
}
