import GRDB

extension SQLiteRunCatalog {
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
}
