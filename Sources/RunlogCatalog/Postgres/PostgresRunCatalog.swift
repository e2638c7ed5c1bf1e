package import Logging
import PostgresNIO
import Synchronization

/// The catalog in PostgreSQL, for several nodes sharing one store: the same table, indexes and
/// meaning as ``SQLiteRunCatalog``, over postgres-nio's bounded connection pool.
///
/// Every operation has a deadline (`timeout`): while the server is down the pool keeps
/// reconnecting in the background, and a caller gets ``RunCatalogError/unavailable(_:)`` rather
/// than waiting for it. Nothing here needs restarting when the server returns.
package final class PostgresRunCatalog: RunCatalog {
    package let location: PostgresLocation
    let client: PostgresClient
    let logger: Logger
    /// How long one operation may take, the wait for a connection included.
    let timeout: Duration
    private let pool: Task<Void, Never>

    /// Connects to `location` (failing with the reason when it cannot: unreachable, refused,
    /// unknown database), applies pending migrations, and starts the pool of at most
    /// `maximumConnections`.
    package static func open(
        _ location: PostgresLocation, logger: Logger, timeout: Duration = .seconds(5), maximumConnections: Int = 10
    ) async throws -> PostgresRunCatalog {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: location.connectionConfiguration(connectTimeout: timeout), id: 0, logger: logger
            )
            do {
                let applied = try await PostgresSchema.migrate(connection, logger: logger)
                if !applied.isEmpty { logger.info("migrated the catalog", metadata: ["catalog": "\(location)", "migrations": "\(applied)"]) }
                try await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        } catch {
            throw PostgresFailure.map(error)
        }
        let client = PostgresClient(
            configuration: location.clientConfiguration(connectTimeout: timeout, maximumConnections: maximumConnections), backgroundLogger: logger
        )
        return PostgresRunCatalog(location: location, client: client, logger: logger, timeout: timeout)
    }

    private init(location: PostgresLocation, client: PostgresClient, logger: Logger, timeout: Duration) {
        self.location = location
        self.client = client
        self.logger = logger
        self.timeout = timeout
        self.pool = Task { await client.run() }
    }

    /// Runs `body` with the pool under the deadline, its errors told as the catalog's.
    ///
    /// Why not a task group: a group waits for all its children before it returns, and a query
    /// on a connection to a frozen server (SIGSTOPped, or a network path that drops packets)
    /// neither answers nor notices cancellation until TCP gives up, minutes later. So the work
    /// runs in a task of its own that the caller stops waiting for at the deadline; it is
    /// cancelled, and ends when its connection does. The pool's bound caps how many such
    /// stragglers there can be: once all connections are stuck, new operations time out waiting
    /// for one, which costs nothing.
    @discardableResult
    func perform<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = self.client
        let timeout = self.timeout
        let work = Task { try await body(client) }
        let deadline = Task { try await Task.sleep(for: timeout) }
        let outcome: Result<T, any Error> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let once = ResumeOnce(continuation)
                Task {
                    let result = await work.result
                    deadline.cancel()
                    once.resume(result)
                }
                Task {
                    // Cancelled (the work finished first, or the caller left): nothing to say.
                    guard case .success = await deadline.result else { return }
                    work.cancel()
                    once.resume(.failure(RunCatalogError.unavailable("PostgreSQL did not answer within \(timeout)")))
                }
            }
        } onCancel: {
            work.cancel()
        }
        do {
            return try outcome.get()
        } catch {
            throw PostgresFailure.map(error)
        }
    }

    /// Runs `body` in a transaction under the deadline.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await perform { [logger] client in
            try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    /// The rows `query` returns, as records.
    func records(_ query: PostgresQuery) async throws -> [RunRecord] {
        try await perform { [logger] client in
            var records: [RunRecord] = []
            for try await row in try await client.query(query, logger: logger) {
                records.append(try RunRecord(row))
            }
            return records
        }
    }

    // MARK: Runs

    package func create(_ record: RunRecord) async throws {
        do {
            try await perform { [logger] client in
                try await client.query(
                    """
                    INSERT INTO runs (\(unescaped: RunRecord.postgresColumns)) VALUES (\(record.workspaceID), \(record.id), \(record.configurationID),
                        \(record.status.rawValue), \(record.exitCode), \(record.createdAt), \(record.startedAt), \(record.completedAt),
                        \(record.lastSequence), \(record.eventCount), \(record.byteSize), \(record.errorCount), \(record.eventsPath),
                        \(record.summary), \(record.metadata), \(record.logsCompressedAt), \(record.logsDeletedAt))
                    """,
                    logger: logger
                )
            }
        } catch let error as PostgresServerError where error.sqlState == "23505" {
            throw RunCatalogError.runExists(workspace: record.workspaceID, run: record.id)
        }
    }

    package func run(workspace: String, id: String) async throws -> RunRecord? {
        try await records("SELECT \(unescaped: RunRecord.postgresColumns) FROM runs WHERE workspace_id = \(workspace) AND id = \(id)").first
    }

    @discardableResult
    package func update(workspace: String, id: String, _ change: @escaping @Sendable (inout RunRecord) throws -> Void) async throws -> RunRecord {
        try await transaction { [logger] connection in
            let rows = try await connection.query(
                "SELECT \(unescaped: RunRecord.postgresColumns) FROM runs WHERE workspace_id = \(workspace) AND id = \(id) FOR UPDATE", logger: logger
            ).collect()
            guard let row = rows.first else { throw RunCatalogError.runNotFound(workspace: workspace, run: id) }
            var record = try RunRecord(row)
            try change(&record)
            try await connection.query(
                """
                UPDATE runs SET configuration_id = \(record.configurationID), status = \(record.status.rawValue), exit_code = \(record.exitCode),
                    created_at = \(record.createdAt), started_at = \(record.startedAt), completed_at = \(record.completedAt),
                    last_sequence = \(record.lastSequence), event_count = \(record.eventCount), byte_size = \(record.byteSize),
                    error_count = \(record.errorCount), events_path = \(record.eventsPath), summary = \(record.summary), metadata = \(record.metadata),
                    logs_compressed_at = \(record.logsCompressedAt), logs_deleted_at = \(record.logsDeletedAt)
                WHERE workspace_id = \(workspace) AND id = \(id)
                """,
                logger: logger
            )
            return record
        }
    }

    package func record(_ progress: [RunProgress]) async throws {
        guard !progress.isEmpty else { return }
        // One statement for the whole batch: the rows travel as parallel arrays.
        try await perform { [logger] client in
            try await client.query(
                """
                UPDATE runs AS r SET last_sequence = p.last_sequence, event_count = p.event_count, byte_size = p.byte_size,
                    error_count = p.error_count, summary = p.summary
                FROM unnest(\(progress.map(\.workspaceID))::text[], \(progress.map(\.runID))::text[], \(progress.map(\.lastSequence))::bigint[],
                    \(progress.map(\.eventCount))::bigint[], \(progress.map(\.byteSize))::bigint[], \(progress.map(\.errorCount))::bigint[],
                    \(progress.map(\.summary))::text[]) AS p(workspace_id, id, last_sequence, event_count, byte_size, error_count, summary)
                WHERE r.workspace_id = p.workspace_id AND r.id = p.id AND r.status IN ('queued', 'running')
                """,
                logger: logger
            )
        }
    }

    package func liveRuns() async throws -> [RunRecord] {
        try await records("SELECT \(unescaped: RunRecord.postgresColumns) FROM runs WHERE status IN ('queued', 'running')")
    }

    package func allRuns(after last: (workspace: String, id: String)?, size: Int) async throws -> [RunRecord] {
        if let last {
            return try await records(
                """
                SELECT \(unescaped: RunRecord.postgresColumns) FROM runs WHERE (workspace_id, id) > (\(last.workspace), \(last.id))
                ORDER BY workspace_id, id LIMIT \(size)
                """
            )
        }
        return try await records("SELECT \(unescaped: RunRecord.postgresColumns) FROM runs ORDER BY workspace_id, id LIMIT \(size)")
    }

    // MARK: Listing

    package func list(workspace: String, filter: RunFilter, limit: Int, cursor: String?) async throws -> RunPage {
        let position = try cursor.map { text throws(RunCatalogError) in try ListCursor(text) }
        return ListCursor.page(of: try await records(Self.listQuery(workspace: workspace, filter: filter, limit: limit, after: position)), limit: limit)
    }

    /// The listing's query: the conditions of the SQLite one, `limit + 1` rows.
    static func listQuery(workspace: String, filter: RunFilter, limit: Int, after position: ListCursor?) -> PostgresQuery {
        var query = PostgresQueryBuilder("SELECT \(RunRecord.postgresColumns) FROM runs WHERE workspace_id = ")
        query.bind(workspace)
        if let status = filter.status {
            query.append(" AND status = ")
            query.bind(status.rawValue)
        }
        if let configurationID = filter.configurationID {
            query.append(" AND configuration_id = ")
            query.bind(configurationID)
        }
        if let createdAfter = filter.createdAfter {
            query.append(" AND created_at > ")
            query.bind(createdAfter)
        }
        if let createdBefore = filter.createdBefore {
            query.append(" AND created_at < ")
            query.bind(createdBefore)
        }
        if let position {
            query.append(" AND (created_at, id) < ")
            query.bindRow([position.createdAt, position.id])
        }
        query.append(" ORDER BY created_at DESC, id DESC LIMIT ")
        query.bind(Int64(limit + 1))
        return query.query
    }

    // MARK: Lifetime

    /// Stops the pool, closing its connections.
    package func close() async throws {
        pool.cancel()
        await pool.value
    }
}

/// A continuation resumed by whichever of two racers comes first.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Result<T, any Error>, Never>?>

    init(_ continuation: CheckedContinuation<Result<T, any Error>, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ result: Result<T, any Error>) {
        continuation.withLock { pending in
            pending?.resume(returning: result)
            pending = nil
        }
    }
}

/// SQL put together piece by piece, each value a `$n` parameter.
struct PostgresQueryBuilder {
    private var sql: String
    private var bindings = PostgresBindings()

    init(_ sql: String) { self.sql = sql }

    mutating func append(_ text: String) { sql += text }

    mutating func bind(_ value: some PostgresDynamicTypeEncodable) {
        bindings.append(value)
        sql += "$\(bindings.count)"
    }

    /// Binds `values` as a row, `($n, $n+1, …)`, for a keyset comparison.
    mutating func bindRow(_ values: [any PostgresDynamicTypeEncodable]) {
        sql += "("
        for (index, value) in values.enumerated() {
            if index > 0 { sql += ", " }
            bind(value)
        }
        sql += ")"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: bindings) }
}
