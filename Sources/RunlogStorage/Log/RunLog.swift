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

    enum Phase {
        case unopened
        case opening([CheckedContinuation<Void, any Error>])
        case open
        case retired
    }

    struct Waiter {
        var target: Int64
        var receipt: AppendReceipt
        var continuation: CheckedContinuation<Outcome, Never>
    }

    /// What an append added, to undo it if its write fails.
    struct AppendRecord {
        var lastSequence: Int64
        var producerIDs: [String]
    }

    struct State {
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
    struct FlushOutcome: Sendable {
        var writer: SegmentWriter?
        var active: LogSnapshot.ActiveSegment?
        var rotated: [ClosedSegment] = []
        /// The last sequence now in the files.
        var writtenThrough: Int64
        /// Set when the flush stopped early: the error and the lines not written.
        var failure: (error: StorageError, unwritten: ByteBuffer)?
    }

    enum Effect {
        case none
        case flush(FlushJob)
        case armTimer(ContinuousClock.Instant)
    }

    let key: RunKey
    let directory: String
    let environment: RunLogEnvironment
    let encoder: EventLineEncoder
    let state: Mutex<State>
    /// Readers waiting for new lines; locked after `state` when both are needed.
    let watchers = WatcherRegistry()

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

    var configuration: EventStoreConfiguration { environment.configuration }
    var logger: Logger { environment.logger }
    var activePath: String { directory + "/" + SegmentName.activeFileName }

    var lastUse: ContinuousClock.Instant { state.withLock { $0.lastUse } }

    /// Whether the log holds its terminal event.
    var isSealed: Bool { state.withLock { $0.sealedAt != nil } }

    /// Readers currently waiting for new lines.
    var watcherCount: Int { watchers.count }
}
