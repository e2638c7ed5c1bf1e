import HTTPTypes
import Hummingbird
import Prometheus

/// The gateway's metrics, in Prometheus text format at `/metrics`. Kept in the gateway's own
/// registry (no global bootstrap), apart from events and from the operational logs.
public final class GatewayMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    public init() {}

    func request(method: HTTPRequest.Method, route: String, status: HTTPResponse.Status) {
        registry.makeCounter(
            name: "runlog_http_requests_total",
            labels: [("method", method.rawValue), ("route", route), ("status", String(status.code))],
            help: "HTTP requests by route and status"
        ).increment()
    }

    func appended(events: Int, bytes: Int) {
        registry.makeCounter(name: "runlog_events_appended_total", help: "Events appended").increment(by: Int64(events))
        registry.makeCounter(name: "runlog_event_bytes_appended_total", help: "Bytes of stored event lines appended").increment(by: Int64(bytes))
    }

    func rejected(reason: String) {
        registry.makeCounter(name: "runlog_append_rejections_total", labels: [("reason", reason)], help: "Appends refused, by reason").increment()
    }

    func readers(_ format: String, change: Double) {
        registry.makeGauge(name: "runlog_stream_readers", labels: [("format", format)], help: "Open event streams").increment(by: change)
    }

    var text: [UInt8] { registry.emitToBuffer() }
}

/// Counts every request by its route pattern and final status (errors included).
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: GatewayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.request(method: request.method, route: context.endpointPath ?? "unmatched", status: response.status)
            return response
        } catch let error as any HTTPResponseError {
            metrics.request(method: request.method, route: context.endpointPath ?? "unmatched", status: error.status)
            throw error
        }
    }
}
