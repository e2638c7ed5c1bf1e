#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds lines from the end of a file backwards, reading fixed-size blocks, so the last
/// lines of a log cost a few reads whatever the file's size.
enum BackwardScanner {
    static let blockSize = 64 * 1024

    /// Offset of the last newline strictly before `offset`, or nil when there is none.
    static func previousNewline(in file: PosixFile, before offset: Int64) throws -> Int64? {
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 16)
        defer { block.deallocate() }
        var end = offset
        while end > 0 {
            let start = max(0, end - Int64(blockSize))
            let count = Int(end - start)
            let read = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: block[0..<count]), at: start)
            guard read == count else { throw SystemError("read", path: file.path, errno: EIO) }
            if let found = UnsafeRawBufferPointer(rebasing: block[0..<count]).lastIndex(of: UInt8(ascii: "\n")) {
                return start + Int64(found)
            }
            end = start
        }
        return nil
    }

    /// The bytes of `range` of the file.
    static func read(_ file: PosixFile, _ range: Range<Int64>) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(range.count))
        var done = 0
        while done < bytes.count {
            let read = try bytes.withUnsafeMutableBytes { buffer in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: range.lowerBound + Int64(done))
            }
            guard read > 0 else { throw SystemError("read", path: file.path, errno: EIO) }
            done += read
        }
        return bytes
    }

    /// The last `count` whole lines before `end` (each with its newline), oldest first.
    static func lastLines(in file: PosixFile, before end: Int64, count: Int) throws -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var cut = end
        while lines.count < count, cut > 0 {
            let start = (try previousNewline(in: file, before: cut - 1)).map { $0 + 1 } ?? 0
            lines.append(try read(file, start..<cut))
            cut = start
        }
        return lines.reversed()
    }
}
