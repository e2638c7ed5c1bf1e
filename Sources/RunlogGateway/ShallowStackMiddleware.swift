import Hummingbird

/// Handles a live stream's request (routing, the other middlewares, the catalog read) in a task
/// of its own, which ends once the response is ready.
///
/// The connection's task then writes the stream for as long as it lasts, and a Swift task keeps
/// the async stack it has grown to until it ends: handled inline, every idle reader would hold
/// the whole request chain's high-water mark.
struct ShallowStackMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get, EventQuery.isLiveStream(request) else { return try await next(request, context) }
        return try await withoutActuallyEscaping(next) { next in
            // Awaited at once, so `next` is used only while this call is under way.
            let handler = UncheckedSendable(value: next)
            let handling = Task { try await handler.value(request, context) }
            return try await withTaskCancellationHandler { try await handling.value } onCancel: { handling.cancel() }
        }
    }
}

/// A value used from another task while its owner waits for that task.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
