import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One run's event log: assigns sequences, buffers encoded lines, flushes them through the
/// I/O thread pool, acknowledges appends once they are as durable as configured, and hands
/// readers consistent snapshots.
///
/// All state sits behind one mutex; blocking work (recovery, writes, fsync, rotation) runs
/// on the thread pool, one flush at a time per run. Timing decisions come from
/// ``FlushStateMachine``.
final class RunLog: Sendable {
    /// How a waiting append ends.
    enum Outcome: Sendable {
        case finished(Result<AppendReceipt, StorageError>)
        /// Conditions changed (buffer space freed, ids loaded): try again.
        case retry
        case retired
    }

    private enum Phase {
        case unopened
        case opening([CheckedContinuation<Void, any Error>])
        case open
        case retired
    }

    private struct Waiter {
        var target: Int64
        var receipt: AppendReceipt
        var continuation: CheckedContinuation<Outcome, Never>
    }

    /// What an append added, to undo it if its write fails.
    private struct AppendRecord {
        var lastSequence: Int64
        var producerIDs: [String]
    }

    private struct State {
        var phase: Phase = .unopened
        var exists = false
        var closedSegments: [ClosedSegment] = []
        var active: LogSnapshot.ActiveSegment?
        var writer: SegmentWriter?
        /// Last sequence assigned (buffered or written).
        var lastSequence: Int64 = 0
        /// Last sequence written (and synced, under `fsync`): what readers may see.
        var writtenSequence: Int64 = 0
        var buffer: ByteBuffer
        var flush: FlushStateMachine
        var waiters: [Waiter] = []
        /// Readers waiting for lines after a sequence to become readable.
        /// Recently written lines for live readers; nil until the log has one.
        var tail: LiveTail?
        var spaceWaiters: [CheckedContinuation<Outcome, Never>] = []
        /// Producer event ids and their sequences; nil until first needed.
        var producerIDs: [String: Int64]?
        var unwritten: [AppendRecord] = []
        var sealedAt: Int64?
        var writeFailure: StorageError?
        var generator = EventIdentifier.Generator()
        var timestampMillisecond: Int64 = -1
        var timestamp = [UInt8](repeating: 0, count: Timestamp.formattedLength)
        var lastUse: ContinuousClock.Instant
    }

    struct FlushJob: Sendable {
        var bytes: ByteBuffer
        var events: Int
        var lastSequence: Int64
        var writer: SegmentWriter?
        /// The active segment's first sequence and readable length, for (re)opening it.
        var activeFirstSequence: Int64
        var activeLength: Int64
    }

    /// What a flush did: possibly only part of its job (when a write failed midway).
    private struct FlushOutcome: Sendable {
        var writer: SegmentWriter?
        var active: LogSnapshot.ActiveSegment?
        var rotated: [ClosedSegment] = []
        /// The last sequence now in the files.
        var writtenThrough: Int64
        /// Set when the flush stopped early: the error and the lines not written.
        var failure: (error: StorageError, unwritten: ByteBuffer)?
    }

    private enum Effect {
        case none
        case flush(FlushJob)
        case armTimer(ContinuousClock.Instant)
    }

    let key: RunKey
    let directory: String
    private let environment: RunLogEnvironment
    private let encoder: EventLineEncoder
    private let state: Mutex<State>
    /// Readers waiting for new lines; locked after `state` when both are needed.
    private let watchers = WatcherRegistry()

    init(key: RunKey, environment: RunLogEnvironment) {
        self.key = key
        self.directory = environment.configuration.logDirectory(for: key)
        self.environment = environment
        self.encoder = EventLineEncoder(key: key)
        self.state = Mutex(
            State(
                buffer: ByteBuffer(),
                flush: FlushStateMachine(policy: environment.configuration.flushPolicy),
                lastUse: .now
            )
        )
    }

    private var configuration: EventStoreConfiguration { environment.configuration }
    private var logger: Logger { environment.logger }
    private var activePath: String { directory + "/" + SegmentName.activeFileName }

    var lastUse: ContinuousClock.Instant { state.withLock { $0.lastUse } }

    /// Whether the log holds its terminal event.
    var isSealed: Bool { state.withLock { $0.sealedAt != nil } }

    /// Readers currently waiting for new lines.
    var watcherCount: Int { watchers.count }

    // MARK: Opening

