import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Flushing: turning the flush state machine's actions into jobs on the thread pool and timers,
/// and applying what each write did.
extension RunLog {
    // MARK: Flushing

    func makeEffect(for action: FlushStateMachine.Action, state: inout State) -> Effect {
        switch action {
        case .none:
            return .none
        case .armTimer(let deadline):
            return .armTimer(deadline)
        case .flush:
            let bytes = state.buffer
            state.buffer = ByteBufferAllocator().buffer(capacity: min(bytes.capacity, configuration.flushBytes * 2))
            let active = state.active
            let activeFirst = (active?.readableLength ?? 0) > 0 ? active!.firstSequence : state.writtenSequence + 1
            return .flush(
                FlushJob(
                    bytes: bytes,
                    events: Int(state.lastSequence - state.writtenSequence),
                    lastSequence: state.lastSequence,
                    writer: state.writer,
                    activeFirstSequence: activeFirst,
                    activeLength: active?.readableLength ?? 0
                )
            )
        }
    }

    func perform(_ effect: Effect) {
        switch effect {
        case .none:
            return
        case .flush(let job):
            environment.threadPool.submit { work in
                guard case .active = work else {
                    self.completeFlushes(job, failingWith: StorageError.shutDown)
                    return
                }
                self.runFlushes(startingWith: job)
            }
        case .armTimer(let deadline):
            Task {
                do {
                    try await Task.sleep(until: deadline, clock: .continuous)
                } catch {
                    return  // cancelled: nothing to flush for
                }
                self.timerFired()
            }
        }
    }

    func timerFired() {
        let effect = state.withLock { state in
            makeEffect(for: state.flush.timerFired(now: .now), state: &state)
        }
        perform(effect)
    }

    /// Runs on the thread pool: writes a job, completes it, and goes on while completions
    /// start new flushes.
    func runFlushes(startingWith first: FlushJob) {
        var job = first
        while true {
            let outcome = write(job)
            environment.space.noteWrite(failure: outcome.failure?.error)
            let effect = state.withLock { state in complete(job, with: outcome, state: &state) }
            watchers.advance(to: outcome.writtenThrough)
            switch effect {
            case .flush(let next):
                job = next
            case .none, .armTimer:
                perform(effect)
                return
            }
        }
    }

    func completeFlushes(_ job: FlushJob, failingWith error: StorageError) {
        let outcome = FlushOutcome(
            writer: job.writer, active: nil, writtenThrough: job.lastSequence - Int64(job.events), failure: (error, job.bytes)
        )
        let effect = state.withLock { state in complete(job, with: outcome, state: &state) }
        perform(effect)
    }


    func complete(_ job: FlushJob, with outcome: FlushOutcome, state: inout State) -> Effect {
        let now = ContinuousClock.now
        // Whatever reached the files counts, even when the flush then failed.
        state.writer = outcome.writer
        state.closedSegments.append(contentsOf: outcome.rotated)
        if let active = outcome.active {
            state.active = active
        } else if !outcome.rotated.isEmpty {
            state.active = nil
        }
        if outcome.writtenThrough > state.writtenSequence {
            if state.tail != nil {
                if outcome.failure == nil, job.lastSequence == outcome.writtenThrough {
                    state.tail!.append(EventChunk(bytes: job.bytes, firstSequence: state.writtenSequence + 1, lastSequence: job.lastSequence))
                } else {
                    // Only part of the job reached the files: readers find those lines there.
                    state.tail = LiveTail(capacity: configuration.liveTailBytes, after: outcome.writtenThrough)
                }
            }
            state.writtenSequence = outcome.writtenThrough
            state.exists = true
            state.unwritten.removeAll { $0.lastSequence <= outcome.writtenThrough }
            resumeWaiters(upTo: outcome.writtenThrough, state: &state)
        }
        guard let (failure, unwritten) = outcome.failure else {
            state.writeFailure = nil
            resumeSpaceWaiters(&state)
            return makeEffect(for: state.flush.flushSucceeded(now: now), state: &state)
        }
        state.writer = nil  // reopened (and checked) by the next flush
        if configuration.durability.acknowledgesAfterWrite {
            // Nothing unwritten was acknowledged: undo it all, so the sequences stay gapless.
            logger.error(
                "a write failed; unacknowledged appends were refused",
                metadata: ["run": "\(key)", "error": "\(failure)", "events": "\(state.lastSequence - state.writtenSequence)"]
            )
            for record in state.unwritten {
                for id in record.producerIDs { state.producerIDs?[id] = nil }
            }
            state.unwritten.removeAll()
            state.lastSequence = state.writtenSequence
            if let sealed = state.sealedAt, sealed > state.writtenSequence { state.sealedAt = nil }
            state.buffer.clear()
            state.flush.flushFailedDiscardingLines()
            let waiters = state.waiters
            state.waiters.removeAll()
            for waiter in waiters {
                waiter.continuation.resume(returning: .finished(.failure(failure)))
            }
            resumeSpaceWaiters(&state)
            return .none
        }
        // Under `none` the lines were acknowledged: keep them and retry.
        logger.error(
            "a write failed; retrying",
            metadata: ["run": "\(key)", "error": "\(failure)", "retry_in": "\(configuration.writeRetryDelay)"]
        )
        state.writeFailure = failure
        var retained = unwritten
        retained.writeBuffer(&state.buffer)
        state.buffer = retained
        resumeSpaceWaiters(&state)
        let action = state.flush.flushFailedKeepingLines(
            events: Int(job.lastSequence - state.writtenSequence), bytes: unwritten.readableBytes,
            now: now, retryAt: now + configuration.writeRetryDelay
        )
        return makeEffect(for: action, state: &state)
    }

    func resumeWaiters(upTo sequence: Int64, state: inout State) {
        guard !state.waiters.isEmpty else { return }
        var remaining: [Waiter] = []
        for waiter in state.waiters {
            if waiter.target <= sequence {
                waiter.continuation.resume(returning: .finished(.success(waiter.receipt)))
            } else {
                remaining.append(waiter)
            }
        }
        state.waiters = remaining
    }

    /// Waits until lines after `sequence` are readable or `wakeup` rings; returns the last

    func resumeSpaceWaiters(_ state: inout State) {
        let waiting = state.spaceWaiters
        state.spaceWaiters.removeAll()
        for continuation in waiting { continuation.resume(returning: .retry) }
    }
}
