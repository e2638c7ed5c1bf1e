import HTTPTypes
import Hummingbird
import RunlogAuth

/// Checks the token of every `/v1` request (and `/metrics`) before anything is looked up, so
/// a refused request learns nothing about the workspace it named.
///
/// The token comes as `Authorization: Bearer …`, else the `access_token` query parameter
/// (`EventSource` cannot set headers), else the `runlog_token` cookie. Missing or invalid: 401
/// with `WWW-Authenticate`. Valid but not for this workspace, run or scope: 403.
struct AccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let authority: TokenAuthority

    /// What a route needs.
    enum Requirement: Equatable {
        case open
        /// `scopes` in `workspace` (and on `run`, for a run's routes).
        case workspace(String, run: String?, scopes: [AccessScope])
        /// An operator route.
        case everywhere(AccessScope)
    }

    static func requirement(method: HTTPRequest.Method, path: String, query: String?) -> Requirement {
        let parts = path.split(separator: "/").map(String.init)
        if parts == ["metrics"] { return .everywhere(.runsAdmin) }
        guard parts.count >= 4, parts[0] == "v1", parts[1] == "workspaces", parts[3] == "runs" else {
            // Public routes (health, the OpenAPI document, the viewer page); other /v1 paths are 404s
            // that name no workspace.
            return parts.first == "v1" && parts.count >= 3 ? .workspace(parts[2], run: nil, scopes: [.runsAdmin]) : .open
        }
        let workspace = parts[2]
        let run = parts.count >= 5 ? parts[4] : nil
        switch (method, parts.count, parts.last) {
        case (.post, 4, _):
            let streams = query?.split(separator: "&").contains("stream=true") ?? false
            return .workspace(workspace, run: nil, scopes: streams ? [.runsCreate, .eventsRead] : [.runsCreate])
        case (.post, 6, "events"?):
            return .workspace(workspace, run: run, scopes: [.eventsAppend])
        default:
            // Every read (and every unknown method, which then gets its 405 only once allowed to read).
            return .workspace(workspace, run: run, scopes: [.eventsRead])
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requirement = Self.requirement(method: request.method, path: request.uri.path, query: request.uri.query)
        if requirement == .open || request.method == .options { return try await next(request, context) }
        guard let token = Self.token(in: request) else {
            throw Self.unauthorized("a token is required: Authorization: Bearer <token>, or ?access_token= for EventSource", error: nil)
        }
        let grant: AccessGrant
        do {
            grant = try await authority.verify(token)
        } catch {
            throw Self.unauthorized(error.description, error: "invalid_token")
        }
        let allowed: Bool
        switch requirement {
        case .open: allowed = true
        case .workspace(let workspace, let run, let scopes): allowed = scopes.allSatisfy { grant.allows($0, workspace: workspace, run: run) }
        case .everywhere(let scope): allowed = grant.allowsEverywhere(scope)
        }
        guard allowed else {
            throw Problem(.forbidden, "forbidden", "Forbidden", detail: "the token does not allow this request")
        }
        return try await AccessGrant.$current.withValue(grant) { try await next(request, context) }
    }

    static func token(in request: Request) -> String? {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingCharacters(in: .whitespaces) }
        }
        if let token = request.uri.queryParameters.get("access_token"), !token.isEmpty { return token }
        for cookie in request.headers[values: .cookie].flatMap({ $0.split(separator: ";") }) {
            let pair = cookie.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == "runlog_token" { return String(pair[1]) }
        }
        return nil
    }

    static func unauthorized(_ detail: String, error: String?) -> Problem {
        var problem = Problem(.unauthorized, "unauthorized", "Unauthorized", detail: detail)
        var challenge = #"Bearer realm="runlog""#
        if let error { challenge += #", error="\#(error)""# }
        problem.extraHeaders[.wwwAuthenticate] = challenge
        return problem
    }
}

extension AccessGrant {
    /// The grant of the request being handled (nil when access control is off).
    @TaskLocal static var current: AccessGrant?
}
