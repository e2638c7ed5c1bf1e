/// What a token lets its holder do in its workspaces.
package enum AccessScope: String, Sendable, CaseIterable, Codable {
    /// Create runs.
    case runsCreate = "runs:create"
    /// Append events to runs.
    case eventsAppend = "events:append"
    /// Read runs, summaries and events (streams included).
    case eventsRead = "events:read"
    /// Everything above, and operator routes such as `/metrics`.
    case runsAdmin = "runs:admin"
}
