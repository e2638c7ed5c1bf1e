import NIOCore
import Testing

@testable import RunlogGateway

/// When an event loop's passes over its parked readers start and end, and which batches they
/// keep, without sockets.
@Suite struct LoopSweepTests {
    /// A batch of events `first...last`, each frame `size` bytes.
    func batch(_ first: Int64, _ last: Int64, size: Int = 10) -> LiveFrames {
        let events = (first...last).enumerated().map { index, sequence in
            LiveFrames.Event(sequence: sequence, type: "step.done", range: (index * size)..<((index + 1) * size))
        }
        return LiveFrames(bytes: ByteBuffer(repeating: UInt8(ascii: "x"), count: events.count * size), events: events, previous: first - 1)
    }

    @Test func batchesDuringAPassWaitForTheNextOneAndTheRestGo() {
        var sweep = LoopSweep()
        // The first batch starts a pass; later ones join it (readers not yet visited get them).
        let first = sweep.add(batch(1, 2))
        #expect(first && sweep.isSweeping)
        let second = sweep.add(batch(3, 3))
        let third = sweep.add(batch(4, 5))
        #expect(!second && !third)
        #expect(sweep.batches.map(\.last) == [2, 3, 5])
        #expect(sweep.bytes == 50)
        // Every reader had the first batch; those visited before the others came still lack
        // them, so another pass starts with them.
        let again = sweep.passEnded()
        #expect(again && sweep.isSweeping)
        #expect(sweep.batches.map(\.last) == [3, 5])
        #expect(sweep.bytes == 30)
        // Nothing came during that pass: it ends, and the loop keeps nothing.
        let once = sweep.passEnded()
        #expect(!once && !sweep.isSweeping)
        #expect(sweep.batches.isEmpty && sweep.bytes == 0)
        // The next batch starts a pass again.
        let later = sweep.add(batch(6, 6))
        #expect(later)
    }

    @Test func aSlowPassHoldsTheFeedBackInsteadOfGrowing() {
        var sweep = LoopSweep()
        _ = sweep.add(batch(1, 1))
        var next: Int64 = 2
        while !sweep.isBacklogged {
            _ = sweep.add(batch(next, next))
            next += 1
        }
        #expect(sweep.batches.count == LoopSweep.backlogBatches + 1)
        // The pass ends: the batch it covered goes, and the feed may add again.
        let again = sweep.passEnded()
        #expect(again && !sweep.isBacklogged)
        #expect(sweep.batches.count == LoopSweep.backlogBatches)

        // Bytes count as well as batches.
        var large = LoopSweep()
        _ = large.add(batch(1, 1, size: LoopSweep.backlogBytes))
        #expect(!large.isBacklogged)
        _ = large.add(batch(2, 2))
        #expect(large.isBacklogged)
    }
}
