import Hummingbird

/// Answers a live stream's request (routing, the middlewares, the catalog read) in a task of
/// its own, which ends once the response is ready; other requests go straight to the router.
///
/// The connection's task then writes the stream for as long as it lasts, and a Swift task keeps
/// the async stack it has grown to until it ends: answered inline, every idle reader would hold
/// the whole request chain's high-water mark. Wrapping the router, rather than being its first
/// middleware, keeps the router's own frames off that task too.
struct ShallowStackResponder<Inner: HTTPResponder>: HTTPResponder {
    typealias Context = Inner.Context
    let inner: Inner

    func respond(to request: Request, context: Context) async throws -> Response {
        guard request.method == .get, EventQuery.isLiveStream(request) else { return try await inner.respond(to: request, context: context) }
        return try await inTaskOfItsOwn { try await inner.respond(to: request, context: context) }
    }
}
