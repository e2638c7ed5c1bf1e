import NIOCore
/// One event loop's share of a ``LiveFeed``: the batches that not every parked reader on the
/// loop has had yet, and the *sweep* that writes them, a pass over the loop's readers that
/// writes each one everything it lacks at the moment its turn comes.
///
/// A batch that arrives during a sweep reaches the readers the sweep has not visited yet in
/// that same pass, and the others in the next pass, which starts as soon as this one ends.
/// So an event waits at most about one pass, however many arrive meanwhile. A feed that waited
/// for a pass to end before taking the next batch made events that arrived during a pass wait
/// up to two.
///
/// A pure state machine: the feed applies it under its lock, and the loop runs the passes.
struct LoopSweep {
    /// Batches some reader on the loop may still lack, oldest first.
    private(set) var batches: [LiveFrames] = []
    /// The frames' bytes in ``batches``.
    private(set) var bytes = 0
    private(set) var isSweeping = false
    /// How many of ``batches`` every reader of the current pass gets: those there when it began.
    private var covered = 0

    /// Past this many bytes or batches, the feed waits for passes to end before adding more:
    /// a loop whose writes are slow never makes it hold more.
    static let backlogBytes = 256 << 10
    static let backlogBatches = 64

    /// Adds a batch; true if a pass must start (none is under way).
    mutating func add(_ batch: LiveFrames) -> Bool {
        batches.append(batch)
        bytes += batch.bytes.readableBytes
        guard !isSweeping else { return false }
        begin()
        return true
    }

    /// The pass under way has visited every reader; true if another must start, for the
    /// batches that arrived during it.
    mutating func passEnded() -> Bool {
        for batch in batches.prefix(covered) { bytes -= batch.bytes.readableBytes }
        batches.removeFirst(covered)
        isSweeping = false
        covered = 0
        guard !batches.isEmpty else { return false }
        begin()
        return true
    }

    /// Whether the feed should wait for passes to end before adding more.
    var isBacklogged: Bool { bytes > Self.backlogBytes || batches.count > Self.backlogBatches }

    private mutating func begin() {
        isSweeping = true
        covered = batches.count
    }
}
