/// What an append did: the sequences given to new events, and how many were duplicates of
/// events already in the run (by producer `event_id`) and so not appended again.
public struct AppendReceipt: Sendable, Equatable {
    /// Sequence of the first new event; nil when nothing new was appended.
    public var firstSequence: Int64?
    /// Sequence of the last new event; nil when nothing new was appended.
    public var lastSequence: Int64?
    public var appended: Int
    public var duplicates: Int
    /// For each event of the batch, in order, the sequence it has in the log (its own, or the
    /// original's for a duplicate).
    public var sequences: [Int64]
    /// The `created_at` of the new events (one per batch); nil when nothing new was appended.
    public var createdAt: Timestamp?
    /// Bytes the new events take in the log.
    public var storedBytes: Int = 0

    public init(firstSequence: Int64?, lastSequence: Int64?, appended: Int, duplicates: Int, sequences: [Int64], createdAt: Timestamp? = nil) {
        self.firstSequence = firstSequence
        self.lastSequence = lastSequence
        self.appended = appended
        self.duplicates = duplicates
        self.sequences = sequences
        self.createdAt = createdAt
    }
}
