#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import Logging

/// Gzips closed segments so that no reader, and no crash, ever sees a partial archive:
/// write a locked temporary file, fsync it, rename it into place, fsync the directory, and
/// only then remove the plain segment.
package enum SegmentArchiver {
    /// What archiving one segment did.
    package struct Result: Sendable, Equatable {
        package var segment: ClosedSegment
        package var plainBytes: Int64
        package var compressedBytes: Int64
    }

    /// Archives one closed segment of the log in `directory`. Returns nil when it is already
    /// archived (by this or another process). Safe to run beside readers and a running server.
    package static func archive(_ segment: ClosedSegment, in directory: String, level: Int32 = 6) throws -> Result? {
        let plain = ClosedSegment(firstSequence: segment.firstSequence, lastSequence: segment.lastSequence, isCompressed: false)
        let plainPath = directory + "/" + plain.plainFileName
        let finalPath = directory + "/" + plain.compressedFileName
        guard let source = try PosixFile.openIfExists(path: plainPath, flags: O_RDONLY) else { return nil }
        let plainBytes = try source.status().size
        let temporaryPath = directory + "/." + plain.compressedFileName + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let temporary = try PosixFile(path: temporaryPath, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        do {
            // The lock tells recovery that this temporary file is still being written.
            _ = try temporary.tryLockExclusively()
            let compressedBytes = try GzipCompressor.compress(source, into: temporary, level: level)
            try temporary.synchronize()
            try FileSystem.rename(temporaryPath, to: finalPath)
            try FileSystem.synchronizeDirectory(directory)
            try FileSystem.removeFile(plainPath)
            try FileSystem.synchronizeDirectory(directory)
            return Result(segment: plain, plainBytes: plainBytes, compressedBytes: compressedBytes)
        } catch {
            // Report the failure that matters; a temporary file that cannot be removed now is
            // removed by the next recovery of this log (its lock is free once we are gone).
            _ = try? FileSystem.removeFile(temporaryPath)
            throw error
        }
    }

    /// Removes a temporary archive file whose writer is gone (its lock is free): the leftover
    /// of an interrupted archive. Returns whether it removed it.
    @discardableResult
    static func removeIfAbandoned(_ path: String, logger: Logger) throws -> Bool {
        guard let file = try PosixFile.openIfExists(path: path, flags: O_RDONLY), try file.tryLockExclusively() else { return false }
        try FileSystem.removeFile(path)
        logger.notice("removed an interrupted archive file", metadata: ["path": "\(path)"])
        return true
    }
}
