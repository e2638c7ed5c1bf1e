package import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Retention's work on run logs: compressing them and deleting them, file by file.
///
/// It may run in another process than the server (a cron job) and needs no ``EventStore``:
/// every change is one atomic rename, or the archive procedure of ``SegmentArchiver``, so
/// readers and the server see a whole log before and after each step, and work killed at any
/// point is finished by simply running it again. All methods block: call them off the
/// event loops.
package struct LogMaintenance: Sendable {
    package let configuration: EventStoreConfiguration
    private let logger: Logger

    package init(configuration: EventStoreConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Which segments of a log to compress.
    package enum Scope: Sendable, Equatable {
        /// The whole log of a finished run. A log with an active segment must end with its
        /// terminal event: nothing will be written to it again, so it is closed and gzipped too.
        case wholeSealedLog
        /// Closed segments whose last event was created before the cutoff (the server's
        /// `created_at`, not the file's clock). The active segment is never touched.
        case closedSegments(lastEventBefore: Timestamp)
    }

    /// What compressing a log did, or would do in a dry run.
    package struct Compression: Sendable, Equatable {
        /// Segments gzipped (or, in a dry run, to be gzipped).
        package var segments = 0
        /// Their plain size.
        package var bytesBefore: Int64 = 0
        /// Their gzipped size; 0 in a dry run.
        package var bytesAfter: Int64 = 0

        package init() {}
    }

    /// The directory holding everything of a run (its `logs/` and nothing else).
    package func runDirectory(for key: RunKey) -> String {
        FileSystem.parent(of: configuration.logDirectory(for: key))
    }

    /// Where deletions put a run's directory before removing it.
    package var trashDirectory: String { configuration.root + "/.trash" }

    // MARK: Compressing

    /// Gzips the segments of a run's log that `scope` selects, each with the safe archive
    /// procedure, after clearing leftovers of an interrupted earlier attempt. A run without
    /// a log directory has nothing to compress.
    package func compress(_ key: RunKey, scope: Scope, dryRun: Bool = false) throws(StorageError) -> Compression {
        do {
            return try compressSegments(of: key, scope: scope, dryRun: dryRun)
        } catch {
            throw StorageError(error)
        }
    }

    private struct Candidate {
        var segment: ClosedSegment
        var bytes: Int64
    }

    private func compressSegments(of key: RunKey, scope: Scope, dryRun: Bool) throws -> Compression {
        let directory = configuration.logDirectory(for: key)
        guard let names = try FileSystem.contentsOfDirectory(directory) else { return Compression() }
        var plain: [ClosedSegment] = []
        var compressed = Set<String>()
        var hasActive = false
        for name in names.sorted() {
            switch SegmentName(name) {
            case .active:
                hasActive = true
            case .closed(let segment):
                if segment.isCompressed { compressed.insert(segment.plainFileName) } else { plain.append(segment) }
            case .temporary:
                if !dryRun { try SegmentArchiver.removeIfAbandoned(directory + "/" + name, logger: logger) }
            case .unknown:
                continue
            }
        }
        var candidates: [Candidate] = []
        for segment in plain {
            let path = directory + "/" + segment.plainFileName
            if compressed.contains(segment.plainFileName) {
                // Its gzip was renamed into place complete and synced: this copy is a leftover.
                if !dryRun {
                    try FileSystem.removeFile(path)
                    logger.notice("removed a segment already archived", metadata: ["path": "\(path)"])
                }
                continue
            }
            guard let bytes = try FileSystem.size(of: path) else { continue }  // archived meanwhile
            switch scope {
            case .wholeSealedLog:
                candidates.append(Candidate(segment: segment, bytes: bytes))
            case .closedSegments(let cutoff):
                if let last = try lastEventTime(inPlainFile: path), last < cutoff {
                    candidates.append(Candidate(segment: segment, bytes: bytes))
                }
            }
        }
        if scope == .wholeSealedLog, hasActive, let sealed = try closeSealedActiveSegment(of: key, in: directory, dryRun: dryRun) {
            candidates.append(sealed)
        }
        var result = Compression()
        for candidate in candidates {
            if dryRun {
                result.segments += 1
                result.bytesBefore += candidate.bytes
                continue
            }
            guard let archived = try SegmentArchiver.archive(candidate.segment, in: directory, level: configuration.compressionLevel) else {
                continue  // another process archived it meanwhile
            }
            result.segments += 1
            result.bytesBefore += archived.plainBytes
            result.bytesAfter += archived.compressedBytes
        }
        return result
    }

    /// Gives a sealed log's active segment its closed name (one rename, then a directory
    /// fsync), so it can be archived like any closed segment. Nil when it is empty.
    private func closeSealedActiveSegment(of key: RunKey, in directory: String, dryRun: Bool) throws -> Candidate? {
        let path = directory + "/" + SegmentName.activeFileName
        guard let file = try PosixFile.openIfExists(path: path, flags: O_RDONLY) else { return nil }
        let size = try file.status().size
        guard size > 0 else { return nil }
        guard let last = try BackwardScanner.lastLines(in: file, before: size, count: 1).first,
            last.last == UInt8(ascii: "\n")
        else { throw StorageError.logNotSealed(key) }
        let (lastSequence, type) = last.withUnsafeBytes { line in
            (StoredLine.sequence(of: line), StoredLine.type(of: line).map { String(decoding: line[$0], as: UTF8.self) })
        }
        guard let terminal = configuration.terminalEventType, type == terminal, let lastSequence else {
            throw StorageError.logNotSealed(key)
        }
        let head = try BackwardScanner.read(file, 0..<min(size, 64))
        guard let firstSequence = head.withUnsafeBytes({ StoredLine.sequence(of: $0) }), firstSequence <= lastSequence else {
            throw StorageError.corruptLog("\(path) does not start with a stored line")
        }
        let segment = ClosedSegment(firstSequence: firstSequence, lastSequence: lastSequence, isCompressed: false)
        if !dryRun {
            try FileSystem.rename(path, to: directory + "/" + segment.plainFileName)
            try FileSystem.synchronizeDirectory(directory)
            logger.debug("closed the active segment of a sealed log", metadata: ["run": "\(key)", "segment": "\(segment.plainFileName)"])
        }
        return Candidate(segment: segment, bytes: size)
    }

    private func lastEventTime(inPlainFile path: String) throws -> Timestamp? {
        guard let file = try PosixFile.openIfExists(path: path, flags: O_RDONLY) else { return nil }
        guard let line = try BackwardScanner.lastLines(in: file, before: try file.status().size, count: 1).first else { return nil }
        return line.withUnsafeBytes { StoredLine.createdAt(of: $0) }
    }

    // MARK: Deleting

    /// The bytes of a run's files (0 when it has none).
    package func logBytes(of key: RunKey) throws(StorageError) -> Int64 {
        do {
            return try FileSystem.treeSize(runDirectory(for: key))
        } catch {
            throw StorageError(error)
        }
    }

    /// Takes a run's directory out of the storage tree in one rename, into the trash; returns
    /// the bytes it held, or nil when the run had no directory. A reader with a segment open
    /// reads it to its end; every later open fails, so readers see
    /// ``StorageError/logDeleted(_:)`` rather than a shortened log.
    package func moveToTrash(_ key: RunKey) throws(StorageError) -> Int64? {
        let source = runDirectory(for: key)
        do {
            guard FileSystem.exists(source) else { return nil }
            let bytes = try FileSystem.treeSize(source)
            try FileSystem.createDirectories(trashDirectory, durably: false)
            let name = "\(key.workspaceID).\(key.runID).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
            try FileSystem.rename(source, to: trashDirectory + "/" + name)
            // Durable before the caller records the deletion: a power loss must not bring the
            // directory back beside a row that says its logs are gone.
            try FileSystem.synchronizeDirectory(FileSystem.parent(of: source))
            try FileSystem.synchronizeDirectory(trashDirectory)
            return bytes
        } catch {
            throw StorageError(error)
        }
    }

    /// Removes everything in the trash: deletions just moved there, or interrupted earlier.
    /// Returns the bytes freed.
    @discardableResult
    package func emptyTrash() throws(StorageError) -> Int64 {
        do {
            var freed: Int64 = 0
            for name in try FileSystem.contentsOfDirectory(trashDirectory) ?? [] {
                freed += try FileSystem.removeTree(trashDirectory + "/" + name)
            }
            return freed
        } catch {
            throw StorageError(error)
        }
    }
}
