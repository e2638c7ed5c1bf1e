import HTTPTypes
import Hummingbird
import NIOCore
import RunlogAuth

/// What a route asks of a request's token.
enum RouteAccess: Sendable, Equatable {
    /// No token.
    case open
    /// A scope held in every workspace: an operator's route.
    case everywhere(AccessScope)
    /// `scopes` in the workspace the path names (and on its run, where it names one), and
    /// `streaming` as well when the request asks for a stream (`stream=true`).
    case path([AccessScope], streaming: [AccessScope] = [])
}

/// One route: method, path, what it needs of a token, and its handler.
struct Route: Sendable {
    let method: HTTPRequest.Method
    /// The path, `{ws}` and `{run}` standing for the workspace and run ids (as in `openapi.yaml`).
    let path: String
    let access: RouteAccess
    let handler: @Sendable (Gateway, Request, GatewayRequestContext) async throws -> Response

    init(
        _ method: HTTPRequest.Method, _ path: String, _ access: RouteAccess,
        _ handler: @escaping @Sendable (Gateway, Request, GatewayRequestContext) async throws -> Response
    ) {
        self.method = method
        self.path = path
        self.access = access
        self.handler = handler
    }
}

extension Gateway {
    /// Every route the gateway serves, each declared once: the router, the `Allow` of a 405,
    /// the access check, the request log's ids and the OpenAPI test all read this table.
    static let routes = RouteTable([
        Route(.get, "/healthz", .open) { gateway, _, _ in try await gateway.health() },
        Route(.get, "/metrics", .everywhere(.runsAdmin)) { gateway, _, _ in gateway.metricsText() },
        Route(.get, "/openapi.yaml", .open) { _, _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: openAPIDocument)))
        },
        Route(.get, "/runlog.js", .open) { _, _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: browserClient)))
        },
        Route(.get, "/", .open) { _, _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: ViewerPage.html)))
        },
        Route(.post, "/v1/workspaces/{ws}/runs", .path([.runsCreate], streaming: [.eventsRead])) { try await $0.createRun($1, $2) },
        Route(.get, "/v1/workspaces/{ws}/runs", .path([.eventsRead])) { try await $0.listRuns($1, $2) },
        Route(.get, "/v1/workspaces/{ws}/runs/{run}", .path([.eventsRead])) { gateway, _, context in try await gateway.getRun(context) },
        Route(.get, "/v1/workspaces/{ws}/runs/{run}/summary", .path([.eventsRead])) { gateway, _, context in try await gateway.summary(context) },
        Route(.post, "/v1/workspaces/{ws}/runs/{run}/events", .path([.eventsAppend])) { try await $0.append($1, $2) },
        Route(.get, "/v1/workspaces/{ws}/runs/{run}/events", .path([.eventsRead])) { try await $0.read($1, $2) },
    ])
}

/// The gateway's routes, and what the middlewares ask of them.
struct RouteTable: Sendable {
    let routes: [Route]
    /// By `"<method> <path>"`: Hummingbird names a matched route by its path as declared.
    private let byEndpoint: [String: Route]
    /// Each path once, split, with its routes.
    private let paths: [(segments: [Substring], routes: [Route])]

    /// The parameters a path names.
    static let workspaceParameter = "ws"
    static let runParameter = "run"

    init(_ routes: [Route]) {
        self.routes = routes
        byEndpoint = Dictionary(uniqueKeysWithValues: routes.map { ("\($0.method.rawValue) \($0.path)", $0) })
        var paths: [(segments: [Substring], routes: [Route])] = []
        for route in routes {
            if let index = paths.firstIndex(where: { $0.routes[0].path == route.path }) {
                paths[index].routes.append(route)
            } else {
                paths.append((route.path.split(separator: "/"), [route]))
            }
        }
        self.paths = paths
    }

    /// Adds every route to `router`, each calling its handler on `gateway`.
    func register(on router: Router<GatewayRequestContext>, for gateway: Gateway) {
        for route in routes {
            let handler = route.handler
            router.on(RouterPath(route.path), method: route.method) { request, context in try await handler(gateway, request, context) }
        }
    }

    /// The route the router matched, by the endpoint path it reports.
    func route(_ method: HTTPRequest.Method, endpoint: String) -> Route? {
        byEndpoint["\(method.rawValue) \(endpoint)"]
    }

    /// For a path the router matched with no route for its method: the routes on that path,
    /// and the workspace and run ids it names. Nil for a path no route has.
    func routes(onPath path: String) -> (routes: [Route], workspace: String?, run: String?)? {
        let parts = path.split(separator: "/")
        for candidate in paths where candidate.segments.count == parts.count {
            var workspace: String?
            var run: String?
            var matches = true
            for (segment, part) in zip(candidate.segments, parts) {
                switch segment {
                case "{\(Self.workspaceParameter)}": workspace = String(part)
                case "{\(Self.runParameter)}": run = String(part)
                default: matches = segment == part
                }
                if !matches { break }
            }
            if matches { return (candidate.routes, workspace, run) }
        }
        return nil
    }
}
