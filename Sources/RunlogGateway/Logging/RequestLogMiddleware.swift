import HTTPTypes
import Hummingbird
import Logging

/// One operational log line per request, at info (errors: at error, with their cause): method,
/// path without its query (tokens travel there), route, status, duration, and the ids an
/// operator searches by: `request_id` (the client's `X-Request-Id`, or a new one, echoed in the
/// response), `trace_id` from a W3C `traceparent`, `workspace_id` and `run_id` from the path.
/// For a stream the line is written when its headers go out.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let requestID = request.headers.firstValue(.requestID).flatMap { $0.count <= 128 ? $0 : nil } ?? RequestID.next()
        // Room for every field the line gets, so that the dictionary never grows: this runs
        // once per request.
        var metadata = Logger.Metadata(minimumCapacity: 12)
        metadata["event_type"] = "http.request"
        metadata["request_id"] = .string(requestID)
        metadata["method"] = .string(request.method.rawValue)
        metadata["path"] = .string(request.uri.path)
        if let traceID = request.headers.firstValue(.traceparent).flatMap(Self.traceID) { metadata["trace_id"] = .string(traceID) }
        // A matched route has parsed the path already; a path whose routes take other methods
        // is matched against the table; any other names no run.
        let (workspaceID, runID): (String?, String?)
        if context.endpointPath != nil {
            (workspaceID, runID) = (context.parameters.get(RouteTable.workspaceParameter), context.parameters.get(RouteTable.runParameter))
        } else if let path = routes.routes(onPath: request.uri.path) {
            (workspaceID, runID) = (path.workspace, path.run)
        } else {
            (workspaceID, runID) = (nil, nil)
        }
        if let workspaceID { metadata["workspace_id"] = .string(workspaceID) }
        if let runID { metadata["run_id"] = .string(runID) }
        // Errors become their responses here, so that they carry the request id like any other
        // response (and, outside this, the CORS headers a frontend needs to read them).
        var response: Response
        do {
            response = try await next(request, context)
            log(response.status, metadata, started: started, route: context.endpointPath, cause: nil)
        } catch let error as any HTTPResponseError {
            log(error.status, metadata, started: started, route: context.endpointPath, cause: error)
            response = try error.response(from: request, context: context)
        } catch {
            log(.internalServerError, metadata, started: started, route: context.endpointPath, cause: error)
            // The cause is in the log; the client learns no more than that the server failed.
            response = try Problem(.internalServerError, "internal-error", "Internal error", detail: "the server failed to answer; the request id is in its log")
                .response(from: request, context: context)
        }
        response.headers[.requestID] = requestID
        return response
    }

    private func log(_ status: HTTPResponse.Status, _ base: Logger.Metadata, started: ContinuousClock.Instant, route: String?, cause: (any Error)?) {
        var metadata = base
        metadata["status"] = .string(String(status.code))
        metadata["route"] = .string(route ?? "unmatched")
        let elapsed = ContinuousClock.now - started
        metadata["duration_ms"] = "\(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)"
        if status.code >= 500 {
            metadata["error"] = "\(cause.map { "\($0)" } ?? "unknown")"
            logger.error("request failed", metadata: metadata)
        } else {
            logger.info("request", metadata: metadata)
        }
    }

    /// The trace id of a `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), if well formed.
    static func traceID(_ header: String) -> String? {
        let parts = header.split(separator: "-")
        guard parts.count == 4, parts[1].count == 32, parts[1].allSatisfy(\.isHexDigit), parts[1] != String(repeating: "0", count: 32) else {
            return nil
        }
        return String(parts[1]).lowercased()
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let traceparent = Self("traceparent")!
}
