import Synchronization

/// Retirement: letting go of an idle or sealed log's file and memory.
extension RunLog {
    func retireIfIdle(now: ContinuousClock.Instant, idleTimeout: Duration) -> Bool {
        state.withLock { state in
            switch state.phase {
            case .opening, .retired: return false
            case .unopened, .open: break
            }
            guard !state.flush.isFlushing, state.lastSequence == state.writtenSequence, state.waiters.isEmpty,
                state.spaceWaiters.isEmpty, now - state.lastUse >= idleTimeout, watchers.retireIfEmpty()
            else { return false }
            state.phase = .retired
            state.writer = nil
            state.producerIDs = nil
            return true
        }
    }

    /// Retires a sealed log with nothing pending, so that its next use reads the files again:
    /// another process (retention) may have renamed or removed them. Live readers waiting on
    /// it are told to start over on the replacement. Live logs are left alone: only this
    /// process changes their files.
    func retireIfSealed() -> Bool {
        let retired = state.withLock { state in
            guard case .open = state.phase, state.sealedAt != nil, !state.flush.isFlushing,
                state.lastSequence == state.writtenSequence, state.waiters.isEmpty, state.spaceWaiters.isEmpty
            else { return false }
            state.phase = .retired
            state.writer = nil
            state.producerIDs = nil
            return true
        }
        if retired { watchers.retire() }
        return retired
    }

    /// Closes the log's file handle if no write needs it (it reopens on the next flush).
    func releaseWriterIfIdle() -> Bool {
        state.withLock { state in
            guard state.writer != nil, !state.flush.isFlushing, state.lastSequence == state.writtenSequence else { return false }
            state.writer = nil
            return true
        }
    }
}
