import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the last lines of a log from its end: backwards through plain segments, streaming
/// (with a bounded window) through a gzipped one.
enum TailReader {
    static func lastLines(of snapshot: LogSnapshot, count: Int) throws -> [ByteBuffer] {
        guard count > 0, snapshot.lastSequence > 0 else { return [] }
        var collected: [[UInt8]] = []  // newest segment first, each oldest-first
        var needed = count
        if let active = snapshot.active, active.readableLength > 0 {
            let file = try PosixFile(path: snapshot.activePath, flags: O_RDONLY)
            if try file.status().inode == active.inode {
                let lines = try BackwardScanner.lastLines(in: file, before: active.readableLength, count: needed)
                collected.append(contentsOf: lines.reversed())
                needed -= lines.count
            } else {
                // Rotated since the snapshot: the lines are in a closed segment now; read them forwards.
                return try forwardTail(of: snapshot, count: count)
            }
        }
        for segment in snapshot.closedSegments.reversed() where needed > 0 {
            let lines: [[UInt8]]
            if segment.isCompressed {
                lines = try tailOfCompressed(segment, in: snapshot, count: needed)
            } else {
                let path = snapshot.directory + "/" + segment.plainFileName
                if FileSystem.exists(path) {
                    let file = try PosixFile(path: path, flags: O_RDONLY)
                    lines = try BackwardScanner.lastLines(in: file, before: try file.status().size, count: needed)
                } else {
                    lines = try tailOfCompressed(segment, in: snapshot, count: needed)  // archived meanwhile
                }
            }
            collected.append(contentsOf: lines.reversed())
            needed -= lines.count
        }
        return collected.reversed().map { ByteBuffer(bytes: $0) }
    }

    private static func tailOfCompressed(_ segment: ClosedSegment, in snapshot: LogSnapshot, count: Int) throws -> [[UInt8]] {
        let single = LogSnapshot(key: snapshot.key, directory: snapshot.directory, closedSegments: [segment], active: nil, lastSequence: segment.lastSequence)
        return try forwardTail(of: single, count: count, after: max(0, segment.lastSequence - Int64(count))).map { Array($0.readableBytesView) }
    }

    /// The last `count` lines by reading forward from `after`.
    private static func forwardTail(of snapshot: LogSnapshot, count: Int, after: Int64? = nil) throws -> [ByteBuffer] {
        let cursor = LogCursor(snapshot: snapshot, after: after ?? max(0, snapshot.lastSequence - Int64(count)))
        var window: [ByteBuffer] = []
        while case .chunk(let chunk) = try cursor.next() {
            window.append(contentsOf: chunk.lines)
            if window.count > count { window.removeFirst(window.count - count) }
        }
        return window
    }
}
