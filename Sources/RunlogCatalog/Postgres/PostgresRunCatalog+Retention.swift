import PostgresNIO

/// What retention reads and records, as in ``SQLiteRunCatalog``.
extension PostgresRunCatalog {
    package func completedRuns(
        in completed: Range<Int64>, logs state: RunLogState, after position: ScanPosition?, limit: Int
    ) async throws -> [RunRecord] {
        var query = PostgresQueryBuilder("SELECT \(RunRecord.postgresColumns) FROM runs WHERE \(state.condition) AND completed_at >= ")
        query.bind(completed.lowerBound)
        query.append(" AND completed_at < ")
        query.bind(completed.upperBound)
        return try await scan(query, timeColumn: "completed_at", after: position, limit: limit)
    }

    package func countCompletedRuns(in completed: Range<Int64>, logs state: RunLogState) async throws -> Int {
        try await count(
            "SELECT COUNT(*) FROM runs WHERE \(unescaped: state.condition) AND completed_at >= \(completed.lowerBound) AND completed_at < \(completed.upperBound)"
        )
    }

    package func liveRuns(createdBefore cutoff: Int64, after position: ScanPosition?, limit: Int) async throws -> [RunRecord] {
        var query = PostgresQueryBuilder("SELECT \(RunRecord.postgresColumns) FROM runs WHERE completed_at IS NULL AND created_at < ")
        query.bind(cutoff)
        return try await scan(query, timeColumn: "created_at", after: position, limit: limit)
    }

    package func countLiveRuns(createdBefore cutoff: Int64) async throws -> Int {
        try await count("SELECT COUNT(*) FROM runs WHERE completed_at IS NULL AND created_at < \(cutoff)")
    }

    private func scan(_ base: PostgresQueryBuilder, timeColumn: String, after position: ScanPosition?, limit: Int) async throws -> [RunRecord] {
        var query = base
        if let position {
            query.append(" AND (\(timeColumn), workspace_id, id) > ")
            query.bindRow([position.time, position.workspaceID, position.id])
        }
        query.append(" ORDER BY \(timeColumn), workspace_id, id LIMIT ")
        query.bind(Int64(limit))
        return try await records(query.query)
    }

    private func count(_ query: PostgresQuery) async throws -> Int {
        try await perform { [logger] client in
            var total = 0
            for try await value in try await client.query(query, logger: logger).decode(Int64.self) { total = Int(value) }
            return total
        }
    }

    /// Runs `query` (an UPDATE or DELETE of one row) and tells whether it changed a row.
    private func changesOneRow(_ query: PostgresQuery) async throws -> Bool {
        try await perform { [logger] client in
            // RETURNING makes the changed rows countable without reading the command tag.
            try await client.query(query, logger: logger).collect().count > 0
        }
    }

    @discardableResult
    package func markLogsCompressed(workspace: String, id: String, at time: Int64) async throws -> Bool {
        try await changesOneRow(
            "UPDATE runs SET logs_compressed_at = \(time) WHERE workspace_id = \(workspace) AND id = \(id) AND logs_deleted_at IS NULL RETURNING 1"
        )
    }

    @discardableResult
    package func markLogsDeleted(workspace: String, id: String, at time: Int64) async throws -> Bool {
        try await changesOneRow(
            """
            UPDATE runs SET events_path = NULL, logs_deleted_at = COALESCE(logs_deleted_at, \(time))
            WHERE workspace_id = \(workspace) AND id = \(id) RETURNING 1
            """
        )
    }

    @discardableResult
    package func deleteRun(workspace: String, id: String) async throws -> Bool {
        try await changesOneRow("DELETE FROM runs WHERE workspace_id = \(workspace) AND id = \(id) RETURNING 1")
    }
}
