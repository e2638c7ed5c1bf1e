/// One read of a blocking cursor over a ``LogSnapshot``.
enum CursorStep<Output> {
    /// What the cursor read next (whole lines, or gzip bytes).
    case chunk(Output)
    /// Nothing more in this snapshot.
    case end
    /// The snapshot no longer matches the files (rotation or archiving moved them): take a new
    /// snapshot and reset the cursor to it; its position is kept.
    case stale
}

extension CursorStep: Sendable where Output: Sendable {}

/// A blocking cursor over a snapshot of a run's log: drive it from the I/O thread pool.
protocol SnapshotCursor: AnyObject, SendableMetatype {
    associatedtype Output: Sendable

    func next() throws(StorageError) -> CursorStep<Output>

    /// Continues from the same position with a newer snapshot.
    func reset(to snapshot: LogSnapshot)
}

/// Hands a cursor to the thread pool; only one read at a time ever uses it.
final class CursorBox<Cursor: SnapshotCursor>: @unchecked Sendable {
    let cursor: Cursor

    init(_ cursor: Cursor) {
        self.cursor = cursor
    }
}

extension EventStore {
    /// The cursor's next output, read on the I/O thread pool; nil at the end. Files that change
    /// under its snapshot are followed: rotation and archiving in this process are in the next
    /// snapshot, and a sealed log that retention changed from elsewhere is re-read.
    func read<Cursor>(from box: CursorBox<Cursor>, of key: RunKey) async throws -> Cursor.Output? {
        var staleSnapshots = 0
        while true {
            switch try await runBlocking({ try box.cursor.next() }) {
            case .chunk(let output):
                return output
            case .end:
                return nil
            case .stale:
                staleSnapshots += 1
                guard staleSnapshots <= 8 else {
                    throw StorageError.corruptLog("the files of run \(key) keep changing under the reader")
                }
                if staleSnapshots > 1 { forgetSealedLog(of: key) }
                box.cursor.reset(to: try await snapshotOfExistingLog(key))
            }
        }
    }
}
