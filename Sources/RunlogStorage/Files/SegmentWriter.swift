/// The open writer of a run's active segment. Only the one flush in flight uses it.
final class SegmentWriter: @unchecked Sendable {
    let file: PosixFile
    let inode: UInt64
    let firstSequence: Int64
    /// Bytes of whole lines written successfully.
    var committedLength: Int64
    private let counter: OpenFileCounter

    init(file: PosixFile, inode: UInt64, firstSequence: Int64, committedLength: Int64, counter: OpenFileCounter) {
        self.file = file
        self.inode = inode
        self.firstSequence = firstSequence
        self.committedLength = committedLength
        self.counter = counter
        counter.opened()
    }

    deinit {
        counter.closed()
    }
}
