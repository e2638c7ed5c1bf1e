/// What a reader may read of a run's log at one moment: the closed segments, and how many
/// bytes of the active segment hold acknowledged, durable lines.
public struct LogSnapshot: Sendable, Equatable {
    /// The active segment as far as it is readable.
    public struct ActiveSegment: Sendable, Equatable {
        /// Sequence of its first line (the last sequence + 1 while it is empty).
        public var firstSequence: Int64
        /// Bytes readable from its start: only whole, flushed lines.
        public var readableLength: Int64
        /// Identifies the file, so a reader notices when rotation replaced it.
        public var inode: UInt64
    }

    /// The run the log belongs to.
    public var key: RunKey
    /// The run's `logs/` directory.
    public var directory: String
    public var closedSegments: [ClosedSegment]
    public var active: ActiveSegment?
    /// The last sequence a reader may see.
    public var lastSequence: Int64

    var activePath: String { directory + "/" + SegmentName.activeFileName }
}
