import NIOCore

/// The most recently written lines of a run, kept in memory so that live readers get new
/// lines without reading the files. Bounded in bytes: the oldest lines go first, and a reader
/// whose position the tail no longer covers reads the files instead (and rejoins the tail once
/// caught up), so a slow reader never makes the server hold more.
struct LiveTail {
    /// What ``lines(after:)`` found.
    enum Lookup {
        /// Every written line after the position (none when the reader is up to date).
        case lines([EventChunk])
        /// Lines after the position are no longer (or not yet) all in memory: read the files.
        case behind
    }

    /// At most this many bytes of lines are held (a single larger flush is held alone).
    let capacity: Int
    private var chunks: [EventChunk] = []
    private var start = 0
    private(set) var bytes = 0
    /// The last line the tail knows to be written (0 before any).
    private(set) var lastSequence: Int64 = 0

    /// A tail for a log whose lines through `lastSequence` are already written.
    init(capacity: Int, after lastSequence: Int64 = 0) {
        self.capacity = capacity
        self.lastSequence = lastSequence
    }

    var firstSequence: Int64? { start < chunks.count ? chunks[start].firstSequence : nil }

    /// Adds lines just written. Lines that do not follow the last ones restart the tail.
    mutating func append(_ chunk: EventChunk) {
        guard chunk.lastSequence >= chunk.firstSequence else { return }
        if chunk.firstSequence != lastSequence + 1 || capacity == 0 { removeAll() }
        lastSequence = chunk.lastSequence
        guard capacity > 0 else { return }
        var chunk = chunk
        // A flush buffer can be far larger than its lines: hold only the lines.
        if chunk.bytes.storageCapacity > 2 * chunk.bytes.readableBytes + 1024 {
            chunk.bytes = ByteBufferAllocator().buffer(buffer: chunk.bytes)
        }
        chunks.append(chunk)
        bytes += chunk.bytes.readableBytes
        while bytes > capacity, chunks.count - start > 1 {
            bytes -= chunks[start].bytes.readableBytes
            chunks[start] = EventChunk(bytes: ByteBuffer(), firstSequence: 0, lastSequence: 0)
            start += 1
        }
        if start > 64, start * 2 > chunks.count {
            chunks.removeFirst(start)
            start = 0
        }
    }

    /// Forgets every line, after a failed or unknown write: readers go back to the files.
    mutating func removeAll() {
        chunks.removeAll()
        start = 0
        bytes = 0
    }

    /// The lines after `position`, or `.behind` when the tail does not hold them all.
    func lines(after position: Int64) -> Lookup {
        if position >= lastSequence { return .lines([]) }
        guard let first = firstSequence, position + 1 >= first else { return .behind }
        // Binary search for the chunk holding position + 1.
        var low = start
        var high = chunks.count - 1
        while low < high {
            let middle = (low + high) / 2
            if chunks[middle].lastSequence <= position { low = middle + 1 } else { high = middle }
        }
        var result = Array(chunks[low...])
        result[0] = result[0].dropping(through: position)
        return .lines(result)
    }
}

extension EventChunk {
    /// The same chunk without its lines up to `sequence`.
    func dropping(through sequence: Int64) -> EventChunk {
        guard sequence >= firstSequence else { return self }
        var remaining = bytes
        var skip = sequence - firstSequence + 1
        while skip > 0, let newline = remaining.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            remaining.moveReaderIndex(to: newline + 1)
            skip -= 1
        }
        return EventChunk(bytes: remaining, firstSequence: sequence + 1, lastSequence: lastSequence)
    }
}
