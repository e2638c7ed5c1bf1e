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
        private var cursor: CursorBox<LogCursor>?
        private var finished = false

        init(store: EventStore, key: RunKey, after: Int64, upperBound: Int64?) {
            self.store = store
            self.key = key
            self.after = after
            self.upperBound = upperBound
        }

        public mutating func next() async throws -> EventChunk? {
            guard !finished else { return nil }
            let box: CursorBox<LogCursor>
            if let cursor {
                box = cursor
            } else {
                box = CursorBox(LogCursor(snapshot: try await store.snapshot(of: key), after: after, through: upperBound))
                cursor = box
            }
            guard let chunk = try await store.read(from: box, of: key) else {
                finished = true
                return nil
            }
            return chunk
        }
    }
}
