import Foundation
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

    let routes: RouteTable

    /// What a request needs.
    enum Requirement: Equatable {
        case open
        /// Any valid token: a path no route has gets its 404 only with one, and names no workspace.
        case anyToken
        /// `scopes` in `workspace` (and on `run`, for a run's routes).
        case workspace(String, run: String?, scopes: [AccessScope])
        /// An operator route.
        case everywhere(AccessScope)
    }

    /// What `request` needs, from the route it matched; on a path whose routes take other
    /// methods (a 405 to come), what the path's GET needs.
    static func requirement(of request: Request, context: Context, routes: RouteTable) -> Requirement {
        let access: RouteAccess
        let workspace: String?
        let run: String?
        if let endpoint = context.endpointPath, let route = routes.route(request.method, endpoint: endpoint) {
            access = route.access
            workspace = context.parameters.get(RouteTable.workspaceParameter)
            run = context.parameters.get(RouteTable.runParameter)
        } else if let path = routes.routes(onPath: request.uri.path) {
            access = (path.routes.first { $0.method == .get } ?? path.routes[0]).access
            (workspace, run) = (path.workspace, path.run)
        } else {
            return request.uri.path.hasPrefix("/v1/") ? .anyToken : .open
        }
        switch access {
        case .open:
            return .open
        case .everywhere(let scope):
            return .everywhere(scope)
        case .path(let scopes, let streaming):
            let streams = !streaming.isEmpty && request.uri.queryParameters.get("stream") == "true"
            return .workspace(workspace ?? "", run: run, scopes: streams ? scopes + streaming : scopes)
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requirement = Self.requirement(of: request, context: context, routes: routes)
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
        case .open, .anyToken: allowed = true
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
