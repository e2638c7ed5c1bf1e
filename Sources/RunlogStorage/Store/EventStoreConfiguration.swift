/// Settings of an ``EventStore``. Defaults suit a single server on local disk.
public struct EventStoreConfiguration: Sendable {
    /// The storage root: logs go under `<root>/workspaces/<ws>/runs/<run>/logs/`.
    public var root: String
    public var durability: Durability = .fsync
    /// Flush when this many events are buffered.
    public var flushEvents: Int = 1024
    /// Flush when this many bytes are buffered.
    public var flushBytes: Int = 1 << 20
    /// Flush when the oldest buffered event has waited this long.
    public var flushInterval: Duration = .milliseconds(10)
    /// Bytes one run may hold in memory (buffered plus being written) before appenders wait.
    public var maxBufferedBytes: Int = 16 << 20
    /// Bytes of recently written lines a followed run keeps in memory for its live readers;
    /// a reader further behind reads the files until it catches up. 0 turns this off.
    public var liveTailBytes: Int = 256 << 10
    /// Rotate the active segment once it reaches this size.
    public var segmentBytes: Int64 = 64 << 20
    /// Keep at most about this many log files open for writing; the least recently used idle
    /// runs release theirs first.
    public var maxOpenFiles: Int = 1024
    /// A run untouched this long releases its file handle and memory (and reopens on next use).
    public var idleTimeout: Duration = .seconds(60)
    /// What one event and one batch may hold; bodies are parsed with these wherever they arrive.
    public var eventLimits = EventBatch.Limits()
    /// The event type that closes a log: nothing may be appended after it.
    public var terminalEventType: String? = LifecycleEvent.completed
    /// Threads for blocking file and zlib work.
    public var ioThreads: Int = 4
    /// gzip level for archived segments.
    public var compressionLevel: Int32 = 6
    /// Wait this long before retrying a failed write under `none` durability.
    public var writeRetryDelay: Duration = .seconds(1)

    public init(root: String) {
        self.root = root
    }

    /// The `logs/` directory of a run.
    public func logDirectory(for key: RunKey) -> String {
        "\(root)/workspaces/\(key.workspaceID)/runs/\(key.runID)/logs"
    }

    /// A run's `logs/` directory relative to the storage root (the catalog's `events_path`):
    /// it holds every segment, whatever rotation and compression named them.
    public static func relativeLogDirectory(for key: RunKey) -> String {
        "workspaces/\(key.workspaceID)/runs/\(key.runID)/logs"
    }

    var flushPolicy: FlushStateMachine.Policy {
        .init(maxEvents: flushEvents, maxBytes: flushBytes, maxDelay: flushInterval)
    }
}
