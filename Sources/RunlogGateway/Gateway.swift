import Foundation
import HTTPTypes
package import Hummingbird
import HummingbirdCore
package import Logging
import NIOCore
import RunlogAuth
import RunlogCatalog
package import RunlogRuns
import RunlogStorage
import ServiceLifecycle

/// The HTTP gateway: the contract's routes over a ``RunService``.
package struct Gateway: Sendable {
    package let runs: RunService
    package let configuration: GatewayConfiguration
    package let metrics: GatewayMetrics
    let logger: Logger
    /// Heartbeats and token expiries of every live stream, from one timer.
    let alarms: StreamAlarms
    /// New events for caught-up live streams, read once per run and written from the event loops.
    let feeds: LiveFeeds

    package init(runs: RunService, configuration: GatewayConfiguration, logger: Logger, metrics: GatewayMetrics = GatewayMetrics()) {
        self.runs = runs
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.alarms = StreamAlarms(period: min(.milliseconds(100), configuration.heartbeatInterval / 2))
        self.feeds = LiveFeeds(runs: runs, logger: logger, metrics: metrics)
    }

    /// What an event stream takes from the gateway.
    var streamServices: EventStreamer.Services {
        EventStreamer.Services(runs: runs, configuration: configuration, metrics: metrics, alarms: alarms, feeds: feeds, logger: logger)
    }

    /// The version operational logs and `/healthz` report.
    package static let version = "0.6.0-dev"

    package func makeRouter() -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        // Outermost first. CORS headers go on every response, errors included: below them the
        // request log turns every error into its response (a problem, or a 500 problem).
        if !configuration.corsOrigins.isEmpty { router.add(middleware: CORSMiddleware(origins: Set(configuration.corsOrigins))) }
        router.add(middleware: RequestLogMiddleware(logger: logger, routes: Self.routes))
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: ProblemMiddleware(routes: Self.routes))
        if let authority = configuration.accessControl { router.add(middleware: AccessMiddleware(authority: authority, routes: Self.routes)) }
        Self.routes.register(on: router, for: self)
        return router
    }

    /// The application to run as a service (with the store and the run service beside it).
    package func makeApplication() -> some ApplicationProtocol {
        Application(
            router: makeRouter(),
            server: ConnectionLayer.http1(
                logger: logger, metrics: metrics, maxHeaderBytes: configuration.maxHeaderBytes, requestTimeout: configuration.requestTimeout
            ),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "runlog"),
            logger: logger
        )
    }

    /// The OpenAPI document (the package resource `docs/openapi.yaml` links to), read once.
    package static let openAPIDocument = resource(
        "openapi", "yaml", orElse: "openapi: 3.1.0\ninfo: {title: Runlog, version: unknown, description: the bundled document is missing}\npaths: {}\n"
    )

    /// The browser client (the package resource `clients/js/runlog.js` links to), read once.
    package static let browserClient = resource("runlog", "js", orElse: "throw new Error(\"runlog.js is missing from this build\");\n")

    /// A file of the package's resources, or `fallback` when the build lacks it.
    private static func resource(_ name: String, _ type: String, orElse fallback: String) -> [UInt8] {
        guard let url = Bundle.module.url(forResource: name, withExtension: type), let data = try? Data(contentsOf: url) else {
            return Array(fallback.utf8)
        }
        return Array(data)
    }

    // MARK: Routes

    func metricsText() -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: metrics.text(openLogs: runs.openLogs))))
    }

    func health() async throws -> Response {
        // Can append and read: the storage root accepts a probe log, and the catalog answers.
        do {
            try await runs.checkHealth()
        } catch {
            // Whatever failed, the node cannot take appends: 503, so that balancers route around it.
            let failure = Problem.from(error)
            throw Problem(.serviceUnavailable, "unhealthy", "Unhealthy", detail: failure.detail, cause: failure.cause ?? failure.detail)
        }
        return json(.ok, #"{"status":"ok"}"#)
    }

    func createRun(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let workspace = try workspaceID(context)
        // The stream's parameters are checked before anything is created.
        let streams = try EventQuery.flag(request.uri.queryParameters.get("stream"), "stream")
        let types = try request.uri.queryParameters.get("types").map(TypeFilter.init)
        let body = try await collect(request.body, limit: 1 << 20)
        var runID: String?
        var configurationID: String?
        var metadata: String?
        if body.readableBytes > 0 {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] else {
                throw Problem(.badRequest, "invalid-body", "Invalid body", detail: "the body must be a JSON object")
            }
            for key in object.keys where !["run_id", "configuration_id", "metadata"].contains(key) {
                throw Problem(.badRequest, "invalid-body", "Invalid body", detail: "unknown field '\(key)'")
            }
            runID = try Self.optionalString(object["run_id"], "run_id")
            configurationID = try Self.optionalString(object["configuration_id"], "configuration_id")
            if let value = object["metadata"], !(value is NSNull) {
                guard value is [String: Any] else {
                    throw Problem(.badRequest, "invalid-body", "Invalid body", detail: "metadata must be an object")
                }
                metadata = String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
            }
        }
        let record = try await runs.createRun(workspace: workspace, runID: runID, configurationID: configurationID, metadata: metadata)
        if streams {
            let key = try runs.key(workspace: workspace, run: record.id)
            var response = try eventStream(request, key: key, query: EventQuery(format: .sse, after: 0, limit: nil, types: types, follow: false), connection: context.connection)
            // A generated id is known only here: the Location, and the stream's first comment, tell it.
            response.headers[.location] = "/v1/workspaces/\(workspace)/runs/\(record.id)"
            return response
        }
        var response = json(.created, JSONText.run(record))
        response.headers[.location] = "/v1/workspaces/\(workspace)/runs/\(record.id)"
        return response
    }

    func listRuns(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let workspace = try workspaceID(context)
        let query = request.uri.queryParameters
        var filter = RunFilter()
        if let status = query.get("status") {
            guard let value = RunStatus(rawValue: status) else {
                throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "status must be one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.status = value
        }
        filter.configurationID = query.get("configuration_id")
        filter.createdAfter = try Self.time(query.get("created_after"), "created_after")
        filter.createdBefore = try Self.time(query.get("created_before"), "created_before")
        let limit = try EventQuery.integer(query.get("limit"), "limit").map(Int.init) ?? 50
        guard (1...500).contains(limit) else {
            throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "limit must be between 1 and 500")
        }
        let page = try await runs.list(workspace: workspace, filter: filter, limit: limit, cursor: query.get("cursor"))
        let items = page.items.map(JSONText.run).joined(separator: ",")
        return json(.ok, "{\"items\":[\(items)],\"next_cursor\":\(JSONText.optional(page.nextCursor))}")
    }

    func getRun(_ context: GatewayRequestContext) async throws -> Response {
        json(.ok, JSONText.run(try await runs.run(try runKey(context))))
    }

    func summary(_ context: GatewayRequestContext) async throws -> Response {
        json(.ok, try await runs.summary(try runKey(context)).json)
    }

    func append(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let key = try runKey(context)
        let contentType = (request.headers.firstValue(.contentType) ?? "application/x-ndjson").lowercased()
        let format: RunService.BodyFormat
        if contentType.hasPrefix("application/json") {
            format = .json
        } else if contentType.hasPrefix("application/x-ndjson") || contentType.hasPrefix("application/ndjson")
            || contentType.hasPrefix("application/jsonl") || contentType.hasPrefix("text/plain")
        {
            format = .ndjson
        } else {
            throw Problem(.unsupportedMediaType, "unsupported-media-type", "Unsupported media type", detail: "send application/x-ndjson or application/json, not \(contentType)")
        }
        let expected = try EventQuery.integer(request.uri.queryParameters.get("expected_last_sequence"), "expected_last_sequence")
        let receipt: AppendReceipt
        do {
            let body = Array(try await collect(request.body, limit: configuration.maxBodyBytes).readableBytesView)
            receipt = try await runs.append(body, as: format, to: key, expectedLastSequence: expected)
        } catch {
            let problem = (error as? Problem) ?? (error as? RunError).map(Problem.from) ?? (error as? StorageError).map(Problem.from)
            metrics.rejected(reason: problem?.kind ?? "error")
            throw error
        }
        metrics.appended(events: receipt.appended, bytes: receipt.storedBytes)
        let first = receipt.firstSequence.map(String.init) ?? "null"
        let last = receipt.lastSequence.map(String.init) ?? "null"
        return json(.ok, "{\"first_sequence\":\(first),\"last_sequence\":\(last),\"appended\":\(receipt.appended),\"duplicates\":\(receipt.duplicates)}")
    }

    func read(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let key = try runKey(context)
        let query = try EventQuery(request, maxPageSize: configuration.maxPageSize)
        let record = try await runs.run(key)
        if record.logsDeletedAt != nil { throw StorageError.logDeleted(key) }
        switch query.format {
        case .json:
            return try await page(key, query)
        case .sse:
            // A completed run already read to the end: 204 tells EventSource to stop reconnecting.
            if record.status.isTerminal, query.after >= record.lastSequence {
                return Response(status: .noContent)
            }
            return try eventStream(request, key: key, query: query, connection: context.connection)
        case .ndjson:
            return try eventStream(request, key: key, query: query, connection: context.connection)
        }
    }

    // MARK: Helpers

    func page(_ key: RunKey, _ query: EventQuery) async throws -> Response {
        let limit = query.limit ?? configuration.defaultPageSize
        var items: [ByteBuffer] = []
        var position = query.after
        reading: for try await chunk in runs.events(of: key, after: query.after) {
            var full = false
            chunk.forEachEvent { sequence, type, line in
                guard !full else { return }
                position = sequence
                if query.types?.matches(type) ?? true { items.append(line) }
                if items.count >= limit { full = true }
            }
            if full { break reading }
        }
        var body = ByteBuffer(string: "{\"items\":[")
        for (index, item) in items.enumerated() {
            if index > 0 { body.writeString(",") }
            var line = item
            body.writeBuffer(&line)
        }
        body.writeString("],\"next_after_sequence\":\(position)}")
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }

    func eventStream(_ request: Request, key: RunKey, query: EventQuery, connection: ResponseConnection) throws -> Response {
        // A whole download may come gzipped (archived segments as stored); SSE and live
        // NDJSON never are, since compressors hold bytes back.
        let gzip = query.isWholeDownload && EventQuery.acceptsGzip(request.headers[.acceptEncoding])
        let live = query.isLive
        // A live stream ends when its token expires; the client reconnects with a fresh one and
        // resumes (Last-Event-ID). A finite download started with a valid token completes.
        var endsAt = Int64.max
        if live, let expiresAt = AccessGrant.current?.expiresAt {
            let remaining = expiresAt - Timestamp.now().millisecondsSinceEpoch
            endsAt = StreamAlarms.now() + max(0, remaining) * 1_000_000
        }
        let streamer = EventStreamer(services: streamServices, key: key, query: query, connection: connection, gzip: gzip, endsAt: endsAt)
        var headers: HTTPFields = [.cacheControl: "no-cache"]
        if query.format == .sse {
            headers[.contentType] = "text/event-stream"
            headers[.xAccelBuffering] = "no"
        } else {
            headers[.contentType] = "application/x-ndjson"
            if !query.follow {
                headers[.contentDisposition] = "attachment; filename=\"\(key.runID).ndjson\""
                headers[.vary] = "Accept-Encoding"
            }
            if gzip { headers[.contentEncoding] = "gzip" }
        }
        // The connection of a live stream closes when the stream ends: saying so up front keeps
        // clients from sending another request on it.
        if live { headers[.connection] = "close" }
        return Response(status: .ok, headers: headers, body: .init { writer in try await streamer.respond(to: &writer) })
    }

    func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func collect(_ body: RequestBody, limit: Int) async throws -> ByteBuffer {
        var collected = ByteBuffer()
        for try await part in body {
            guard collected.readableBytes + part.readableBytes <= limit else {
                throw Problem(.contentTooLarge, "body-too-large", "Body too large", detail: "the body is larger than \(limit) bytes")
            }
            var part = part
            collected.writeBuffer(&part)
        }
        return collected
    }

    func workspaceID(_ context: GatewayRequestContext) throws -> String {
        let workspace = context.parameters.get("ws") ?? ""
        guard RunKey.isValid(workspace) else {
            throw Problem(.badRequest, "invalid-identifier", "Invalid identifier", detail: "workspace_id must be 1-128 characters of [A-Za-z0-9_.-] and not '.' or '..'")
        }
        return workspace
    }

    func runKey(_ context: GatewayRequestContext) throws -> RunKey {
        let workspace = try workspaceID(context)
        return try runs.key(workspace: workspace, run: context.parameters.get("run") ?? "")
    }

    static func optionalString(_ value: Any?, _ name: String) throws -> String? {
        guard let value, !(value is NSNull) else { return nil }
        guard let string = value as? String else {
            throw Problem(.badRequest, "invalid-body", "Invalid body", detail: "\(name) must be a string")
        }
        return string
    }

    static func time(_ text: String?, _ name: String) throws -> Int64? {
        guard let text else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        guard let date = formatter.date(from: text) ?? plain.date(from: text) else {
            throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "\(name) must be an RFC 3339 time")
        }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
