import GRDB

/// Rows of the `runs` table, read and written by their coding keys.
extension RunRecord: FetchableRecord, PersistableRecord {
    package static let databaseTableName = "runs"
}

extension RunStatus: DatabaseValueConvertible {}
