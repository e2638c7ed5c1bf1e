/// Shared by both backends: the same WHERE clauses, valid in SQLite and PostgreSQL alike.
extension RunLogState {
    /// The rows in this state, as SQL (each matches one partial index exactly).
    var condition: String {
        switch self {
        case .awaitingCompression: return "completed_at IS NOT NULL AND logs_compressed_at IS NULL AND logs_deleted_at IS NULL"
        case .present: return "completed_at IS NOT NULL AND logs_deleted_at IS NULL"
        case .deleted: return "completed_at IS NOT NULL AND logs_deleted_at IS NOT NULL"
        }
    }
}
