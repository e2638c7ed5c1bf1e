/// Streams a run's stored lines after a sequence, in chunks of whole lines.
///
/// It reads what the log holds when each chunk is read, up to the newest flushed line (or
/// the upper bound); rotation and archiving underneath it are followed transparently.
public struct EventLogReader: AsyncSequence, Sendable {
    public typealias Element = EventChunk

    let store: EventStore
    let key: RunKey
    let after: Int64
    let upperBound: Int64?

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, key: key, after: after, upperBound: upperBound)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: EventStore
        let key: RunKey
        let after: Int64
        let upperBound: Int64?
        private var cursor: CursorBox?
        private var finished = false

        init(store: EventStore, key: RunKey, after: Int64, upperBound: Int64?) {
            self.store = store
            self.key = key
            self.after = after
            self.upperBound = upperBound
        }

        public mutating func next() async throws -> EventChunk? {
            guard !finished else { return nil }
            let box: CursorBox
            if let cursor {
                box = cursor
            } else {
                let snapshot = try await store.snapshot(of: key)
                box = CursorBox(LogCursor(snapshot: snapshot, after: after, through: upperBound))
                cursor = box
            }
            var staleSnapshots = 0
            while true {
                let step = try await store.runBlocking { try box.cursor.next() }
                switch step {
                case .chunk(let chunk):
                    return chunk
                case .end:
                    finished = true
                    return nil
                case .stale:
                    staleSnapshots += 1
                    guard staleSnapshots <= 8 else {
                        throw StorageError.corruptLog("the files of run \(key) keep changing under the reader")
                    }
                    // Files changed under the snapshot: rotation and archiving in this process
                    // are in the next snapshot; retention elsewhere needs the sealed log re-read.
                    if staleSnapshots > 1 { store.forgetSealedLog(of: key) }
                    box.cursor.reset(to: try await store.snapshotOfExistingLog(key))
                }
            }
        }
    }
}

/// Hands a cursor to the thread pool; only one read at a time ever uses it.
final class CursorBox: @unchecked Sendable {
    let cursor: LogCursor

    init(_ cursor: LogCursor) {
        self.cursor = cursor
    }
}
