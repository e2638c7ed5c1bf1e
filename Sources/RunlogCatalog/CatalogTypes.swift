/// Why the catalog refused an operation.
package enum RunCatalogError: Error, Equatable, CustomStringConvertible {
    case runExists(workspace: String, run: String)
    case runNotFound(workspace: String, run: String)
    case invalidCursor
    /// The database could not write for want of space (the reason, for the server's log).
    case outOfSpace(String)
    /// The database cannot be reached or did not answer in time (the reason, for the server's
    /// log); trying again later can work.
    case unavailable(String)

    package var description: String {
        switch self {
        case .runExists(let workspace, let run): return "run \(workspace)/\(run) already exists"
        case .runNotFound(let workspace, let run): return "run \(workspace)/\(run) does not exist"
        case .invalidCursor: return "the cursor is not one this server issued"
        case .outOfSpace(let reason): return "the catalog has no space left: \(reason)"
        case .unavailable(let reason): return "the catalog is unavailable: \(reason)"
        }
    }
}

/// List filters, all optional. Times are milliseconds since the epoch.
package struct RunFilter: Sendable, Equatable {
    package var status: RunStatus?
    package var configurationID: String?
    package var createdAfter: Int64?
    package var createdBefore: Int64?

    package init(status: RunStatus? = nil, configurationID: String? = nil, createdAfter: Int64? = nil, createdBefore: Int64? = nil) {
        self.status = status
        self.configurationID = configurationID
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
    }
}

/// One page of a listing, newest first, and the cursor of the next page (nil at the end).
package struct RunPage: Sendable, Equatable {
    package var items: [RunRecord]
    package var nextCursor: String?

    package init(items: [RunRecord], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// Progress of a live run, written in batches off the append path.
package struct RunProgress: Sendable, Equatable {
    package var workspaceID: String
    package var runID: String
    package var lastSequence: Int64
    package var eventCount: Int64
    package var byteSize: Int64
    package var errorCount: Int64
    package var summary: String

    package init(workspaceID: String, runID: String, lastSequence: Int64, eventCount: Int64, byteSize: Int64, errorCount: Int64, summary: String) {
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
package enum RunLogState: Sendable {
    /// Present and not yet compressed whole.
    case awaitingCompression
    /// Present (compressed or not).
    case present
    /// Deleted by retention; the row remains.
    case deleted
}

/// The last row a retention scan saw, in (time, workspace, id) order.
package struct ScanPosition: Sendable, Equatable {
    package var time: Int64
    package var workspaceID: String
    package var id: String

    package init(time: Int64, workspaceID: String, id: String) {
        self.time = time
        self.workspaceID = workspaceID
        self.id = id
    }
}
