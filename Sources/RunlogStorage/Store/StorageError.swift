import NIOPosix

/// What can go wrong in the storage engine, in terms a caller can act on.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A workspace or run id breaks the naming rule (field name, reason).
    case invalidIdentifier(String, String)
    /// One event of a batch is unacceptable; the whole batch was refused and nothing was written.
    case invalidEvent(EventRejection)
    /// The request body is not NDJSON, a JSON object or an array of objects.
    case invalidBody(String)
    /// The run has no log on disk.
    case logNotFound(RunKey)
    /// The log already holds its terminal event; nothing more may be appended.
    case logClosed(RunKey, lastSequence: Int64)
    /// `expectedLastSequence` did not match the log's last sequence.
    case sequenceMismatch(expected: Int64, actual: Int64)
    /// The log was deleted while it was being read (for example by retention).
    case logDeleted(RunKey)
    /// The log does not end with its terminal event, so it cannot be compressed whole.
    case logNotSealed(RunKey)
    /// A file operation failed: the batch was not acknowledged and the log is still readable.
    case io(SystemError)
    /// The volume holding the storage root is full (or the quota is used up): nothing of the
    /// batch was acknowledged. Appends work again once space returns.
    case outOfSpace(SystemError)
    /// Too much is waiting to be written (the disk is failing or too slow); try again later.
    case unavailable(String)
    /// A log file holds bytes that are not a valid log (a damaged gzip member, a broken line).
    case corruptLog(String)
    /// The store was shut down.
    case shutDown
    /// The calling task was cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .invalidIdentifier(let field, let reason): return "invalid \(field): \(reason)"
        case .invalidEvent(let rejection): return rejection.description
        case .invalidBody(let reason): return "invalid body: \(reason)"
        case .logNotFound(let key): return "run \(key) has no event log"
        case .logClosed(let key, let last): return "run \(key) is closed (last sequence \(last))"
        case .sequenceMismatch(let expected, let actual):
            return "expected last sequence \(expected) but the log is at \(actual)"
        case .logDeleted(let key): return "the event log of run \(key) was deleted"
        case .logNotSealed(let key): return "the event log of run \(key) does not end with its terminal event"
        case .io(let error): return error.description
        case .outOfSpace(let error): return "no space left for the event logs: \(error)"
        case .unavailable(let reason): return "storage unavailable: \(reason)"
        case .corruptLog(let reason): return "corrupt event log: \(reason)"
        case .shutDown: return "the event store is shut down"
        case .cancelled: return "cancelled"
        }
    }
}

/// Why one event of a batch was refused, with its 1-based position in the batch
/// (the line number for NDJSON, the element index for a JSON array).
public struct EventRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}

extension StorageError {
    /// Maps any error from the engine's internals to the public error.
    init(_ error: any Error) {
        switch error {
        case let error as StorageError: self = error
        case let error as SystemError: self = error.isOutOfSpace ? .outOfSpace(error) : .io(error)
        case let error as GzipError: self = .corruptLog(error.description)
        case is CancellationError: self = .cancelled
        case is NIOThreadPoolError.ThreadPoolInactive: self = .shutDown
        default: self = .corruptLog("\(error)")
        }
    }
}
