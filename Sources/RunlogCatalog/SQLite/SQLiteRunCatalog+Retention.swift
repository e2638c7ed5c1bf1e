import GRDB

/// What retention reads and records: which runs' logs are due, and what was done to them.
extension SQLiteRunCatalog {
    package func completedRuns(
        in completed: Range<Int64>, logs state: RunLogState, after position: ScanPosition?, limit: Int
    ) async throws -> [RunRecord] {
        try await scan(
            condition: state.condition + " AND completed_at >= ? AND completed_at < ?",
            arguments: [completed.lowerBound.databaseValue, completed.upperBound.databaseValue], timeColumn: "completed_at", after: position, limit: limit
        )
    }

    package func countCompletedRuns(in completed: Range<Int64>, logs state: RunLogState) async throws -> Int {
        try await database.read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM runs WHERE \(state.condition) AND completed_at >= ? AND completed_at < ?",
                arguments: [completed.lowerBound, completed.upperBound]
            ) ?? 0
        }
    }

    package func liveRuns(createdBefore cutoff: Int64, after position: ScanPosition?, limit: Int) async throws -> [RunRecord] {
        try await scan(
            condition: "completed_at IS NULL AND created_at < ?", arguments: [cutoff.databaseValue], timeColumn: "created_at", after: position,
            limit: limit
        )
    }

    package func countLiveRuns(createdBefore cutoff: Int64) async throws -> Int {
        try await database.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM runs WHERE completed_at IS NULL AND created_at < ?", arguments: [cutoff]) ?? 0
        }
    }

    private func scan(
        condition: String, arguments: [DatabaseValue], timeColumn: String, after position: ScanPosition?, limit: Int
    ) async throws -> [RunRecord] {
        var sql = "SELECT * FROM runs WHERE \(condition)"
        var values = arguments
        if let position {
            sql += " AND (\(timeColumn), workspace_id, id) > (?, ?, ?)"
            values += [position.time.databaseValue, position.workspaceID.databaseValue, position.id.databaseValue]
        }
        sql += " ORDER BY \(timeColumn), workspace_id, id LIMIT ?"
        values.append(limit.databaseValue)
        return try await database.read { [sql, values] db in
            try RunRecord.fetchAll(db, sql: sql, arguments: StatementArguments(values))
        }
    }

    @discardableResult
    package func markLogsCompressed(workspace: String, id: String, at time: Int64) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE runs SET logs_compressed_at = ? WHERE workspace_id = ? AND id = ? AND logs_deleted_at IS NULL",
                arguments: [time, workspace, id]
            )
            return db.changesCount > 0
        }
    }

    @discardableResult
    package func markLogsDeleted(workspace: String, id: String, at time: Int64) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE runs SET events_path = NULL, logs_deleted_at = COALESCE(logs_deleted_at, ?) WHERE workspace_id = ? AND id = ?",
                arguments: [time, workspace, id]
            )
            return db.changesCount > 0
        }
    }

    @discardableResult
    package func deleteRun(workspace: String, id: String) async throws -> Bool {
        try await write { db in
            try RunRecord.deleteOne(db, key: ["workspace_id": workspace, "id": id])
        }
    }
}
