/// One row of the `runs` table: a run's metadata, never its events.
package struct RunRecord: Codable, Sendable, Equatable {
    package var workspaceID: String
    package var id: String
    package var configurationID: String?
    package var status: RunStatus
    package var exitCode: Int?
    /// Milliseconds since the Unix epoch.
    package var createdAt: Int64
    package var startedAt: Int64?
    package var completedAt: Int64?
    /// Exact once the run is terminal; may lag by one progress interval while it is live.
    package var lastSequence: Int64
    package var eventCount: Int64
    package var byteSize: Int64
    package var errorCount: Int64
    /// The run's log directory relative to the storage root; nil once retention deleted the logs.
    package var eventsPath: String?
    /// The run summary (JSON, `runlog.run_summary/v1`).
    package var summary: String?
    /// The producer's metadata object (JSON).
    package var metadata: String?
    /// When retention gzipped the whole log (milliseconds since the epoch).
    package var logsCompressedAt: Int64?
    /// When retention deleted the log files.
    package var logsDeletedAt: Int64?

    package init(
        workspaceID: String, id: String, configurationID: String? = nil, status: RunStatus = .queued,
        createdAt: Int64, eventsPath: String?, metadata: String? = nil
    ) {
        self.workspaceID = workspaceID
        self.id = id
        self.configurationID = configurationID
        self.status = status
        self.exitCode = nil
        self.createdAt = createdAt
        self.startedAt = nil
        self.completedAt = nil
        self.lastSequence = 0
        self.eventCount = 0
        self.byteSize = 0
        self.errorCount = 0
        self.eventsPath = eventsPath
        self.summary = nil
        self.metadata = metadata
        self.logsCompressedAt = nil
        self.logsDeletedAt = nil
    }

    enum CodingKeys: String, CodingKey {
        case workspaceID = "workspace_id"
        case id
        case configurationID = "configuration_id"
        case status
        case exitCode = "exit_code"
        case createdAt = "created_at"
        case startedAt = "started_at"
        case completedAt = "completed_at"
        case lastSequence = "last_sequence"
        case eventCount = "event_count"
        case byteSize = "byte_size"
        case errorCount = "error_count"
        case eventsPath = "events_path"
        case summary
        case metadata
        case logsCompressedAt = "logs_compressed_at"
        case logsDeletedAt = "logs_deleted_at"
    }
}
