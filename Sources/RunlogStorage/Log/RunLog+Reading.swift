import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading: waiting for new lines, the in-memory tail, snapshots of the files; and creating the log.
extension RunLog {
    func waitForEvents(after sequence: Int64, wakeup: Wakeup) async throws -> Int64 {
        try await ensureOpen()
        try state.withLock { state throws in
            guard case .open = state.phase else { throw RunLogRetired() }
            state.lastUse = .now
        }
        return try await watchers.wait(after: sequence, wakeup: wakeup)
    }

    /// The written lines after `sequence` if memory still holds them all; `.behind` when the
    /// reader must read the files. The first call starts keeping a tail for this log.
    func recentLines(after sequence: Int64) async throws -> LiveTail.Lookup {
        try await ensureOpen()
        return try state.withLock { state throws -> LiveTail.Lookup in
            guard case .open = state.phase else { throw RunLogRetired() }
            state.lastUse = .now
            if state.tail == nil { state.tail = LiveTail(capacity: configuration.liveTailBytes, after: state.writtenSequence) }
            return state.tail!.lines(after: sequence)
        }
    }

    // MARK: Reading and maintenance

    func makeSnapshot(_ state: State) -> LogSnapshot {
        LogSnapshot(key: key, directory: directory, closedSegments: state.closedSegments, active: state.active, lastSequence: state.writtenSequence)
    }

    /// What readers may read now.
    func snapshot() async throws -> LogSnapshot {
        try await ensureOpen()
        return try state.withLock { state throws -> LogSnapshot in
            guard case .open = state.phase else { throw RunLogRetired() }
            guard state.exists else { throw StorageError.logNotFound(key) }
            state.lastUse = .now
            return makeSnapshot(state)
        }
    }

    /// Creates the log's directory and empty active segment; false when it already existed.
    func create() async throws -> Bool {
        try await ensureOpen()
        guard !state.withLock({ $0.exists }) else { return false }
        let synchronously = configuration.durability == .fsync
        let (directory, path) = (self.directory, activePath)
        let inode = try await environment.threadPool.runIfActive {
            try FileSystem.createDirectories(directory, durably: synchronously)
            let file = try PosixFile(path: path, flags: O_WRONLY | O_CREAT, mode: 0o644)
            if synchronously { try FileSystem.synchronizeDirectory(directory) }
            return try file.status().inode
        }
        return state.withLock { state in
            guard !state.exists else { return false }
            state.exists = true
            state.active = .init(firstSequence: state.lastSequence + 1, readableLength: 0, inode: inode)
            return true
        }
    }

    /// Records that a closed segment is now stored gzipped.
    func markArchived(_ segment: ClosedSegment) {
        state.withLock { state in
            if let index = state.closedSegments.firstIndex(where: { $0.firstSequence == segment.firstSequence }) {
                state.closedSegments[index].isCompressed = true
            }
        }
    }

    /// Retires the log when nothing is pending and it has not been used for `idleTimeout`,
}
