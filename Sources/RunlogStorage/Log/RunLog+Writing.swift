import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing (blocking, on the thread pool): lines into the active segment, syncing, rotation.
extension RunLog {
    /// that reaches the size limit is closed after the line that reached it, and a new active
    /// segment continues the write.
    func write(_ job: FlushJob) -> FlushOutcome {
        let started = ContinuousClock.now
        defer { environment.metrics.flushDuration.record(ContinuousClock.now - started) }
        let synchronously = configuration.durability == .fsync
        var outcome = FlushOutcome(writer: job.writer, active: nil, writtenThrough: job.lastSequence - Int64(job.events))
        var remaining = job.bytes
        do {
            var writer = try job.writer ?? openWriter(firstSequence: job.activeFirstSequence, expectedLength: job.activeLength)
            outcome.writer = writer
            while remaining.readableBytes > 0 {
                // Take everything, or up to the end of the line that fills the segment.
                let room = max(1, configuration.segmentBytes - writer.committedLength)
                var part = remaining
                var fillsSegment = false
                if Int64(remaining.readableBytes) >= room {
                    let view = remaining.readableBytesView
                    let from = view.startIndex + Int(room) - 1
                    if let newline = view[from...].firstIndex(of: UInt8(ascii: "\n")) {
                        part = remaining.getSlice(at: remaining.readerIndex, length: newline - remaining.readerIndex + 1)!
                        fillsSegment = true
                    }
                }
                try writeAll(part, to: writer, synchronously: synchronously)
                // Only what reached the file leaves `remaining`: on a failure the rest is what
                // `none` keeps for its retry.
                remaining.moveReaderIndex(forwardBy: part.readableBytes)
                let lastInPart = part.withUnsafeReadableBytes(StoredLine.lastSequence(inLines:))
                outcome.writtenThrough = lastInPart
                outcome.active = .init(firstSequence: writer.firstSequence, readableLength: writer.committedLength, inode: writer.inode)
                if fillsSegment, let closed = rotate(writer, lastSequence: lastInPart) {
                    outcome.rotated.append(closed)
                    outcome.writer = nil
                    outcome.active = nil
                    writer = try openWriter(firstSequence: lastInPart + 1, expectedLength: 0)
                    outcome.writer = writer
                    outcome.active = .init(firstSequence: writer.firstSequence, readableLength: 0, inode: writer.inode)
                }
            }
        } catch {
            outcome.failure = (StorageError(error), remaining)
        }
        return outcome
    }

    /// Writes one part completely (and syncs it), or leaves the file as it was.
    func writeAll(_ part: ByteBuffer, to writer: SegmentWriter, synchronously: Bool) throws {
        do {
            try part.withUnsafeReadableBytes { bytes in try writer.file.writeAll(bytes) }
            if synchronously {
                let started = ContinuousClock.now
                try writer.file.synchronizeData()
                environment.metrics.fsyncDuration.record(ContinuousClock.now - started)
            }
        } catch {
            // Undo the partial write; if even that fails, reopening truncates it (openWriter).
            do {
                try writer.file.truncate(to: writer.committedLength)
            } catch let truncation {
                logger.error("could not undo a failed write", metadata: ["path": "\(activePath)", "error": "\(truncation)"])
            }
            throw error
        }
        writer.committedLength += Int64(part.readableBytes)
    }

    /// Gives the full active segment its closed name; nil (and the segment keeps growing) when
    /// the rename fails.
    func rotate(_ writer: SegmentWriter, lastSequence: Int64) -> ClosedSegment? {
        let segment = ClosedSegment(firstSequence: writer.firstSequence, lastSequence: lastSequence, isCompressed: false)
        do {
            try FileSystem.rename(activePath, to: directory + "/" + segment.plainFileName)
        } catch {
            logger.error("could not rotate a segment; writing on", metadata: ["path": "\(activePath)", "error": "\(error)"])
            return nil
        }
        logger.debug("rotated a segment", metadata: ["run": "\(key)", "segment": "\(segment.plainFileName)"])
        return segment
    }

    /// Opens (creating if needed) the active segment for appending, and makes sure it holds
    /// exactly the lines known to be written.
    func openWriter(firstSequence: Int64, expectedLength: Int64) throws -> SegmentWriter {
        let synchronously = configuration.durability == .fsync
        var created = false
        let file: PosixFile
        if FileSystem.exists(activePath) {
            file = try PosixFile(path: activePath, flags: O_WRONLY | O_APPEND)
        } else {
            try FileSystem.createDirectories(directory, durably: synchronously)
            file = try PosixFile(path: activePath, flags: O_WRONLY | O_APPEND | O_CREAT, mode: 0o644)
            created = true
        }
        let (size, inode) = try file.status()
        if size > expectedLength {
            // Leftover of a write that failed and could not be undone at the time.
            try file.truncate(to: expectedLength)
            logger.warning("removed the unacknowledged tail of a failed write", metadata: ["path": "\(activePath)", "bytes": "\(size - expectedLength)"])
        } else if size < expectedLength {
            throw StorageError.corruptLog("\(activePath) is \(size) bytes but \(expectedLength) were written")
        }
        if created && synchronously { try FileSystem.synchronizeDirectory(directory) }
        return SegmentWriter(
            file: file, inode: inode, firstSequence: firstSequence, committedLength: expectedLength, counter: environment.openFiles
        )
    }
}
