import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Opening: recovery from the files on first use, and the producer ids an append may need.
extension RunLog {
    // MARK: Opening

    /// Recovers the log from disk on first use; later calls return at once.
    func ensureOpen() async throws {
        let ready = state.withLock { state -> Bool? in
            switch state.phase {
            case .open: return true
            case .retired: return nil
            default: return false
            }
        }
        switch ready {
        case true?: return
        case nil: throw RunLogRetired()
        case false?: break
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startRecovery = state.withLock { state -> Bool in
                switch state.phase {
                case .open:
                    continuation.resume()
                    return false
                case .retired:
                    continuation.resume(throwing: RunLogRetired())
                    return false
                case .opening(var waiting):
                    waiting.append(continuation)
                    state.phase = .opening(waiting)
                    return false
                case .unopened:
                    state.phase = .opening([continuation])
                    return true
                }
            }
            if startRecovery {
                environment.threadPool.submit { work in
                    let result: Result<RecoveredLog, any Error>
                    if case .active = work {
                        result = Result { try LogRecovery.recover(self.key, directory: self.directory, logger: self.logger) }
                    } else {
                        result = .failure(StorageError.shutDown)
                    }
                    self.finishOpening(result)
                }
            }
        }
    }

    func finishOpening(_ result: Result<RecoveredLog, any Error>) {
        state.withLock { state in
            guard case .opening(let waiting) = state.phase else { return }
            switch result {
            case .success(let recovered):
                state.exists = recovered.exists
                state.closedSegments = recovered.closedSegments
                state.active = recovered.active
                state.lastSequence = recovered.lastSequence
                state.writtenSequence = recovered.lastSequence
                watchers.advance(to: recovered.lastSequence)  // nobody waits yet: resumes nothing
                if let terminal = configuration.terminalEventType, recovered.lastEventType == terminal {
                    state.sealedAt = recovered.lastSequence
                }
                state.phase = .open
                for continuation in waiting { continuation.resume() }
            case .failure(let error):
                logger.error("could not open an event log", metadata: ["run": "\(key)", "error": "\(error)"])
                state.phase = .unopened
                for continuation in waiting { continuation.resume(throwing: error) }
            }
        }
    }

    /// Loads the producer event ids already in the log, once, before the first append that carries one.
    func loadProducerIDsIfNeeded() async throws {
        guard state.withLock({ $0.producerIDs == nil }) else { return }
        let snapshot = try state.withLock { state throws -> LogSnapshot? in
            guard case .open = state.phase else { throw RunLogRetired() }
            guard state.exists else { return nil }
            return makeSnapshot(state)
        }
        var ids: [String: Int64] = [:]
        if let snapshot {
            ids = try await environment.threadPool.runIfActive {
                var ids: [String: Int64] = [:]
                let cursor = LogCursor(snapshot: snapshot, after: 0)
                while case .chunk(let chunk) = try cursor.next() {
                    chunk.forEachLine { sequence, line in
                        line.withUnsafeReadableBytes { bytes in
                            guard let range = StoredLine.eventID(of: bytes) else { return }
                            let id = UnsafeRawBufferPointer(rebasing: bytes[range])
                            if !EventIdentifier.isGenerated(id) {
                                ids[String(decoding: id, as: UTF8.self)] = sequence
                            }
                        }
                    }
                }
                return ids
            }
        }
        state.withLock { state in
            if state.producerIDs == nil { state.producerIDs = ids }
        }
    }
}
