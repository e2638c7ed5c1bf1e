public import NIOCore

/// Whole stored lines, in order, as they are on disk (each ends with a newline).
public struct EventChunk: Sendable {
    /// The lines' bytes.
    public var bytes: ByteBuffer
    public var firstSequence: Int64
    public var lastSequence: Int64

    /// Calls `body` with each line (without its newline) and its sequence.
    public func forEachLine(_ body: (_ sequence: Int64, _ line: ByteBuffer) throws -> Void) rethrows {
        var remaining = bytes
        while let newline = remaining.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - remaining.readerIndex
            let line = remaining.readSlice(length: length)!
            remaining.moveReaderIndex(forwardBy: 1)
            let sequence = line.withUnsafeReadableBytes { StoredLine.sequence(of: $0) } ?? 0
            try body(sequence, line)
        }
    }

    /// Calls `body` with each line's sequence, type and bytes (without its newline).
    public func forEachEvent(_ body: (_ sequence: Int64, _ type: String, _ line: ByteBuffer) throws -> Void) rethrows {
        try forEachLine { sequence, line in
            let type = line.withUnsafeReadableBytes { bytes in
                StoredLine.type(of: bytes).map { String(decoding: bytes[$0], as: UTF8.self) } ?? ""
            }
            try body(sequence, type, line)
        }
    }

    /// Each line with its newline, as separate buffers (slices of ``bytes``, not copies).
    public var lines: [ByteBuffer] {
        var result: [ByteBuffer] = []
        var remaining = bytes
        while let newline = remaining.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            result.append(remaining.readSlice(length: newline - remaining.readerIndex + 1)!)
        }
        return result
    }
}
