import NIOCore
import RunlogStorage

/// A batch of a run's new events, encoded once for all its live readers of one format.
///
/// Every reader of the batch writes the same bytes (a slice of them, when it had some of the
/// events already or filters by type), so a batch costs one encoding however many read it.
struct LiveFrames: Sendable {
    struct Event: Sendable {
        let sequence: Int64
        let type: String
        /// Where the event's frame lies in ``bytes`` (reader-index relative).
        let range: Range<Int>
    }

    /// The events' frames, back to back.
    let bytes: ByteBuffer
    /// ``bytes`` framed as one HTTP/1.1 chunk (same storage): what a reader of a chunked
    /// response that takes the whole batch puts on the wire as it is.
    let chunk: ByteBuffer
    let events: [Event]
    /// The feed's position before the batch: a reader behind it would miss events.
    let previous: Int64

    var last: Int64 { events.last?.sequence ?? previous }

    init(bytes: ByteBuffer, events: [Event], previous: Int64) {
        let header = String(bytes.readableBytes, radix: 16) + "\r\n"
        var chunk = ByteBuffer()
        chunk.reserveCapacity(header.utf8.count + bytes.readableBytes + 2)
        chunk.writeString(header)
        chunk.writeImmutableBuffer(bytes)
        chunk.writeStaticString("\r\n")
        self.chunk = chunk
        self.bytes = chunk.getSlice(at: chunk.readerIndex + header.utf8.count, length: bytes.readableBytes)!
        self.events = events
        self.previous = previous
    }

    /// The same batch in storage of its own. Each event loop writes its own copy to its
    /// readers: thousands of writes that shared one buffer would contend for its reference count.
    func copied() -> LiveFrames {
        // The chunk is built afresh around a copy of the frames.
        LiveFrames(bytes: bytes, events: events, previous: previous)
    }

    /// The events of `chunks` after `previous`, framed as `format`: one batch, so that readers
    /// get everything that arrived since the last one in one write.
    init(_ chunks: some Sequence<EventChunk>, after previous: Int64, format: EventQuery.Format) {
        var bytes = ByteBuffer()
        var events: [Event] = []
        for chunk in chunks {
            chunk.forEachEvent { sequence, type, line in
                guard sequence > (events.last?.sequence ?? previous) else { return }
                let start = bytes.readableBytes
                format.writeFrame(sequence: sequence, type: type, line: line, to: &bytes)
                events.append(Event(sequence: sequence, type: type, range: start..<bytes.readableBytes))
            }
        }
        self.init(bytes: bytes, events: events, previous: previous)
    }
}

extension EventQuery.Format {
    /// Writes one event as this format frames it on a stream: an SSE message or an NDJSON line.
    func writeFrame(sequence: Int64, type: String, line: ByteBuffer, to output: inout ByteBuffer) {
        if self == .sse {
            output.writeString("id: \(sequence)\nevent: \(type)\ndata: ")
            output.writeImmutableBuffer(line)
            output.writeString("\n\n")
        } else {
            output.writeImmutableBuffer(line)
            output.writeString("\n")
        }
    }
}
