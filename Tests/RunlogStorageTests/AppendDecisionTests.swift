import Testing

@testable import RunlogStorage

/// The append rules without a file: sequences, producer-id de-duplication, the terminal event.
@Suite struct AppendDecisionTests {
    static let terminal = LifecycleEvent.completed

    func decide(_ lines: [String], after last: Int64 = 0, known: [String: Int64] = [:], sealed: Bool = false) throws -> Result<AppendDecision, AppendDecision.Refusal> {
        let batch = try EventBatch(ndjson: Array(lines.joined(separator: "\n").utf8))
        return AppendDecision.decide(batch, after: last, knownIDs: known, isSealed: sealed, terminalType: Self.terminal)
    }

    @Test func newEventsTakeTheNextSequencesInBatchOrder() throws {
        let decision = try decide([#"{"type":"a.b"}"#, #"{"type":"a.b","event_id":"p1"}"#, #"{"type":"a.b"}"#], after: 41).get()
        #expect(decision.sequences == [42, 43, 44])
        #expect(decision.isNew == [true, true, true])
        #expect(decision.appended(after: 41) == 3 && decision.lastSequence == 44)
        #expect(decision.newIDs.map(\.id) == ["p1"] && decision.newIDs.map(\.sequence) == [43])
        #expect(decision.duplicates == 0 && decision.duplicateTarget == 0 && !decision.seals)
    }

    @Test func aRepeatedProducerIDTakesNoSequenceAndNamesTheOriginal() throws {
        // p1 is stored at 7; p2 arrives twice in this batch.
        let decision = try decide(
            [#"{"type":"a.b","event_id":"p1"}"#, #"{"type":"a.b","event_id":"p2"}"#, #"{"type":"a.b","event_id":"p2"}"#, #"{"type":"a.b"}"#],
            after: 10, known: ["p1": 7]
        ).get()
        #expect(decision.sequences == [7, 11, 11, 12])
        #expect(decision.isNew == [false, true, false, true])
        #expect(decision.duplicates == 2 && decision.duplicateTarget == 11)
        #expect(decision.appended(after: 10) == 2)
    }

    @Test func aSealedLogRefusesNewEventsButAcknowledgesARetriedCompletion() throws {
        #expect(try decide([#"{"type":"a.b"}"#], after: 5, sealed: true) == .failure(.logClosed))
        // The producer's completion, retried after its reply was lost: nothing new, so no refusal.
        let retry = try decide([#"{"type":"run.completed","event_id":"done","payload":{"status":"succeeded"}}"#], after: 5, known: ["done": 5], sealed: true).get()
        #expect(retry.appended(after: 5) == 0 && retry.duplicates == 1 && retry.sequences == [5])
    }

    @Test func theTerminalEventSealsAndMustComeLast() throws {
        let sealing = try decide([#"{"type":"a.b"}"#, #"{"type":"run.completed","payload":{"status":"failed"}}"#]).get()
        #expect(sealing.seals && sealing.lastSequence == 2)
        #expect(try decide([#"{"type":"run.completed"}"#, #"{"type":"a.b"}"#, #"{"type":"a.b"}"#]) == .failure(.eventAfterTerminal(line: 2)))
        // A repeat after the terminal event adds nothing, so it is no event after it.
        let repeatAfter = try decide([#"{"type":"run.completed","event_id":"c"}"#, #"{"type":"a.b","event_id":"old"}"#], after: 3, known: ["old": 2]).get()
        #expect(repeatAfter.seals && repeatAfter.sequences == [4, 2])
    }

    @Test func onlyTheConfiguredTypeSeals() throws {
        let batch = try EventBatch(ndjson: Array(#"{"type":"run.completed"}"#.utf8))
        let decision = try AppendDecision.decide(batch, after: 0, knownIDs: [:], isSealed: false, terminalType: nil).get()
        #expect(!decision.seals)
        #expect(try decide([#"{"type":"run.completedx"}"#, #"{"type":"a.b"}"#]).get().lastSequence == 2)
    }
}