    /// Recovers the log from disk on first use; later calls return at once.
    func ensureOpen() async throws {
        let ready = state.withLock { state -> Bool? in
            switch state.phase {
            case .open: return true
            case .retired: return nil
            default: return false
            }
        }
        switch ready {
        case true?: return
        case nil: throw RunLogRetired()
        case false?: break
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startRecovery = state.withLock { state -> Bool in
                switch state.phase {
                case .open:
                    continuation.resume()
                    return false
                case .retired:
                    continuation.resume(throwing: RunLogRetired())
                    return false
                case .opening(var waiting):
                    waiting.append(continuation)
                    state.phase = .opening(waiting)
                    return false
                case .unopened:
                    state.phase = .opening([continuation])
                    return true
                }
            }
            if startRecovery {
                environment.threadPool.submit { work in
                    let result: Result<RecoveredLog, any Error>
                    if case .active = work {
                        result = Result { try LogRecovery.recover(self.key, directory: self.directory, logger: self.logger) }
                    } else {
                        result = .failure(StorageError.shutDown)
                    }
                    self.finishOpening(result)
                }
            }
        }
    }

    private func finishOpening(_ result: Result<RecoveredLog, any Error>) {
        state.withLock { state in
            guard case .opening(let waiting) = state.phase else { return }
            switch result {
            case .success(let recovered):
                state.exists = recovered.exists
                state.closedSegments = recovered.closedSegments
                state.active = recovered.active
                state.lastSequence = recovered.lastSequence
                state.writtenSequence = recovered.lastSequence
                watchers.advance(to: recovered.lastSequence)  // nobody waits yet: resumes nothing
                if let terminal = configuration.terminalEventType, recovered.lastEventType == terminal {
                    state.sealedAt = recovered.lastSequence
                }
                state.phase = .open
                for continuation in waiting { continuation.resume() }
            case .failure(let error):
                logger.error("could not open an event log", metadata: ["run": "\(key)", "error": "\(error)"])
                state.phase = .unopened
                for continuation in waiting { continuation.resume(throwing: error) }
            }
        }
    }

    /// Loads the producer event ids already in the log, once, before the first append that carries one.
    private func loadProducerIDsIfNeeded() async throws {
        guard state.withLock({ $0.producerIDs == nil }) else { return }
        let snapshot = try state.withLock { state throws -> LogSnapshot? in
            guard case .open = state.phase else { throw RunLogRetired() }
            guard state.exists else { return nil }
            return makeSnapshot(state)
        }
        var ids: [String: Int64] = [:]
        if let snapshot {
            ids = try await environment.threadPool.runIfActive {
                var ids: [String: Int64] = [:]
                let cursor = LogCursor(snapshot: snapshot, after: 0)
                while case .chunk(let chunk) = try cursor.next() {
                    chunk.forEachLine { sequence, line in
                        line.withUnsafeReadableBytes { bytes in
                            guard let range = StoredLine.eventID(of: bytes) else { return }
                            let id = UnsafeRawBufferPointer(rebasing: bytes[range])
                            if !EventIdentifier.isGenerated(id) {
                                ids[String(decoding: id, as: UTF8.self)] = sequence
                            }
                        }
                    }
                }
                return ids
            }
        }
        state.withLock { state in
            if state.producerIDs == nil { state.producerIDs = ids }
        }
    }

    // MARK: Appending

