import Logging
import PostgresNIO

/// The PostgreSQL schema, as named, append-only migrations (like the SQLite ones): a migration
/// once released is never edited; a change is a new one at the end.
enum PostgresSchema {
    /// The advisory lock key that makes one node at a time migrate ("runlog" in ASCII).
    static let migrationLock: Int64 = 0x72_75_6E_6C_6F_67

    /// Each migration: its name, recorded in `runlog_migrations` once applied, and its statements.
    static let migrations: [(name: String, statements: [String])] = [
        (
            "v1: runs",
            [
                // Identifiers compare by bytes (COLLATE "C"), as in SQLite: the keyset order, and
                // so every cursor, is the same whichever backend issued it.
                """
                CREATE TABLE runs (
                    workspace_id text COLLATE "C" NOT NULL,
                    id text COLLATE "C" NOT NULL,
                    configuration_id text COLLATE "C",
                    status text NOT NULL,
                    exit_code bigint,
                    created_at bigint NOT NULL,
                    started_at bigint,
                    completed_at bigint,
                    last_sequence bigint NOT NULL DEFAULT 0,
                    event_count bigint NOT NULL DEFAULT 0,
                    byte_size bigint NOT NULL DEFAULT 0,
                    error_count bigint NOT NULL DEFAULT 0,
                    events_path text,
                    summary text,
                    metadata text,
                    logs_compressed_at bigint,
                    logs_deleted_at bigint,
                    PRIMARY KEY (workspace_id, id)
                )
                """,
                // Keyset pagination, newest first: each filter has an index ending (created_at, id).
                "CREATE INDEX runs_by_created ON runs (workspace_id, created_at DESC, id DESC)",
                "CREATE INDEX runs_by_status ON runs (workspace_id, status, created_at DESC, id DESC)",
                "CREATE INDEX runs_by_configuration ON runs (workspace_id, configuration_id, created_at DESC, id DESC)",
                // Reconciliation at start reads the live runs only.
                "CREATE INDEX runs_live ON runs (workspace_id, id) WHERE status IN ('queued', 'running')",
                // Retention scans, oldest first; each WHERE matches one query's exactly (partial indexes).
                """
                CREATE INDEX runs_awaiting_compression ON runs (completed_at, workspace_id, id)
                    WHERE completed_at IS NOT NULL AND logs_compressed_at IS NULL AND logs_deleted_at IS NULL
                """,
                """
                CREATE INDEX runs_with_logs_by_completion ON runs (completed_at, workspace_id, id)
                    WHERE completed_at IS NOT NULL AND logs_deleted_at IS NULL
                """,
                """
                CREATE INDEX runs_without_logs_by_completion ON runs (completed_at, workspace_id, id)
                    WHERE completed_at IS NOT NULL AND logs_deleted_at IS NOT NULL
                """,
                "CREATE INDEX runs_live_by_creation ON runs (created_at, workspace_id, id) WHERE completed_at IS NULL",
            ]
        ),
    ]

    /// Applies the migrations not yet applied, in one transaction holding the migration lock:
    /// nodes starting together migrate one after the other, and the later ones find nothing to do.
    /// Returns the names it applied.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> [String] {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS runlog_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                logger: logger
            )
            var applied = Set<String>()
            for try await name in try await connection.query("SELECT name FROM runlog_migrations", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            var done: [String] = []
            for migration in migrations where !applied.contains(migration.name) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO runlog_migrations (name) VALUES (\(migration.name))", logger: logger)
                done.append(migration.name)
            }
            return done
        }
    }
}
