/// Why the catalog refused an operation.
public enum RunCatalogError: Error, Equatable, CustomStringConvertible {
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
public struct RunFilter: Sendable, Equatable {
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
public struct RunPage: Sendable, Equatable {
    public var items: [RunRecord]
    public var nextCursor: String?

    public init(items: [RunRecord], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// Progress of a live run, written in batches off the append path.
public struct RunProgress: Sendable, Equatable {
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

/// Where the logs of a finished run stand, for retention.
public enum RunLogState: Sendable {
    /// Present and not yet compressed whole.
    case awaitingCompression
    /// Present (compressed or not).
    case present
    /// Deleted by retention; the row remains.
    case deleted
}

/// The last row a retention scan saw, in (time, workspace, id) order.
public struct ScanPosition: Sendable, Equatable {
    public var time: Int64
    public var workspaceID: String
    public var id: String

    public init(time: Int64, workspaceID: String, id: String) {
        self.time = time
        self.workspaceID = workspaceID
        self.id = id
    }
}
