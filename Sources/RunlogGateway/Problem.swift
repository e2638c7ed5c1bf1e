import Foundation
package import HTTPTypes
package import Hummingbird
import NIOCore
import RunlogRuns
import RunlogStorage

/// An RFC 9457 problem: every error the gateway answers with, as `application/problem+json`.
///
/// A problem body never names a server path: what failed inside the server goes to its log
/// (``cause``), the client gets a detail it can act on.
package struct Problem: HTTPResponseError, Equatable, CustomStringConvertible {
    package var status: HTTPResponse.Status
    /// A short, stable slug; the `type` URI is `/problems/<slug>`.
    package var kind: String
    package var title: String
    package var detail: String
    /// For a refused event: its 1-based line in the body.
    package var line: Int?
    /// For conflicts about the log's end: the run's last sequence.
    package var lastSequence: Int64?
    package var extraHeaders: HTTPFields = [:]
    /// What failed inside the server, for its log only.
    package var cause: String?

    package init(
        _ status: HTTPResponse.Status, _ kind: String, _ title: String, detail: String, line: Int? = nil, lastSequence: Int64? = nil,
        cause: String? = nil
    ) {
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.line = line
        self.lastSequence = lastSequence
        self.cause = cause
    }

    /// 507: the volume holding the logs or the catalog is full; retrying after space is freed works.
    static func insufficientStorage(cause: String) -> Problem {
        Problem(
            .insufficientStorage, "insufficient-storage", "Insufficient storage",
            detail: "the server's storage volume is full: nothing of this request was stored; retry once space is freed", cause: cause
        )
    }

    package var description: String { "\(status.code) \(kind): \(cause ?? detail)" }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var object: [String: Any] = [
            "type": "/problems/\(kind)", "title": title, "status": Int(status.code), "detail": detail,
            "instance": request.uri.path,
        ]
        if let line { object["line"] = line }
        if let lastSequence { object["last_sequence"] = lastSequence }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        var headers = extraHeaders
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func from(_ error: RunError) -> Problem {
        switch error {
        case .notFound(let key): return Problem(.notFound, "run-not-found", "Run not found", detail: "run \(key.runID) does not exist in workspace \(key.workspaceID)")
        case .exists(let key): return Problem(.conflict, "run-exists", "Run already exists", detail: "run \(key.runID) already exists in workspace \(key.workspaceID)")
        case .closed(_, let last): return Problem(.conflict, "run-closed", "Run is completed", detail: error.description, lastSequence: last)
        case .invalidEvent(let rejection): return Problem(.badRequest, "invalid-event", "Invalid event", detail: rejection.reason, line: rejection.line)
        case .invalidCursor: return Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "cursor is not one this server issued")
        case .storage(let storage): return from(storage)
        case .catalog(let reason):
            return Problem(.internalServerError, "catalog-error", "Catalog error", detail: "the run catalog failed; the request id is in the server's log", cause: reason)
        case .outOfSpace(let reason): return .insufficientStorage(cause: reason)
        case .catalogUnavailable(let reason):
            var problem = Problem(
                .serviceUnavailable, "catalog-unavailable", "Catalog unavailable",
                detail: "the run catalog's database does not answer; retry after Retry-After seconds (a retried append is safe when its events carry event_id)",
                cause: reason
            )
            problem.extraHeaders[.retryAfter] = "\(Self.catalogRetryAfterSeconds)"
            return problem
        }
    }

    /// `Retry-After` of a 503 for an unavailable catalog: long enough not to hammer a
    /// restarting database, short enough that clients are back soon after it is.
    static let catalogRetryAfterSeconds = 5

    static func from(_ error: StorageError) -> Problem {
        switch error {
        case .invalidIdentifier(let field, let reason): return Problem(.badRequest, "invalid-identifier", "Invalid identifier", detail: "\(field) \(reason)")
        case .invalidEvent(let rejection): return Problem(.badRequest, "invalid-event", "Invalid event", detail: rejection.reason, line: rejection.line)
        case .invalidBody(let reason): return Problem(.badRequest, "invalid-body", "Invalid body", detail: reason)
        case .logNotFound(let key): return Problem(.notFound, "run-not-found", "Run not found", detail: "run \(key.runID) has no event log")
        case .logClosed(_, let last): return Problem(.conflict, "run-closed", "Run is completed", detail: error.description, lastSequence: last)
        case .sequenceMismatch(_, let actual): return Problem(.conflict, "sequence-mismatch", "Sequence mismatch", detail: error.description, lastSequence: actual)
        case .logDeleted: return Problem(.gone, "log-deleted", "Event log deleted", detail: error.description)
        case .unavailable(let reason): return Problem(.serviceUnavailable, "storage-unavailable", "Storage unavailable", detail: reason)
        case .outOfSpace: return .insufficientStorage(cause: error.description)
        case .io, .corruptLog:
            return Problem(
                .internalServerError, "storage-error", "Storage error",
                detail: "reading or writing the event log failed; nothing of this request was acknowledged; the request id is in the server's log",
                cause: error.description
            )
        case .logNotSealed: return Problem(.internalServerError, "storage-error", "Storage error", detail: error.description)
        case .shutDown, .cancelled: return Problem(.serviceUnavailable, "shutting-down", "Shutting down", detail: error.description)
        }
    }
}

/// Turns every error into problem+json: the gateway's own problems, the run service's and
/// storage's errors, and Hummingbird's (unknown routes become 404, or 405 on a known path).
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The routes, for 405 and `Allow`.
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            throw problem
        } catch let error as RunError {
            throw Problem.from(error)
        } catch let error as StorageError {
            throw Problem.from(error)
        } catch let error as HTTPError where error.status == .notFound {
            if let path = routes.routes(onPath: request.uri.path) {
                var problem = Problem(.methodNotAllowed, "method-not-allowed", "Method not allowed", detail: "\(request.method) is not allowed on \(request.uri.path)")
                problem.extraHeaders[.allow] = path.routes.map(\.method.rawValue).joined(separator: ", ")
                throw problem
            }
            throw Problem(.notFound, "not-found", "Not found", detail: "no route \(request.method) \(request.uri.path)")
        } catch let error as HTTPError {
            throw Problem(error.status, "http-error", error.status.reasonPhrase, detail: error.body ?? error.status.reasonPhrase)
        }
    }
}

extension HTTPResponse.Status {
    /// RFC 4918's 507, which HTTPTypes does not name.
    static let insufficientStorage = HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
}
