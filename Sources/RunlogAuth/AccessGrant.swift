/// What a verified token allows.
package struct AccessGrant: Sendable, Equatable {
    package var workspaces: Set<String>
    package var scopes: Set<AccessScope>
    /// When set, only this run (in the token's workspaces).
    package var run: String?
    /// Milliseconds since the epoch.
    package var expiresAt: Int64
    package var subject: String?

    package init(workspaces: Set<String>, scopes: Set<AccessScope>, run: String?, expiresAt: Int64, subject: String? = nil) {
        self.workspaces = workspaces
        self.scopes = scopes
        self.run = run
        self.expiresAt = expiresAt
        self.subject = subject
    }

    /// Whether the grant allows `scope` on a workspace, and on a run when the route names one
    /// (`run` nil: a workspace-wide route, which a run-scoped token may not use).
    package func allows(_ scope: AccessScope, workspace: String, run: String?) -> Bool {
        guard workspaces.contains(workspace) else { return false }
        guard scopes.contains(scope) || scopes.contains(.runsAdmin) else { return false }
        if let only = self.run { return run == only }
        return true
    }

    /// Whether the grant allows `scope` regardless of workspace (operator routes).
    package func allowsEverywhere(_ scope: AccessScope) -> Bool {
        scopes.contains(scope) || scopes.contains(.runsAdmin)
    }
}
