import NIOCore

/// Streams a run's lines after a sequence as one gzip stream (see ``GzipLogCursor``), in
/// chunks, following rotation and archiving underneath it like ``EventLogReader``.
public struct GzipLogReader: AsyncSequence, Sendable {
    public typealias Element = NIOCore.ByteBuffer

    let store: EventStore
    let key: RunKey
    let after: Int64

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, key: key, after: after)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: EventStore
        let key: RunKey
        let after: Int64
        private var cursor: GzipCursorBox?

        init(store: EventStore, key: RunKey, after: Int64) {
            self.store = store
            self.key = key
            self.after = after
        }

        public mutating func next() async throws -> NIOCore.ByteBuffer? {
            let box: GzipCursorBox
            if let cursor {
                box = cursor
            } else {
                box = GzipCursorBox(GzipLogCursor(snapshot: try await store.snapshot(of: key), after: after))
                cursor = box
            }
            var staleSnapshots = 0
            while true {
                switch try await store.runBlocking({ try box.cursor.next() }) {
                case .bytes(let bytes): return bytes
                case .end: return nil
                case .stale:
                    staleSnapshots += 1
                    guard staleSnapshots <= 8 else {
                        throw StorageError.corruptLog("the files of run \(key) keep changing under the reader")
                    }
                    if staleSnapshots > 1 { store.forgetSealedLog(of: key) }
                    box.cursor.reset(to: try await store.snapshotOfExistingLog(key))
                }
            }
        }
    }
}

/// Hands a gzip cursor to the thread pool; only one read at a time ever uses it.
final class GzipCursorBox: @unchecked Sendable {
    let cursor: GzipLogCursor

    init(_ cursor: GzipLogCursor) {
        self.cursor = cursor
    }
}
