import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a run's lines after a sequence as one gzip stream: the deflate data of archived
/// segments is sent as stored (no decompressing, no recompressing), the rest is compressed on
/// the way, and one trailer covers everything. Blocking: drive it from the I/O thread pool.
final class GzipLogCursor: SnapshotCursor {
    private enum Piece {
        /// Stored deflate data of an archived segment, from `offset` to `end`.
        case stored(file: PosixFile, offset: Int64, end: Int64, crc: UInt32, length: UInt32, last: Int64)
        /// Lines read by a cursor and compressed.
        case compressing(LogCursor)
    }

    private var snapshot: LogSnapshot
    private(set) var position: Int64
    private let level: Int32
    private let chunkSize = 256 * 1024
    private var piece: Piece?
    private var deflater: RawDeflater?
    private var crc: UInt32 = 0
    private var length: UInt64 = 0
    private var pieceStart: Int64 = 0
    private var headerSent = false
    private var finished = false

    init(snapshot: LogSnapshot, after position: Int64, level: Int32 = 1) {
        self.snapshot = snapshot
        self.position = position
        self.level = level
    }

    func reset(to snapshot: LogSnapshot) {
        self.snapshot = snapshot
        piece = nil
    }

    func next() throws(StorageError) -> CursorStep<ByteBuffer> {
        guard !finished else { return .end }
        var output = ByteBuffer()
        if !headerSent {
            output.writeBytes(GzipMember.header)
            headerSent = true
        }
        do {
            while output.readableBytes < chunkSize / 2 {
                if piece == nil {
                    guard position < snapshot.lastSequence else {
                        output.writeBytes(GzipMember.finalBlock)
                        output.writeBytes(GzipMember.trailer(crc: crc, length: length))
                        finished = true
                        return .chunk(output)
                    }
                    guard let opened = try openPiece() else { return output.readableBytes > 0 ? .chunk(output) : .stale }
                    piece = opened
                    pieceStart = position
                }
                switch piece! {
                case .stored(let file, let offset, let end, let pieceCRC, let pieceLength, let last):
                    let count = Int(min(Int64(chunkSize), end - offset))
                    let read = try output.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { buffer in
                        try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), at: offset)
                    }
                    guard read > 0 else { throw StorageError.corruptLog("\(snapshot.directory): an archived segment ends early") }
                    if offset + Int64(read) >= end {
                        crc = GzipMember.combine(crc, pieceCRC, secondLength: Int64(pieceLength))
                        length += UInt64(pieceLength)
                        position = last
                        piece = nil
                    } else {
                        piece = .stored(file: file, offset: offset + Int64(read), end: end, crc: pieceCRC, length: pieceLength, last: last)
                    }
                case .compressing(let cursor):
                    if deflater == nil { deflater = try RawDeflater(level: level) }
                    switch try cursor.next() {
                    case .chunk(let chunk):
                        try chunk.bytes.withUnsafeReadableBytes { bytes in
                            crc = GzipMember.crc(crc, bytes)
                            try deflater!.compress(bytes, ending: false, into: &output)
                        }
                        length += UInt64(chunk.bytes.readableBytes)
                        position = cursor.position
                    case .end:
                        guard cursor.position > pieceStart else { throw StorageError.corruptLog("\(snapshot.directory): no lines after \(position)") }
                        try endCompressedPiece(into: &output)
                        position = max(position, cursor.position)
                    case .stale:
                        try endCompressedPiece(into: &output)
                        return output.readableBytes > 0 ? .chunk(output) : .stale
                    }
                }
            }
        } catch {
            throw StorageError(error)
        }
        return .chunk(output)
    }

    /// Ends a compressed piece byte-aligned; the next one starts a fresh deflate history, since
    /// a stored piece may come between them.
    private func endCompressedPiece(into output: inout ByteBuffer) throws {
        try deflater?.compress(UnsafeRawBufferPointer(start: nil, count: 0), ending: true, into: &output)
        deflater = nil
        piece = nil
    }

    /// The piece holding `position + 1`: an archived segment as stored when it starts there
    /// and is spliceable, else a cursor compressing lines up to the end of that segment.
    private func openPiece() throws -> Piece? {
        if let segment = snapshot.closedSegments.first(where: { $0.lastSequence > position }) {
            if segment.isCompressed, segment.firstSequence == position + 1 {
                guard let file = try PosixFile.openIfExists(path: snapshot.directory + "/" + segment.compressedFileName, flags: O_RDONLY) else {
                    return nil  // renamed or removed since the snapshot
                }
                let (size, _) = try file.status()
                if let spliceable = try GzipMember.spliceable(file, size: size) {
                    return .stored(
                        file: file, offset: spliceable.deflateRange.lowerBound, end: spliceable.deflateRange.upperBound,
                        crc: spliceable.crc, length: spliceable.length, last: segment.lastSequence
                    )
                }
            }
            return .compressing(LogCursor(snapshot: snapshot, after: position, through: segment.lastSequence))
        }
        return .compressing(LogCursor(snapshot: snapshot, after: position))
    }
}
