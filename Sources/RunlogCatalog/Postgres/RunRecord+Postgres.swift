import PostgresNIO

extension RunRecord {
    /// The columns every query selects, in the order ``init(_:)`` reads them.
    static let postgresColumns = """
        workspace_id, id, configuration_id, status, exit_code, created_at, started_at, completed_at, last_sequence, event_count, \
        byte_size, error_count, events_path, summary, metadata, logs_compressed_at, logs_deleted_at
        """

    /// A row of ``postgresColumns``.
    init(_ row: PostgresRow) throws {
        let columns = row.makeRandomAccess()
        let statusText = try columns[3].decode(String.self)
        guard let status = RunStatus(rawValue: statusText) else {
            throw PostgresServerError(sqlState: nil, message: "the catalog holds an unknown run status '\(statusText)'")
        }
        self.init(
            workspaceID: try columns[0].decode(String.self), id: try columns[1].decode(String.self),
            configurationID: try columns[2].decode(String?.self), status: status, createdAt: try columns[5].decode(Int64.self),
            eventsPath: try columns[12].decode(String?.self), metadata: try columns[14].decode(String?.self)
        )
        exitCode = try columns[4].decode(Int?.self)
        startedAt = try columns[6].decode(Int64?.self)
        completedAt = try columns[7].decode(Int64?.self)
        lastSequence = try columns[8].decode(Int64.self)
        eventCount = try columns[9].decode(Int64.self)
        byteSize = try columns[10].decode(Int64.self)
        errorCount = try columns[11].decode(Int64.self)
        summary = try columns[13].decode(String?.self)
        logsCompressedAt = try columns[15].decode(Int64?.self)
        logsDeletedAt = try columns[16].decode(Int64?.self)
    }
}
