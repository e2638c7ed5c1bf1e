package import GRDB

/// The catalog in SQLite (WAL), the embedded default: `<storage>/catalog.sqlite`.
package final class SQLiteRunCatalog: RunCatalog {
    /// The database, a pool of connections on a file or, in tests, an in-memory queue.
    let database: any DatabaseWriter

    /// The WAL is truncated to this size after each checkpoint: without a limit it keeps the
    /// largest size it ever reached (megabytes, for a catalog of kilobytes).
    static let journalSizeLimit = 1 << 20

    /// The database file, when the catalog opened it.
    private let path: String?

    /// Opens (creating and migrating) the catalog at `path`.
    package convenience init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_size_limit = \(Self.journalSizeLimit)")
        }
        try self.init(database: DatabasePool(path: path, configuration: configuration), path: path)
    }

    /// A catalog over `database` (a pool, or a queue such as an in-memory one), migrated.
    package convenience init(database: any DatabaseWriter) throws {
        try self.init(database: database, path: nil)
    }

    private init(database: any DatabaseWriter, path: String?) throws {
        self.database = database
        self.path = path
        try Self.migrator.migrate(database)
    }

    /// A write transaction; a full disk or quota becomes ``RunCatalogError/outOfSpace(_:)``.
    func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await database.write(updates)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
            throw RunCatalogError.outOfSpace(error.message ?? "\(error)")
        }
    }

    // MARK: Runs

    package func create(_ record: RunRecord) async throws {
        try await write { db in
            do {
                try record.insert(db)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw RunCatalogError.runExists(workspace: record.workspaceID, run: record.id)
            }
        }
    }

    package func run(workspace: String, id: String) async throws -> RunRecord? {
        try await database.read { db in try RunRecord.fetchOne(db, key: ["workspace_id": workspace, "id": id]) }
    }

    @discardableResult
    package func update(workspace: String, id: String, _ change: @escaping @Sendable (inout RunRecord) throws -> Void) async throws -> RunRecord {
        try await write { db in
            guard var record = try RunRecord.fetchOne(db, key: ["workspace_id": workspace, "id": id]) else {
                throw RunCatalogError.runNotFound(workspace: workspace, run: id)
            }
            try change(&record)
            try record.update(db)
            return record
        }
    }

    package func record(_ progress: [RunProgress]) async throws {
        guard !progress.isEmpty else { return }
        try await write { db in
            let statement = try db.cachedStatement(sql: """
                UPDATE runs SET last_sequence = ?, event_count = ?, byte_size = ?, error_count = ?, summary = ?
                WHERE workspace_id = ? AND id = ? AND status IN ('queued', 'running')
                """)
            for item in progress {
                try statement.execute(arguments: [
                    item.lastSequence, item.eventCount, item.byteSize, item.errorCount, item.summary, item.workspaceID, item.runID,
                ])
            }
        }
    }

    package func liveRuns() async throws -> [RunRecord] {
        try await database.read { db in
            try RunRecord.filter(sql: "status IN ('queued', 'running')").fetchAll(db)
        }
    }

    package func allRuns(after last: (workspace: String, id: String)?, size: Int) async throws -> [RunRecord] {
        try await database.read { db in
            if let last {
                return try RunRecord.filter(sql: "(workspace_id, id) > (?, ?)", arguments: [last.workspace, last.id])
                    .order(sql: "workspace_id, id").limit(size).fetchAll(db)
            }
            return try RunRecord.order(sql: "workspace_id, id").limit(size).fetchAll(db)
        }
    }

    // MARK: Listing

    package func list(workspace: String, filter: RunFilter, limit: Int, cursor: String?) async throws -> RunPage {
        var conditions = ["workspace_id = ?"]
        var arguments: [DatabaseValue] = [workspace.databaseValue]
        if let status = filter.status {
            conditions.append("status = ?")
            arguments.append(status.rawValue.databaseValue)
        }
        if let configurationID = filter.configurationID {
            conditions.append("configuration_id = ?")
            arguments.append(configurationID.databaseValue)
        }
        if let createdAfter = filter.createdAfter {
            conditions.append("created_at > ?")
            arguments.append(createdAfter.databaseValue)
        }
        if let createdBefore = filter.createdBefore {
            conditions.append("created_at < ?")
            arguments.append(createdBefore.databaseValue)
        }
        if let cursor {
            let position = try ListCursor(cursor)
            conditions.append("(created_at, id) < (?, ?)")
            arguments.append(position.createdAt.databaseValue)
            arguments.append(position.id.databaseValue)
        }
        let sql = "SELECT * FROM runs WHERE \(conditions.joined(separator: " AND ")) ORDER BY created_at DESC, id DESC LIMIT ?"
        arguments.append((limit + 1).databaseValue)
        let rows = try await database.read { [arguments] db in
            try RunRecord.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
        }
        return ListCursor.page(of: rows, limit: limit)
    }

    // MARK: Lifetime

    /// Checkpoints the WAL into the database file and truncates it.
    package func checkpoint() async throws {
        try await database.writeWithoutTransaction { db in
            _ = try db.checkpoint(.truncate)
        }
    }

    /// Checkpoints and closes every connection, leaving the database file alone.
    package func close() async throws {
        try await checkpoint()
        try database.close()
        // SQLite removes the WAL and shared-memory files when its last connection closes, if
        // that connection may write. A pool closes its writer first and its read-only readers
        // last, so the files stay (GRDB issue 739): one more connection, alone now, removes them.
        if let path { try DatabaseQueue(path: path).close() }
    }
}
