import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a run's lines after a sequence, segment by segment, in chunks of whole lines.
///
/// It starts at the segment holding the first wanted sequence (closed segments' names say
/// their range), streams plain and gzipped segments alike through fixed-size buffers, and
/// stops at the snapshot's readable end. Blocking: drive it from the I/O thread pool.
/// Each chunk is whole lines, all after the cursor's position.
final class LogCursor: SnapshotCursor {
    private(set) var snapshot: LogSnapshot
    /// The last sequence delivered (or skipped as not wanted).
    private(set) var position: Int64
    /// Deliver nothing after this sequence.
    let upperBound: Int64?
    private let chunkSize: Int

    private var file: PosixFile?
    private var gzip: GzipFileReader?
    private var segmentEnd: Int64?  // readable length, for the active segment
    private var segmentRead: Int64 = 0
    private var carry: ByteBuffer?
    private var currentSegmentLast: Int64 = 0

    init(snapshot: LogSnapshot, after position: Int64, through upperBound: Int64? = nil, chunkSize: Int = 256 * 1024) {
        self.snapshot = snapshot
        self.position = position
        self.upperBound = upperBound
        self.chunkSize = chunkSize
    }

    /// Continues from the same position with a newer snapshot.
    func reset(to snapshot: LogSnapshot) {
        self.snapshot = snapshot
        closeSegment()
    }

    private var limit: Int64 {
        min(snapshot.lastSequence, upperBound ?? .max)
    }

    func next() throws(StorageError) -> CursorStep<EventChunk> {
        while true {
            guard position < limit else {
                closeSegment()
                return .end
            }
            if file == nil {
                switch try openSegment() {
                case .opened: break
                case .stale: return .stale
                case .none: return .end
                }
            }
            let allocator = ByteBufferAllocator()
            let carried = carry?.readableBytes ?? 0
            var buffer = allocator.buffer(capacity: carried + chunkSize)
            if var carry { buffer.writeBuffer(&carry) }
            carry = nil
            let read = try fill(&buffer, upTo: chunkSize)
            if read == 0 {
                guard buffer.readableBytes == 0 else {
                    throw .corruptLog("\(currentPath ?? snapshot.directory) ends inside a line")
                }
                // This segment is exhausted; the next one starts after its last sequence.
                position = max(position, min(currentSegmentLast, limit))
                closeSegment()
                continue
            }
            // Keep the partial last line for the next read.
            let view = buffer.readableBytesView
            guard let lastNewline = view.lastIndex(of: UInt8(ascii: "\n")) else {
                carry = buffer
                continue
            }
            let completeLength = lastNewline - buffer.readerIndex + 1
            var complete = buffer.readSlice(length: completeLength)!
            if buffer.readableBytes > 0 { carry = buffer }
            if let chunk = try select(&complete) {
                return .chunk(chunk)
            }
        }
    }

    /// Drops lines at or before `position` and after `limit`; nil when nothing is left.
    private func select(_ lines: inout ByteBuffer) throws(StorageError) -> EventChunk? {
        guard let first = lines.withUnsafeReadableBytes({ StoredLine.sequence(of: $0) }) else {
            throw .corruptLog("a line in \(currentPath ?? snapshot.directory) does not start with a sequence")
        }
        if first <= position {
            // Skip forward line by line (only at the start of a read).
            while lines.readableBytes > 0 {
                let sequence = lines.withUnsafeReadableBytes { StoredLine.sequence(of: $0) } ?? 0
                if sequence > position { break }
                let newline = lines.readableBytesView.firstIndex(of: UInt8(ascii: "\n"))!
                lines.moveReaderIndex(to: newline + 1)
            }
            if lines.readableBytes == 0 { return nil }
        }
        var last = lines.withUnsafeReadableBytes(StoredLine.lastSequence(inLines:))
        let limit = self.limit
        if last > limit {
            // Cut at the limit: find the first line past it.
            var kept = lines
            var length = 0
            while kept.readableBytes > 0 {
                let sequence = kept.withUnsafeReadableBytes { StoredLine.sequence(of: $0) } ?? .max
                if sequence > limit { break }
                let newline = kept.readableBytesView.firstIndex(of: UInt8(ascii: "\n"))!
                length += newline + 1 - kept.readerIndex
                kept.moveReaderIndex(to: newline + 1)
            }
            // Every line up to the limit has now been seen.
            defer { position = limit }
            if length == 0 { return nil }
            lines = lines.getSlice(at: lines.readerIndex, length: length)!
            last = lines.withUnsafeReadableBytes(StoredLine.lastSequence(inLines:))
        }
        let firstKept = lines.withUnsafeReadableBytes { StoredLine.sequence(of: $0) } ?? 0
        position = last
        return EventChunk(bytes: lines, firstSequence: firstKept, lastSequence: last)
    }