    func append(_ batch: EventBatch, expectedLastSequence: Int64?) async throws -> AppendReceipt {
        try await ensureOpen()
        while true {
            if batch.hasProducerEventIDs { try await loadProducerIDsIfNeeded() }
            let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                let effect = state.withLock { state in
                    append(batch, expectedLastSequence: expectedLastSequence, to: &state, continuation: continuation)
                }
                perform(effect)
            }
            switch outcome {
            case .finished(let result): return try result.get()
            case .retry: continue
            case .retired: throw RunLogRetired()
            }
        }
    }

    private func append(
        _ batch: EventBatch,
        expectedLastSequence: Int64?,
        to state: inout State,
        continuation: CheckedContinuation<Outcome, Never>
    ) -> Effect {
        func finish(_ result: Result<AppendReceipt, StorageError>) -> Effect {
            continuation.resume(returning: .finished(result))
            return .none
        }
        guard case .open = state.phase else {
            continuation.resume(returning: .retired)
            return .none
        }
        let now = ContinuousClock.now
        state.lastUse = now
        if state.flush.memoryBytes >= configuration.maxBufferedBytes {
            if let failure = state.writeFailure {
                return finish(.failure(.unavailable("writes to this run's log are failing (\(failure)); try again later")))
            }
            // Wait for the buffer to drain, and make sure a flush is on its way to drain it.
            state.spaceWaiters.append(continuation)
            return makeEffect(for: state.flush.acknowledgementRequested(now: now), state: &state)
        }
        if let expectedLastSequence, expectedLastSequence != state.lastSequence {
            return finish(.failure(.sequenceMismatch(expected: expectedLastSequence, actual: state.lastSequence)))
        }
        if batch.hasProducerEventIDs && state.producerIDs == nil {
            continuation.resume(returning: .retry)
            return .none
        }

        // Decide which events are new, and their sequences.
        var sequences: [Int64] = []
        sequences.reserveCapacity(batch.count)
        var isNew = [Bool](repeating: true, count: batch.count)
        var newIDs: [String] = []
        var batchIDs: [String: Int64] = [:]
        var duplicates = 0
        var duplicateTarget: Int64 = 0
        var terminalIndex: Int?
        var next = state.lastSequence
        for index in 0..<batch.count {
            let event = batch.events[index]
            if let range = event.eventID {
                let id = String(decoding: batch.body[range], as: UTF8.self)
                if let existing = state.producerIDs?[id] ?? batchIDs[id] {
                    isNew[index] = false
                    sequences.append(existing)
                    duplicates += 1
                    duplicateTarget = max(duplicateTarget, existing)
                    continue
                }
                batchIDs[id] = next + 1
                newIDs.append(id)
            }
            next += 1
            sequences.append(next)
            if let terminal = configuration.terminalEventType, terminalIndex == nil,
                batch.body[event.type].elementsEqual(terminal.utf8)
            {
                terminalIndex = index
            }
        }
        let appended = Int(next - state.lastSequence)
        if appended > 0 {
            if state.sealedAt != nil {
                return finish(.failure(.logClosed(key, lastSequence: state.lastSequence)))
            }
            if let terminalIndex, let after = (terminalIndex + 1..<batch.count).first(where: { isNew[$0] }) {
                return finish(.failure(.invalidEvent(EventRejection(
                    line: batch.events[after].line,
                    reason: "'\(configuration.terminalEventType!)' must be the last event of a run"
                ))))
            }
        }
        var receipt = AppendReceipt(
            firstSequence: appended > 0 ? state.lastSequence + 1 : nil,
            lastSequence: appended > 0 ? next : nil,
            appended: appended,
            duplicates: duplicates,
            sequences: sequences
        )
        guard appended > 0 else {
            // Only duplicates: acknowledge once the originals are as durable as new events would be.
            if configuration.durability.acknowledgesAfterWrite, duplicateTarget > state.writtenSequence {
                state.waiters.append(Waiter(target: duplicateTarget, receipt: receipt, continuation: continuation))
                return makeEffect(for: state.flush.acknowledgementRequested(now: now), state: &state)
            }
            return finish(.success(receipt))
        }

        // Encode the new lines into the buffer.
        let wall = environment.wallClock()
        if wall.millisecondsSinceEpoch != state.timestampMillisecond {
            state.timestampMillisecond = wall.millisecondsSinceEpoch
            state.timestamp.withUnsafeMutableBytes { wall.write(to: $0.baseAddress!) }
        }
        let bytesBefore = state.buffer.writerIndex
        let millisecond = UInt64(max(0, wall.millisecondsSinceEpoch))
        state.timestamp.withUnsafeBytes { createdAt in
            for index in 0..<batch.count where isNew[index] {
                let eventID: EventLineEncoder.EventID = batch.events[index].eventID.map { .producer($0) } ?? .generated
                encoder.encode(
                    batch, at: index, sequence: sequences[index], eventID: eventID, createdAt: createdAt,
                    generator: &state.generator, millisecond: millisecond, into: &state.buffer
                )
            }
        }
        let encodedBytes = state.buffer.writerIndex - bytesBefore
        state.exists = true  // readable (empty) until the first flush writes the file
        state.lastSequence = next
        receipt.createdAt = wall
        receipt.storedBytes = encodedBytes
        if terminalIndex != nil { state.sealedAt = next }
        for (id, sequence) in batchIDs { state.producerIDs?[id] = sequence }
        state.unwritten.append(AppendRecord(lastSequence: next, producerIDs: newIDs))

        let waiting = configuration.durability.acknowledgesAfterWrite
        if waiting {
            state.waiters.append(Waiter(target: max(next, duplicateTarget), receipt: receipt, continuation: continuation))
        } else {
            continuation.resume(returning: .finished(.success(receipt)))
        }
        let action = state.flush.appended(events: appended, bytes: encodedBytes, awaitingAcknowledgement: waiting, now: now)
        return makeEffect(for: action, state: &state)
    }

    /// Writes everything buffered now and waits until it is written.
    func flushBuffered() async throws {
        try await ensureOpen()
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let effect = state.withLock { state -> Effect in
                guard state.lastSequence > state.writtenSequence else {
                    continuation.resume(returning: .retry)
                    return .none
                }
                let receipt = AppendReceipt(firstSequence: nil, lastSequence: nil, appended: 0, duplicates: 0, sequences: [])
                state.waiters.append(Waiter(target: state.lastSequence, receipt: receipt, continuation: continuation))
                return makeEffect(for: state.flush.acknowledgementRequested(now: .now), state: &state)
            }
            perform(effect)
        }
        if case .finished(.failure(let error)) = outcome { throw error }
    }

    // MARK: Flushing

    private func makeEffect(for action: FlushStateMachine.Action, state: inout State) -> Effect {
        switch action {
        case .none:
            return .none
        case .armTimer(let deadline):
            return .armTimer(deadline)
        case .flush:
            let bytes = state.buffer
            state.buffer = ByteBufferAllocator().buffer(capacity: min(bytes.capacity, configuration.flushBytes * 2))
            let active = state.active
            let activeFirst = (active?.readableLength ?? 0) > 0 ? active!.firstSequence : state.writtenSequence + 1
            return .flush(
                FlushJob(
                    bytes: bytes,
                    events: Int(state.lastSequence - state.writtenSequence),
                    lastSequence: state.lastSequence,
                    writer: state.writer,
                    activeFirstSequence: activeFirst,
                    activeLength: active?.readableLength ?? 0
                )
            )
        }
    }

    private func perform(_ effect: Effect) {
        switch effect {
        case .none:
            return
        case .flush(let job):
            environment.threadPool.submit { work in
                guard case .active = work else {
                    self.completeFlushes(job, failingWith: StorageError.shutDown)
                    return
                }
                self.runFlushes(startingWith: job)
            }
        case .armTimer(let deadline):
            Task {
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                } catch {
                    return  // cancelled: nothing to flush for
                }
                self.timerFired()
            }
        }
    }

    private func timerFired() {
        let effect = state.withLock { state in
            makeEffect(for: state.flush.timerFired(now: .now), state: &state)
        }
        perform(effect)
    }

    /// Runs on the thread pool: writes a job, completes it, and goes on while completions
    /// start new flushes.
    private func runFlushes(startingWith first: FlushJob) {
        var job = first
        while true {
            let outcome = write(job)
            let effect = state.withLock { state in complete(job, with: outcome, state: &state) }
            watchers.advance(to: outcome.writtenThrough)
            switch effect {
            case .flush(let next):
                job = next
            case .none, .armTimer:
                perform(effect)
                return
            }
        }
    }

    private func completeFlushes(_ job: FlushJob, failingWith error: StorageError) {
        let outcome = FlushOutcome(
            writer: job.writer, active: nil, writtenThrough: job.lastSequence - Int64(job.events), failure: (error, job.bytes)
        )
        let effect = state.withLock { state in complete(job, with: outcome, state: &state) }
        perform(effect)
    }

    /// Blocking: writes the job's lines to the active segment, syncing under `fsync`. A segment
    /// that reaches the size limit is closed after the line that reached it, and a new active
    /// segment continues the write.
    private func write(_ job: FlushJob) -> FlushOutcome {
        let started = ContinuousClock.now
        defer { environment.metrics.flushDuration.record(ContinuousClock.now - started) }
        let synchronously = configuration.durability == .fsync
        var outcome = FlushOutcome(writer: job.writer, active: nil, writtenThrough: job.lastSequence - Int64(job.events))
        var remaining = job.bytes
        do {
            var writer = try job.writer ?? openWriter(firstSequence: job.activeFirstSequence, expectedLength: job.activeLength)
            outcome.writer = writer
            while remaining.readableBytes > 0 {
                // Take everything, or up to the end of the line that fills the segment.
                let room = max(1, configuration.segmentBytes - writer.committedLength)
                var part = remaining
                var fillsSegment = false
                if Int64(remaining.readableBytes) >= room {
                    let view = remaining.readableBytesView
                    let from = view.startIndex + Int(room) - 1
                    if let newline = view[from...].firstIndex(of: UInt8(ascii: "\n")) {
                        part = remaining.readSlice(length: newline - remaining.readerIndex + 1)!
                        fillsSegment = true
                    }
                }
                if !fillsSegment { remaining.moveReaderIndex(forwardBy: remaining.readableBytes) }
                try writeAll(part, to: writer, synchronously: synchronously)
                let lastInPart = part.withUnsafeReadableBytes(StoredLine.lastSequence(inLines:))
                outcome.writtenThrough = lastInPart
                outcome.active = .init(firstSequence: writer.firstSequence, readableLength: writer.committedLength, inode: writer.inode)
                if fillsSegment, let closed = rotate(writer, lastSequence: lastInPart) {
                    outcome.rotated.append(closed)
                    outcome.writer = nil
                    outcome.active = nil
                    writer = try openWriter(firstSequence: lastInPart + 1, expectedLength: 0)
                    outcome.writer = writer
                    outcome.active = .init(firstSequence: writer.firstSequence, readableLength: 0, inode: writer.inode)
                }
            }
        } catch {
            outcome.failure = (StorageError(error), remaining)
        }
        return outcome
    }

    /// Writes one part completely (and syncs it), or leaves the file as it was.
    private func writeAll(_ part: ByteBuffer, to writer: SegmentWriter, synchronously: Bool) throws {
        do {
            try part.withUnsafeReadableBytes { bytes in try writer.file.writeAll(bytes) }
            if synchronously {
                let started = ContinuousClock.now
                try writer.file.synchronizeData()
                environment.metrics.fsyncDuration.record(ContinuousClock.now - started)
            }
        } catch {
            // Undo the partial write; if even that fails, reopening truncates it (openWriter).
            do {
                try writer.file.truncate(to: writer.committedLength)
            } catch let truncation {
                logger.error("could not undo a failed write", metadata: ["path": "\(activePath)", "error": "\(truncation)"])
            }
            throw error
        }
        writer.committedLength += Int64(part.readableBytes)
    }

    /// Gives the full active segment its closed name; nil (and the segment keeps growing) when
    /// the rename fails.
    private func rotate(_ writer: SegmentWriter, lastSequence: Int64) -> ClosedSegment? {
        let segment = ClosedSegment(firstSequence: writer.firstSequence, lastSequence: lastSequence, isCompressed: false)
        do {
            try FileSystem.rename(activePath, to: directory + "/" + segment.plainFileName)
        } catch {
            logger.error("could not rotate a segment; writing on", metadata: ["path": "\(activePath)", "error": "\(error)"])
            return nil
        }
        logger.debug("rotated a segment", metadata: ["run": "\(key)", "segment": "\(segment.plainFileName)"])
        return segment
    }

    /// Opens (creating if needed) the active segment for appending, and makes sure it holds
    /// exactly the lines known to be written.
    private func openWriter(firstSequence: Int64, expectedLength: Int64) throws -> SegmentWriter {
        let synchronously = configuration.durability == .fsync
        var created = false
        let file: PosixFile
        if FileSystem.exists(activePath) {
            file = try PosixFile(path: activePath, flags: O_WRONLY | O_APPEND)
        } else {
            try FileSystem.createDirectories(directory, durably: synchronously)
            file = try PosixFile(path: activePath, flags: O_WRONLY | O_APPEND | O_CREAT, mode: 0o644)
            created = true
        }
        let (size, inode) = try file.status()
        if size > expectedLength {
            // Leftover of a write that failed and could not be undone at the time.
            try file.truncate(to: expectedLength)
            logger.warning("removed the unacknowledged tail of a failed write", metadata: ["path": "\(activePath)", "bytes": "\(size - expectedLength)"])
        } else if size < expectedLength {
            throw StorageError.corruptLog("\(activePath) is \(size) bytes but \(expectedLength) were written")
        }
        if created && synchronously { try FileSystem.synchronizeDirectory(directory) }
        return SegmentWriter(
            file: file, inode: inode, firstSequence: firstSequence, committedLength: expectedLength, counter: environment.openFiles
        )
    }

    private func complete(_ job: FlushJob, with outcome: FlushOutcome, state: inout State) -> Effect {
        let now = ContinuousClock.now
        // Whatever reached the files counts, even when the flush then failed.
        state.writer = outcome.writer
        state.closedSegments.append(contentsOf: outcome.rotated)
        if let active = outcome.active {
            state.active = active
        } else if !outcome.rotated.isEmpty {
            state.active = nil
        }
        if outcome.writtenThrough > state.writtenSequence {
            if state.tail != nil {
                if outcome.failure == nil, job.lastSequence == outcome.writtenThrough {
                    state.tail!.append(EventChunk(bytes: job.bytes, firstSequence: state.writtenSequence + 1, lastSequence: job.lastSequence))
                } else {
                    // Only part of the job reached the files: readers find those lines there.
                    state.tail = LiveTail(capacity: configuration.liveTailBytes, after: outcome.writtenThrough)
                }
            }
            state.writtenSequence = outcome.writtenThrough
            state.exists = true
            state.unwritten.removeAll { $0.lastSequence <= outcome.writtenThrough }
            resumeWaiters(upTo: outcome.writtenThrough, state: &state)
        }
        guard let (failure, unwritten) = outcome.failure else {
            state.writeFailure = nil
            resumeSpaceWaiters(&state)
            return makeEffect(for: state.flush.flushSucceeded(now: now), state: &state)
        }
        state.writer = nil  // reopened (and checked) by the next flush
        if configuration.durability.acknowledgesAfterWrite {
            // Nothing unwritten was acknowledged: undo it all, so the sequences stay gapless.
            logger.error(
                "a write failed; unacknowledged appends were refused",
                metadata: ["run": "\(key)", "error": "\(failure)", "events": "\(state.lastSequence - state.writtenSequence)"]
            )
            for record in state.unwritten {
                for id in record.producerIDs { state.producerIDs?[id] = nil }
            }
            state.unwritten.removeAll()
            state.lastSequence = state.writtenSequence
            if let sealed = state.sealedAt, sealed > state.writtenSequence { state.sealedAt = nil }
            state.buffer.clear()
            state.flush.flushFailedDiscardingLines()
            let waiters = state.waiters
            state.waiters.removeAll()
            for waiter in waiters {
                waiter.continuation.resume(returning: .finished(.failure(failure)))
            }
            resumeSpaceWaiters(&state)
            return .none
        }
        // Under `none` the lines were acknowledged: keep them and retry.
        logger.error(
            "a write failed; retrying",
            metadata: ["run": "\(key)", "error": "\(failure)", "retry_in": "\(configuration.writeRetryDelay)"]
        )
        state.writeFailure = failure
        var retained = unwritten
        retained.writeBuffer(&state.buffer)
        state.buffer = retained
        resumeSpaceWaiters(&state)
        let action = state.flush.flushFailedKeepingLines(
            events: Int(job.lastSequence - state.writtenSequence), bytes: unwritten.readableBytes,
            now: now, retryAt: now + configuration.writeRetryDelay
        )
        return makeEffect(for: action, state: &state)
    }

    private func resumeWaiters(upTo sequence: Int64, state: inout State) {
        guard !state.waiters.isEmpty else { return }
        var remaining: [Waiter] = []
        for waiter in state.waiters {
            if waiter.target <= sequence {
                waiter.continuation.resume(returning: .finished(.success(waiter.receipt)))
            } else {
                remaining.append(waiter)
            }
        }
        state.waiters = remaining
    }

    /// Waits until lines after `sequence` are readable or `wakeup` rings; returns the last
    /// readable sequence. Cancelling the calling task ends the wait with `CancellationError`.
    func waitForEvents(after sequence: Int64, wakeup: Wakeup) async throws -> Int64 {
        try await ensureOpen()
        try state.withLock { state throws in
            guard case .open = state.phase else { throw RunLogRetired() }
            state.lastUse = .now
        }
        return try await watchers.wait(after: sequence, wakeup: wakeup)
    }

    /// The written lines after `sequence` if memory still holds them all; `.behind` when the
    /// reader must read the files. The first call starts keeping a tail for this log.
    func recentLines(after sequence: Int64) async throws -> LiveTail.Lookup {
        try await ensureOpen()
        return try state.withLock { state throws -> LiveTail.Lookup in
            guard case .open = state.phase else { throw RunLogRetired() }
            state.lastUse = .now
            if state.tail == nil { state.tail = LiveTail(capacity: configuration.liveTailBytes, after: state.writtenSequence) }
            return state.tail!.lines(after: sequence)
        }
    }

    private func resumeSpaceWaiters(_ state: inout State) {
        let waiting = state.spaceWaiters
        state.spaceWaiters.removeAll()
        for continuation in waiting { continuation.resume(returning: .retry) }
    }

    // MARK: Reading and maintenance

    private func makeSnapshot(_ state: State) -> LogSnapshot {
        LogSnapshot(key: key, directory: directory, closedSegments: state.closedSegments, active: state.active, lastSequence: state.writtenSequence)
    }

    /// What readers may read now.
    func snapshot() async throws -> LogSnapshot {
        try await ensureOpen()
        return try state.withLock { state throws -> LogSnapshot in
            guard case .open = state.phase else { throw RunLogRetired() }
            guard state.exists else { throw StorageError.logNotFound(key) }
            state.lastUse = .now
            return makeSnapshot(state)
        }
    }

    /// Creates the log's directory and empty active segment; false when it already existed.
    func create() async throws -> Bool {
        try await ensureOpen()
        guard !state.withLock({ $0.exists }) else { return false }
        let synchronously = configuration.durability == .fsync
        let (directory, path) = (self.directory, activePath)
        let inode = try await environment.threadPool.runIfActive {
            try FileSystem.createDirectories(directory, durably: synchronously)
            let file = try PosixFile(path: path, flags: O_WRONLY | O_CREAT, mode: 0o644)
            if synchronously { try FileSystem.synchronizeDirectory(directory) }
            return try file.status().inode
        }
        return state.withLock { state in
            guard !state.exists else { return false }
            state.exists = true
            state.active = .init(firstSequence: state.lastSequence + 1, readableLength: 0, inode: inode)
            return true
        }
    }

    /// Records that a closed segment is now stored gzipped.
    func markArchived(_ segment: ClosedSegment) {
        state.withLock { state in
            if let index = state.closedSegments.firstIndex(where: { $0.firstSequence == segment.firstSequence }) {
                state.closedSegments[index].isCompressed = true
            }
        }
    }

    /// Retires the log when nothing is pending and it has not been used for `idleTimeout`,
    /// closing its file and dropping its memory. A retired log is replaced on next use.
    func retireIfIdle(now: ContinuousClock.Instant, idleTimeout: Duration) -> Bool {
        state.withLock { state in
            switch state.phase {
            case .opening, .retired: return false
            case .unopened, .open: break
            }
            guard !state.flush.isFlushing, state.lastSequence == state.writtenSequence, state.waiters.isEmpty,
                state.spaceWaiters.isEmpty, now - state.lastUse >= idleTimeout, watchers.retireIfEmpty()
            else { return false }
            state.phase = .retired
            state.writer = nil
            state.producerIDs = nil
            return true
        }
    }

    /// Retires a sealed log with nothing pending, so that its next use reads the files again:
    /// another process (retention) may have renamed or removed them. Live readers waiting on
    /// it are told to start over on the replacement. Live logs are left alone: only this
    /// process changes their files.
    func retireIfSealed() -> Bool {
        let retired = state.withLock { state in
            guard case .open = state.phase, state.sealedAt != nil, !state.flush.isFlushing,
                state.lastSequence == state.writtenSequence, state.waiters.isEmpty, state.spaceWaiters.isEmpty
            else { return false }
            state.phase = .retired
            state.writer = nil
            state.producerIDs = nil
            return true
        }
        if retired { watchers.retire() }
        return retired
    }

    /// Closes the log's file handle if no write needs it (it reopens on the next flush).
    func releaseWriterIfIdle() -> Bool {
        state.withLock { state in
            guard state.writer != nil, !state.flush.isFlushing, state.lastSequence == state.writtenSequence else { return false }
            state.writer = nil
            return true
        }
    }
}

extension StorageError {
    /// Maps any error from the engine's internals to the public error.
    init(_ error: any Error) {
        switch error {
        case let error as StorageError: self = error
        case let error as SystemError: self = .io(error)
        case let error as GzipError: self = .corruptLog(error.description)
        case is CancellationError: self = .cancelled
        case is NIOThreadPoolError.ThreadPoolInactive: self = .shutDown
        default: self = .corruptLog("\(error)")
        }
    }
}
