/// What a verified token allows.
public struct AccessGrant: Sendable, Equatable {
    public var workspaces: Set<String>
    public var scopes: Set<AccessScope>
    /// When set, only this run (in the token's workspaces).
    public var run: String?
    /// Milliseconds since the epoch.
    public var expiresAt: Int64
    public var subject: String?

    public init(workspaces: Set<String>, scopes: Set<AccessScope>, run: String?, expiresAt: Int64, subject: String? = nil) {
        self.workspaces = workspaces
        self.scopes = scopes
        self.run = run
        self.expiresAt = expiresAt
        self.subject = subject
    }

    /// Whether the grant allows `scope` on a workspace, and on a run when the route names one
    /// (`run` nil: a workspace-wide route, which a run-scoped token may not use).
    public func allows(_ scope: AccessScope, workspace: String, run: String?) -> Bool {
        guard workspaces.contains(workspace) else { return false }
        guard scopes.contains(scope) || scopes.contains(.runsAdmin) else { return false }
        if let only = self.run { return run == only }
        return true
    }

    /// Whether the grant allows `scope` regardless of workspace (operator routes).
    public func allowsEverywhere(_ scope: AccessScope) -> Bool {
        scopes.contains(scope) || scopes.contains(.runsAdmin)
    }
}