    private enum Opening { case opened, stale, none }

    private var currentPath: String?

    private func openSegment() throws(StorageError) -> Opening {
        if let segment = snapshot.closedSegments.first(where: { $0.lastSequence > position }) {
            // Try the name the snapshot knows first, then the other (archiving may have renamed it).
            let names = segment.isCompressed
                ? [segment.compressedFileName, segment.plainFileName] : [segment.plainFileName, segment.compressedFileName]
            for name in names {
                let path = snapshot.directory + "/" + name
                do throws(SystemError) {
                    file = try PosixFile.openIfExists(path: path, flags: O_RDONLY)
                } catch {
                    throw .io(error)
                }
                if file == nil { continue }
                gzip = name.hasSuffix(".gz") ? try makeGzipReader() : nil
                currentPath = path
                segmentEnd = nil
                segmentRead = 0
                currentSegmentLast = segment.lastSequence
                return .opened
            }
            return FileSystem.exists(snapshot.directory) ? .stale : try logDeleted()
        }
        guard let active = snapshot.active, active.readableLength > 0 else { return .none }
        let opened: PosixFile?
        do throws(SystemError) {
            opened = try PosixFile.openIfExists(path: snapshot.activePath, flags: O_RDONLY)
            if let opened, try opened.status().inode != active.inode { return .stale }
        } catch {
            throw .io(error)
        }
        guard let opened else {
            return FileSystem.exists(snapshot.directory) ? .stale : try logDeleted()
        }
        file = opened
        gzip = nil
        currentPath = snapshot.activePath
        segmentEnd = active.readableLength
        segmentRead = 0
        currentSegmentLast = snapshot.lastSequence
        return .opened
    }

    private func logDeleted() throws(StorageError) -> Opening {
        throw .logDeleted(snapshot.key)
    }

    private func makeGzipReader() throws(StorageError) -> GzipFileReader {
        do {
            return try GzipFileReader()
        } catch {
            throw .corruptLog("\(error)")
        }
    }

    /// Reads up to `count` more bytes of the current segment into `buffer`.
    private func fill(_ buffer: inout ByteBuffer, upTo count: Int) throws(StorageError) -> Int {
        var wanted = count
        if let segmentEnd { wanted = Int(min(Int64(count), segmentEnd - segmentRead)) }
        guard wanted > 0, let file else { return 0 }
        
        let gzip = self.gzip
        let path = currentPath ?? ""
        let read: Int
        do {
            read = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { output in
                let target = UnsafeMutableRawBufferPointer(rebasing: output[0..<wanted])
                if let gzip { return try gzip.read(from: file, into: target) }
                return try file.read(into: target)
            }
        } catch let error as SystemError {
            throw .io(error)
        } catch {
            throw .corruptLog("\(path): \(error)")
        }
        segmentRead += Int64(read)
        return read
    }

    private func closeSegment() {
        file = nil
        gzip = nil
        carry = nil
        currentPath = nil
    }
}
