import HTTPTypes
import Hummingbird

/// Lets frontends on the configured origins call the API from a browser: answers preflights
/// (allowing `authorization` and `last-event-id`) and marks responses for those origins.
/// Requests from other origins get no CORS headers, so browsers keep them from the page.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin], origins.contains(origin) || origins.contains("*") else {
            return try await next(request, context)
        }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers = Self.headers(for: origin)
            headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            headers[.accessControlAllowHeaders] = "authorization, content-type, last-event-id"
            headers[.accessControlMaxAge] = "600"
            return Response(status: .noContent, headers: headers)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            // Errors too must carry the headers, or the page cannot read the problem.
            response = try error.response(from: request, context: context)
        }
        for field in Self.headers(for: origin) { response.headers.append(field) }
        return response
    }

    static func headers(for origin: String) -> HTTPFields {
        [
            .accessControlAllowOrigin: origin, .accessControlAllowCredentials: "true", .vary: "Origin",
            .accessControlExposeHeaders: "www-authenticate, allow",
        ]
    }
}
