public import NIOCore

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
        private var cursor: CursorBox<GzipLogCursor>?

        init(store: EventStore, key: RunKey, after: Int64) {
            self.store = store
            self.key = key
            self.after = after
        }

        public mutating func next() async throws -> NIOCore.ByteBuffer? {
            let box: CursorBox<GzipLogCursor>
            if let cursor {
                box = cursor
            } else {
                box = CursorBox(GzipLogCursor(snapshot: try await store.snapshot(of: key), after: after))
                cursor = box
            }
            return try await store.read(from: box, of: key)
        }
    }
}
