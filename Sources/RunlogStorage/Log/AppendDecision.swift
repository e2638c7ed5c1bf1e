/// What appending a batch to a log adds, decided before anything is encoded: which events are
/// new and which repeat a producer `event_id` already stored (or earlier in the batch), the
/// sequence of each, and whether the batch may go in at all. A pure value, tested without I/O,
/// as ``FlushStateMachine`` is; ``RunLog`` applies it under its lock.
struct AppendDecision: Equatable {
    /// Why a batch with new events is refused whole.
    enum Refusal: Error, Equatable {
        /// The log already holds its terminal event.
        case logClosed
        /// A new event follows the terminal one; its 1-based line in the body.
        case eventAfterTerminal(line: Int)
    }

    /// Each event's sequence: a new one's own, a repeat's original.
    var sequences: [Int64]
    /// Whether each event is new (to be encoded and written).
    var isNew: [Bool]
    /// The producer ids the new events bring, with their sequences.
    var newIDs: [(id: String, sequence: Int64)]
    /// How many events repeat one already stored or earlier in the batch.
    var duplicates: Int
    /// The highest sequence a repeat refers to (0 if none): the batch is acknowledged only once
    /// that sequence is as durable as a new event would be.
    var duplicateTarget: Int64
    /// The log's last sequence once the batch is in.
    var lastSequence: Int64
    /// Whether the batch's new events include the terminal one (the log is sealed after it).
    var seals: Bool

    /// How many new events the batch adds.
    func appended(after previous: Int64) -> Int { Int(lastSequence - previous) }

    /// Decides `batch` against a log whose last sequence is `lastSequence`, which holds the
    /// producer ids `knownIDs` and is sealed or not; `terminalType` is the event type that seals
    /// a log (nil: none does). Only new events are refused: a batch of repeats alone is
    /// acknowledged even on a sealed log, since that is what a retry after a lost reply sends.
    static func decide(
        _ batch: EventBatch, after lastSequence: Int64, knownIDs: [String: Int64], isSealed: Bool, terminalType: String?
    ) -> Result<AppendDecision, Refusal> {
        var decision = AppendDecision(
            sequences: [], isNew: [Bool](repeating: true, count: batch.count), newIDs: [], duplicates: 0, duplicateTarget: 0,
            lastSequence: lastSequence, seals: false
        )
        decision.sequences.reserveCapacity(batch.count)
        var batchIDs: [String: Int64] = [:]
        var terminalIndex: Int?
        for index in 0..<batch.count {
            let event = batch.events[index]
            if let range = event.eventID {
                let id = String(decoding: batch.body[range], as: UTF8.self)
                if let existing = knownIDs[id] ?? batchIDs[id] {
                    decision.isNew[index] = false
                    decision.sequences.append(existing)
                    decision.duplicates += 1
                    decision.duplicateTarget = max(decision.duplicateTarget, existing)
                    continue
                }
                batchIDs[id] = decision.lastSequence + 1
                decision.newIDs.append((id, decision.lastSequence + 1))
            }
            decision.lastSequence += 1
            decision.sequences.append(decision.lastSequence)
            if let terminalType, terminalIndex == nil, batch.body[event.type].elementsEqual(terminalType.utf8) {
                terminalIndex = index
            }
        }
        guard decision.lastSequence > lastSequence else { return .success(decision) }
        if isSealed { return .failure(.logClosed) }
        if let terminalIndex {
            if let after = (terminalIndex + 1..<batch.count).first(where: { decision.isNew[$0] }) {
                return .failure(.eventAfterTerminal(line: batch.events[after].line))
            }
            decision.seals = true
        }
        return .success(decision)
    }

    static func == (lhs: AppendDecision, rhs: AppendDecision) -> Bool {
        lhs.sequences == rhs.sequences && lhs.isNew == rhs.isNew && lhs.newIDs.elementsEqual(rhs.newIDs, by: { $0 == $1 })
            && lhs.duplicates == rhs.duplicates && lhs.duplicateTarget == rhs.duplicateTarget && lhs.lastSequence == rhs.lastSequence
            && lhs.seals == rhs.seals
    }
}
