import NIOCore
import Synchronization

/// Appending: deciding what a batch adds, encoding it into the buffer, and waiting for it to be durable.
extension RunLog {
    func append(_ batch: EventBatch, expectedLastSequence: Int64?) async throws -> AppendReceipt {
        try await ensureOpen()
        while true {
            if batch.hasProducerEventIDs { try await loadProducerIDsIfNeeded() }
            let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                let effect = state.withLock { state in
                    append(batch, expectedLastSequence: expectedLastSequence, to: &state, continuation: continuation)
                }
                perform(effect)
            }
            switch outcome {
            case .finished(let result): return try result.get()
            case .retry: continue
            case .retired: throw RunLogRetired()
            }
        }
    }

    func append(
        _ batch: EventBatch,
        expectedLastSequence: Int64?,
        to state: inout State,
        continuation: CheckedContinuation<Outcome, Never>
    ) -> Effect {
        func finish(_ result: Result<AppendReceipt, StorageError>) -> Effect {
            continuation.resume(returning: .finished(result))
            return .none
        }
        guard case .open = state.phase else {
            continuation.resume(returning: .retired)
            return .none
        }
        let now = ContinuousClock.now
        state.lastUse = now
        if case .outOfSpace = state.writeFailure {
            // Acknowledged lines wait for space; new ones would only add to what may be lost.
            return finish(.failure(state.writeFailure!))
        }
        if state.flush.memoryBytes >= configuration.maxBufferedBytes {
            if state.writeFailure != nil {
                // The failure itself is in the server's log (it names server paths).
                return finish(.failure(.unavailable("writes to this run's log are failing; try again later")))
            }
            // Wait for the buffer to drain, and make sure a flush is on its way to drain it.
            state.spaceWaiters.append(continuation)
            return makeEffect(for: state.flush.acknowledgementRequested(now: now), state: &state)
        }
        if let expectedLastSequence, expectedLastSequence != state.lastSequence {
            return finish(.failure(.sequenceMismatch(expected: expectedLastSequence, actual: state.lastSequence)))
        }
        if batch.hasProducerEventIDs && state.producerIDs == nil {
            continuation.resume(returning: .retry)
            return .none
        }

        let decision: AppendDecision
        switch AppendDecision.decide(
            batch, after: state.lastSequence, knownIDs: state.producerIDs ?? [:], isSealed: state.sealedAt != nil,
            terminalType: configuration.terminalEventType
        ) {
        case .success(let decided):
            decision = decided
        case .failure(.logClosed):
            return finish(.failure(.logClosed(key, lastSequence: state.lastSequence)))
        case .failure(.eventAfterTerminal(let line)):
            return finish(.failure(.invalidEvent(EventRejection(line: line, reason: "'\(configuration.terminalEventType!)' must be the last event of a run"))))
        }
        let appended = decision.appended(after: state.lastSequence)
        var receipt = AppendReceipt(
            firstSequence: appended > 0 ? state.lastSequence + 1 : nil,
            lastSequence: appended > 0 ? decision.lastSequence : nil,
            appended: appended,
            duplicates: decision.duplicates,
            sequences: decision.sequences
        )
        guard appended > 0 else {
            // Only duplicates: acknowledge once the originals are as durable as new events would be.
            if configuration.durability.acknowledgesAfterWrite, decision.duplicateTarget > state.writtenSequence {
                state.waiters.append(Waiter(target: decision.duplicateTarget, receipt: receipt, continuation: continuation))
                return makeEffect(for: state.flush.acknowledgementRequested(now: now), state: &state)
            }
            return finish(.success(receipt))
        }

        // Encode the new lines into the buffer.
        let wall = environment.wallClock()
        if wall.millisecondsSinceEpoch != state.timestampMillisecond {
            state.timestampMillisecond = wall.millisecondsSinceEpoch
            state.timestamp.withUnsafeMutableBytes { wall.write(to: $0.baseAddress!) }
        }
        let bytesBefore = state.buffer.writerIndex
        let millisecond = UInt64(max(0, wall.millisecondsSinceEpoch))
        state.timestamp.withUnsafeBytes { createdAt in
            for index in 0..<batch.count where decision.isNew[index] {
                let eventID: EventLineEncoder.EventID = batch.events[index].eventID.map { .producer($0) } ?? .generated
                encoder.encode(
                    batch, at: index, sequence: decision.sequences[index], eventID: eventID, createdAt: createdAt,
                    generator: &state.generator, millisecond: millisecond, into: &state.buffer
                )
            }
        }
        let encodedBytes = state.buffer.writerIndex - bytesBefore
        state.exists = true  // readable (empty) until the first flush writes the file
        state.lastSequence = decision.lastSequence
        receipt.createdAt = wall
        receipt.storedBytes = encodedBytes
        if decision.seals { state.sealedAt = decision.lastSequence }
        for (id, sequence) in decision.newIDs { state.producerIDs?[id] = sequence }
        state.unwritten.append(AppendRecord(lastSequence: decision.lastSequence, producerIDs: decision.newIDs.map(\.id)))

        let waiting = configuration.durability.acknowledgesAfterWrite
        if waiting {
            state.waiters.append(Waiter(target: max(decision.lastSequence, decision.duplicateTarget), receipt: receipt, continuation: continuation))
        } else {
            continuation.resume(returning: .finished(.success(receipt)))
        }
        let action = state.flush.appended(events: appended, bytes: encodedBytes, awaitingAcknowledgement: waiting, now: now)
        return makeEffect(for: action, state: &state)
    }

    /// Writes everything buffered now and waits until it is written.
    func flushBuffered() async throws {
        try await ensureOpen()
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let effect = state.withLock { state -> Effect in
                guard state.lastSequence > state.writtenSequence else {
                    continuation.resume(returning: .retry)
                    return .none
                }
                let receipt = AppendReceipt(firstSequence: nil, lastSequence: nil, appended: 0, duplicates: 0, sequences: [])
                state.waiters.append(Waiter(target: state.lastSequence, receipt: receipt, continuation: continuation))
                return makeEffect(for: state.flush.acknowledgementRequested(now: .now), state: &state)
            }
            perform(effect)
        }
        if case .finished(.failure(let error)) = outcome { throw error }
    }
}
