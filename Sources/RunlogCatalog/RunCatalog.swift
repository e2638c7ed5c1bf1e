import Foundation
import GRDB
import Logging

/// Run metadata in SQLite (WAL): what run lists, run pages and the summary API read.
///
/// The catalog holds one row per run and never an event, so its size grows with runs, not
/// with events. It knows nothing of log files: `events_path` is just a string to it.
public final class RunCatalog: Sendable {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case runExists(workspace: String, run: String)
        case runNotFound(workspace: String, run: String)
        case invalidCursor

        public var description: String {
            switch self {
            case .runExists(let workspace, let run): return "run \(workspace)/\(run) already exists"
            case .runNotFound(let workspace, let run): return "run \(workspace)/\(run) does not exist"
            case .invalidCursor: return "the cursor is not one this server issued"
            }
        }
    }

    /// List filters, all optional. Times are milliseconds since the epoch.
    public struct Filter: Sendable, Equatable {
        public var status: RunStatus?
        public var configurationID: String?
        public var createdAfter: Int64?
        public var createdBefore: Int64?

        public init(status: RunStatus? = nil, configurationID: String? = nil, createdAfter: Int64? = nil, createdBefore: Int64? = nil) {
            self.status = status
            self.configurationID = configurationID
            self.createdAfter = createdAfter
            self.createdBefore = createdBefore
        }
    }

    /// One page of a listing, newest first, and the cursor of the next page (nil at the end).
    public struct Page: Sendable, Equatable {
        public var items: [RunRecord]
        public var nextCursor: String?
    }

    /// Progress of a live run, written in batches off the append path.
    public struct Progress: Sendable, Equatable {
        public var workspaceID: String
        public var runID: String
        public var lastSequence: Int64
        public var eventCount: Int64
        public var byteSize: Int64
        public var errorCount: Int64
        public var summary: String

        public init(workspaceID: String, runID: String, lastSequence: Int64, eventCount: Int64, byteSize: Int64, errorCount: Int64, summary: String) {
            self.workspaceID = workspaceID
            self.runID = runID
            self.lastSequence = lastSequence
            self.eventCount = eventCount
            self.byteSize = byteSize
            self.errorCount = errorCount
            self.summary = summary
        }
    }

    let database: DatabasePool

    /// Opens (creating and migrating) the catalog at `path`.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
    }

    /// The schema, as named, append-only migrations.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: runs") { db in
            try db.create(table: "runs") { table in
                table.column("workspace_id", .text).notNull()
                table.column("id", .text).notNull()
                table.column("configuration_id", .text)
                table.column("status", .text).notNull()
                table.column("exit_code", .integer)
                table.column("created_at", .integer).notNull()
                table.column("started_at", .integer)
                table.column("completed_at", .integer)
                table.column("last_sequence", .integer).notNull().defaults(to: 0)
                table.column("event_count", .integer).notNull().defaults(to: 0)
                table.column("byte_size", .integer).notNull().defaults(to: 0)
                table.column("error_count", .integer).notNull().defaults(to: 0)
                table.column("events_path", .text)
                table.column("summary", .text)
                table.column("metadata", .text)
                table.column("logs_deleted_at", .integer)
                table.primaryKey(["workspace_id", "id"])
            }
            // Keyset pagination, newest first: each filter has an index ending (created_at, id).
            try db.execute(sql: """
                CREATE INDEX runs_by_created ON runs (workspace_id, created_at DESC, id DESC);
                CREATE INDEX runs_by_status ON runs (workspace_id, status, created_at DESC, id DESC);
                CREATE INDEX runs_by_configuration ON runs (workspace_id, configuration_id, created_at DESC, id DESC);
                """)
        }
        migrator.registerMigration("v2: retention") { db in
            try db.alter(table: "runs") { table in
                table.add(column: "logs_compressed_at", .integer)
            }
            // `events_path` now names the run's log directory: the files in it change names as
            // segments rotate and are compressed, the directory stays until retention deletes it.
            try db.execute(sql: """
                UPDATE runs SET events_path = substr(events_path, 1, length(events_path) - length('/events.ndjson'))
                WHERE events_path LIKE '%/events.ndjson'
                """)
            // Retention scans, oldest first; each WHERE matches one query's exactly (partial indexes).
            try db.execute(sql: """
                CREATE INDEX runs_awaiting_compression ON runs (completed_at, workspace_id, id)
                    WHERE completed_at IS NOT NULL AND logs_compressed_at IS NULL AND logs_deleted_at IS NULL;
                CREATE INDEX runs_with_logs_by_completion ON runs (completed_at, workspace_id, id)
                    WHERE completed_at IS NOT NULL AND logs_deleted_at IS NULL;
                CREATE INDEX runs_without_logs_by_completion ON runs (completed_at, workspace_id, id)
                    WHERE completed_at IS NOT NULL AND logs_deleted_at IS NOT NULL;
                CREATE INDEX runs_live_by_creation ON runs (created_at, workspace_id, id)
                    WHERE completed_at IS NULL;
                """)
        }
        return migrator
    }

    // MARK: Runs

    /// Inserts a new run; fails with ``Error/runExists(workspace:run:)`` if its id is taken.
    public func create(_ record: RunRecord) async throws {
        try await database.write { db in
            do {
                try record.insert(db)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw Error.runExists(workspace: record.workspaceID, run: record.id)
            }
        }
    }

    public func run(workspace: String, id: String) async throws -> RunRecord? {
        try await database.read { db in try RunRecord.fetchOne(db, key: ["workspace_id": workspace, "id": id]) }
    }

    /// Changes a run with `change`, in one transaction; fails if the run does not exist.
    @discardableResult
    public func update(workspace: String, id: String, _ change: @escaping @Sendable (inout RunRecord) throws -> Void) async throws -> RunRecord {
        try await database.write { db in
            guard var record = try RunRecord.fetchOne(db, key: ["workspace_id": workspace, "id": id]) else {
                throw Error.runNotFound(workspace: workspace, run: id)
            }
            try change(&record)
            try record.update(db)
            return record
        }
    }

    /// Writes the progress of many live runs in one transaction. Rows of runs that became
    /// terminal meanwhile are left alone (their completion wrote exact figures).
    public func record(_ progress: [Progress]) async throws {
        guard !progress.isEmpty else { return }
        try await database.write { db in
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

    /// Runs that are not terminal, across workspaces (for reconciliation at start-up).
    public func liveRuns() async throws -> [RunRecord] {
        try await database.read { db in
            try RunRecord.filter(sql: "status IN ('queued', 'running')").fetchAll(db)
        }
    }

    /// Every run, in pages of `size`, in primary-key order (for verification).
    public func allRuns(after last: (workspace: String, id: String)?, size: Int) async throws -> [RunRecord] {
        try await database.read { db in
            if let last {
                return try RunRecord.filter(sql: "(workspace_id, id) > (?, ?)", arguments: [last.workspace, last.id])
                    .order(sql: "workspace_id, id").limit(size).fetchAll(db)
            }
            return try RunRecord.order(sql: "workspace_id, id").limit(size).fetchAll(db)
        }
    }

    // MARK: Listing

    /// Runs of a workspace, newest first (ties on `created_at` broken by id), `limit` at a time.
    /// Pagination is by keyset: the cursor names the last row seen, so deep pages cost what the
    /// first one does.
    public func list(workspace: String, filter: Filter = Filter(), limit: Int, cursor: String? = nil) async throws -> Page {
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
            let position = try Self.decode(cursor)
            conditions.append("(created_at, id) < (?, ?)")
            arguments.append(position.createdAt.databaseValue)
            arguments.append(position.id.databaseValue)
        }
        let sql = "SELECT * FROM runs WHERE \(conditions.joined(separator: " AND ")) ORDER BY created_at DESC, id DESC LIMIT ?"
        arguments.append((limit + 1).databaseValue)
        let rows = try await database.read { [arguments] db in
            try RunRecord.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
        }
        let items = Array(rows.prefix(limit))
        let next = rows.count > limit ? items.last.map { Self.encode(createdAt: $0.createdAt, id: $0.id) } : nil
        return Page(items: items, nextCursor: next)
    }

    static func encode(createdAt: Int64, id: String) -> String {
        Data("\(createdAt):\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ cursor: String) throws -> (createdAt: Int64, id: String) {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
            let colon = text.firstIndex(of: ":"), let createdAt = Int64(text[..<colon])
        else { throw Error.invalidCursor }
        return (createdAt, String(text[text.index(after: colon)...]))
    }

    // MARK: Maintenance

    /// Checkpoints the WAL into the database file and truncates it.
    public func checkpoint() async throws {
        try await database.writeWithoutTransaction { db in
            _ = try db.checkpoint(.truncate)
        }
    }

    public func close() throws {
        try database.close()
    }
}
