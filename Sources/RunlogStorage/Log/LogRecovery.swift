package import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a run's `logs/` directory holds after recovery.
package struct RecoveredLog: Sendable {
    var exists: Bool
    var closedSegments: [ClosedSegment] = []
    var active: LogSnapshot.ActiveSegment?
    package var lastSequence: Int64 = 0
    /// The type of the last event, to know whether the log is closed.
    var lastEventType: String?
}

/// Brings a run's log directory to a consistent state on open: removes leftovers of
/// interrupted archiving, truncates a torn or damaged tail of the active segment, and finds
/// the last sequence, reading only the ends of files.
package enum LogRecovery {
    /// A line longer than this cannot be a valid event, so it is damage.
    static let maximumLineLength: Int64 = 8 << 20

    package static func recover(_ key: RunKey, directory: String, logger: Logger) throws -> RecoveredLog {
        guard var names = try FileSystem.contentsOfDirectory(directory) else { return RecoveredLog(exists: false) }
        names.sort()
        var closed: [ClosedSegment] = []
        var hasActive = false
        var removed = false
        for name in names {
            switch SegmentName(name) {
            case .active:
                hasActive = true
            case .closed(let segment):
                closed.append(segment)
            case .temporary:
                // A temporary whose writer is gone (its lock is free) is an interrupted archive.
                if try SegmentArchiver.removeIfAbandoned(directory + "/" + name, logger: logger) { removed = true }
            case .unknown:
                logger.warning("ignoring an unexpected file in a log directory", metadata: ["path": "\(directory)/\(name)"])
            }
        }
        // A segment present both plain and gzipped: the gzip was renamed into place only after it
        // was complete and synced, so the plain copy is the leftover.
        var segments: [ClosedSegment] = []
        for segment in closed.sorted() {
            if let previous = segments.last, previous.firstSequence == segment.firstSequence, previous.lastSequence == segment.lastSequence {
                let plain = ClosedSegment(firstSequence: segment.firstSequence, lastSequence: segment.lastSequence, isCompressed: false)
                try FileSystem.removeFile(directory + "/" + plain.plainFileName)
                removed = true
                logger.notice("removed a segment already archived", metadata: ["path": "\(directory)/\(plain.plainFileName)"])
                segments[segments.count - 1].isCompressed = true
                continue
            }
            if let previous = segments.last, segment.firstSequence != previous.lastSequence + 1 {
                logger.error(
                    "closed segments are not contiguous",
                    metadata: ["directory": "\(directory)", "previous": "\(previous.fileName)", "next": "\(segment.fileName)"]
                )
            }
            segments.append(segment)
        }
        if removed { try FileSystem.synchronizeDirectory(directory) }

        var recovered = RecoveredLog(exists: true, closedSegments: segments)
        let closedLast = segments.last?.lastSequence ?? 0
        recovered.lastSequence = closedLast
        if hasActive {
            let path = directory + "/" + SegmentName.activeFileName
            let file = try PosixFile(path: path, flags: O_RDWR)
            let (length, lastLine, repaired) = try repairTail(of: file, logger: logger)
            let inode = try file.status().inode
            var first = closedLast + 1
            if let lastLine {
                let head = try BackwardScanner.read(file, 0..<min(length, 64))
                first = head.withUnsafeBytes { StoredLine.sequence(of: $0) } ?? first
                if first != closedLast + 1 {
                    logger.error(
                        "the active segment does not continue the closed segments",
                        metadata: ["path": "\(path)", "first_sequence": "\(first)", "expected": "\(closedLast + 1)"]
                    )
                }
                lastLine.withUnsafeBytes { line in
                    recovered.lastSequence = StoredLine.sequence(of: line) ?? closedLast
                    recovered.lastEventType = StoredLine.type(of: line).map { String(decoding: line[$0], as: UTF8.self) }
                }
                // A damaged log must not hand out a sequence it already holds: when the tail was
                // cut or the last line does not continue the one before it (1, 2, 3, 2), the
                // log continues after the largest sequence in the segment. Nothing more is cut
                // (the odd line may be the true one); `runlog verify` reports the damage.
                let previous = try sequenceOfLine(before: length - 1 - Int64(lastLine.count), in: file)
                // (A last line with nothing before it continues the closed segments.)
                let continues = previous.map { $0 + 1 == recovered.lastSequence } ?? (length == Int64(lastLine.count) + 1)
                if repaired || !continues {
                    let largest = try largestSequence(in: file, length: length)
                    if largest > recovered.lastSequence {
                        logger.error(
                            "an event log's last line is not its largest sequence: continuing after the largest",
                            metadata: ["path": "\(path)", "last_line_sequence": "\(recovered.lastSequence)", "largest_sequence": "\(largest)"]
                        )
                        recovered.lastSequence = largest
                    }
                }
            }
            recovered.active = .init(firstSequence: first, readableLength: length, inode: inode)
        }
        if recovered.lastEventType == nil, let last = segments.last {
            recovered.lastEventType = try lastEventType(of: last, in: LogSnapshot(key: key, directory: directory, closedSegments: [last], active: nil, lastSequence: last.lastSequence))
        }
        return recovered
    }

    /// Truncates whatever follows the last valid line (a torn write, or garbage left by a crash)
    /// and returns the file's new length, that last line, and whether anything was cut.
    static func repairTail(of file: PosixFile, logger: Logger) throws -> (length: Int64, lastLine: [UInt8]?, repaired: Bool) {
        let size = try file.status().size
        var cut = size
        var lastLine: [UInt8]?
        var droppedLines = 0
        if size > 0, try BackwardScanner.read(file, (size - 1)..<size) != [UInt8(ascii: "\n")] {
            cut = (try BackwardScanner.previousNewline(in: file, before: size)).map { $0 + 1 } ?? 0
        }
        while cut > 0 {
            let start = (try BackwardScanner.previousNewline(in: file, before: cut - 1)).map { $0 + 1 } ?? 0
            if cut - 1 - start <= maximumLineLength {
                let line = try BackwardScanner.read(file, start..<(cut - 1))
                if line.withUnsafeBytes({ StoredLine.isValid($0) }) {
                    lastLine = line
                    break
                }
            }
            droppedLines += 1
            cut = start
        }
        if cut < size {
            try file.truncate(to: cut)
            try file.synchronize()
            logger.warning(
                "truncated a damaged tail of an event log",
                metadata: [
                    "path": "\(file.path)", "bytes_removed": "\(size - cut)", "length": "\(cut)",
                    "whole_lines_removed": "\(droppedLines)",
                ]
            )
        }
        return (cut, lastLine, cut < size)
    }

    /// The largest sequence of the valid lines in the first `length` bytes of `file`: a whole
    /// read of the segment, done only for a damaged one.
    static func largestSequence(in file: PosixFile, length: Int64) throws -> Int64 {
        var largest: Int64 = 0
        var pending: [UInt8] = []
        var offset: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        func take(_ line: ArraySlice<UInt8>) {
            Array(line).withUnsafeBytes { bytes in
                if StoredLine.isValid(bytes), let sequence = StoredLine.sequence(of: bytes) { largest = max(largest, sequence) }
            }
        }
        while offset < length {
            let count = try buffer.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<Int(min(Int64($0.count), length - offset))]), at: offset) }
            guard count > 0 else { break }
            offset += Int64(count)
            pending += buffer[0..<count]
            var start = pending.startIndex
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                if newline - start <= Int(maximumLineLength) { take(pending[start..<newline]) }
                start = newline + 1
            }
            pending.removeFirst(start - pending.startIndex)
        }
        return largest
    }

    /// The sequence of the valid line that ends just before `start`, if there is one.
    static func sequenceOfLine(before start: Int64, in file: PosixFile) throws -> Int64? {
        guard start > 0 else { return nil }
        let previousStart = (try BackwardScanner.previousNewline(in: file, before: start - 1)).map { $0 + 1 } ?? 0
        guard start - 1 - previousStart <= maximumLineLength else { return nil }
        let previous = try BackwardScanner.read(file, previousStart..<(start - 1))
        return previous.withUnsafeBytes { StoredLine.isValid($0) ? StoredLine.sequence(of: $0) : nil }
    }

    /// The type of the last event of a closed segment (streamed when gzipped); `snapshot` holds just that segment.
    static func lastEventType(of segment: ClosedSegment, in snapshot: LogSnapshot) throws -> String? {
        if !segment.isCompressed, let file = try PosixFile.openIfExists(path: snapshot.directory + "/" + segment.plainFileName, flags: O_RDONLY) {
            let line = try BackwardScanner.lastLines(in: file, before: try file.status().size, count: 1).first ?? []
            return line.withUnsafeBytes { bytes in StoredLine.type(of: bytes).map { String(decoding: bytes[$0], as: UTF8.self) } }
        }
        let cursor = LogCursor(snapshot: snapshot, after: segment.lastSequence - 1)
        while case .chunk(let chunk) = try cursor.next() {
            var type: String?
            chunk.forEachLine { _, line in
                type = line.withUnsafeReadableBytes { bytes in
                    StoredLine.type(of: bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
                }
            }
            return type
        }
        return nil
    }
}
