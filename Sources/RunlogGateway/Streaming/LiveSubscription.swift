import NIOCore
import RunlogStorage

/// One live reader's place in its run's feed: what it writes of each batch, and when it must
/// hand its stream back to the stream's task.
///
/// A pure state machine (the ``LiveSender`` applies it on the connection's event loop), so the
/// hand-off rules are tested without sockets: a reader takes a batch only if it misses none of
/// the batch's predecessors, never writes an event twice, and gives up the feed when its
/// connection cannot take more (it then catches up from the store at its own pace) or when the
/// run has completed.
struct LiveSubscription: Sendable {
    /// The last sequence this reader has passed (written or filtered out).
    private(set) var position: Int64
    let types: TypeFilter?
    private(set) var sawCompletion = false

    init(position: Int64, types: TypeFilter?) {
        self.position = position
        self.types = types
    }

    /// What to do with one batch.
    struct Step {
        /// Bytes to write, if any of the batch is for this reader.
        var bytes: ByteBuffer?
        /// False: leave the feed and wake the stream's task, which carries on from ``position``.
        var staysLive: Bool
        /// The reader leaves because its connection is full: a slow reader.
        var fellBehind = false
    }

    /// Takes `frames` if the connection is `writable` and the reader has everything before them.
    mutating func take(_ frames: LiveFrames, writable: Bool) -> Step {
        // A gap (the reader is behind the batch) or a full connection: the task reads on from
        // the store, at the pace the client drains.
        guard frames.previous <= position, writable else { return Step(bytes: nil, staysLive: false, fellBehind: !writable) }
        guard let first = frames.events.firstIndex(where: { $0.sequence > position }) else {
            return Step(bytes: nil, staysLive: true)
        }
        let new = frames.events[first...]
        position = new.last!.sequence
        sawCompletion = sawCompletion || new.contains { $0.type == LifecycleEvent.completed }
        let bytes: ByteBuffer?
        if let types {
            var wanted = ByteBuffer()
            for event in new where types.matches(event.type) {
                wanted.writeImmutableBuffer(frames.bytes.getSlice(at: frames.bytes.readerIndex + event.range.lowerBound, length: event.range.count)!)
            }
            bytes = wanted.readableBytes > 0 ? wanted : nil
        } else if first == frames.events.startIndex {
            bytes = frames.bytes
        } else {
            let start = new.first!.range.lowerBound
            bytes = frames.bytes.getSlice(at: frames.bytes.readerIndex + start, length: frames.bytes.readableBytes - start)
        }
        return Step(bytes: bytes, staysLive: !sawCompletion)
    }
}
