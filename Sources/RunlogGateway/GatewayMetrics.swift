package import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
package import Prometheus
import RunlogStorage
import Synchronization

/// The server's metrics, in Prometheus text format at `/metrics`, apart from events and from
/// the operational logs.
///
/// Everything is recorded through swift-metrics handles made by ``factory``, which writes to
/// this object's own registry (no global bootstrap, so several gateways can live in one
/// process). Give the same factory to the ``EventStore`` for its flush and fsync timings.
package final class GatewayMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry
    package let factory: any MetricsFactory

    private let eventsAppended: CoreMetrics.Counter
    private let bytesAppended: CoreMetrics.Counter
    private let slowReaderFallbacks: CoreMetrics.Counter
    private let filesSent: CoreMetrics.Counter
    /// Request counters by method, route and status, made once each: building a labelled
    /// counter looks it up in the registry, which is too slow for every request.
    private let requestCounters = Mutex<[RequestLabels: CoreMetrics.Counter]>([:])
    private let openRuns: CoreMetrics.Gauge
    private let openLogWriters: CoreMetrics.Gauge
    private let openDescriptors: CoreMetrics.Gauge
    private let logLinesDropped: CoreMetrics.Counter
    private let connectionTasks: Meter
    private let streamTasks: Meter
    /// How many operational log lines have been dropped so far.
    private let droppedLogLines: @Sendable () -> Int
    /// How many of those the counter has had.
    private let droppedLogLinesCounted = Mutex(0)

    /// - Parameter droppedLogLines: how many operational log lines have been dropped so far
    ///   (``JSONLogHandler/Output/droppedLines``), read at each scrape.
    package init(droppedLogLines: @escaping @Sendable () -> Int = { 0 }) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Flushes and fsyncs take micro- to milliseconds; the default buckets start at 5 ms.
        let storageBuckets: [Duration] = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        factory.durationHistogramBuckets = [StoreMetrics.flushLabel: storageBuckets, StoreMetrics.fsyncLabel: storageBuckets]
        self.registry = registry
        self.factory = factory
        eventsAppended = CoreMetrics.Counter(label: "runlog_events_appended_total", factory: factory)
        bytesAppended = CoreMetrics.Counter(label: "runlog_event_bytes_appended_total", factory: factory)
        slowReaderFallbacks = CoreMetrics.Counter(label: "runlog_slow_reader_fallbacks_total", factory: factory)
        filesSent = CoreMetrics.Counter(label: "runlog_download_files_sent_total", factory: factory)
        openRuns = CoreMetrics.Gauge(label: "runlog_open_runs", factory: factory)
        openLogWriters = CoreMetrics.Gauge(label: "runlog_open_log_writers", factory: factory)
        openDescriptors = CoreMetrics.Gauge(label: "runlog_process_open_fds", factory: factory)
        logLinesDropped = CoreMetrics.Counter(label: "runlog_log_lines_dropped_total", factory: factory)
        connectionTasks = Meter(label: "runlog_server_tasks", dimensions: [("kind", "connection")], factory: factory)
        streamTasks = Meter(label: "runlog_server_tasks", dimensions: [("kind", "stream")], factory: factory)
        self.droppedLogLines = droppedLogLines
    }

    private static let knownMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]

    private struct RequestLabels: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    func request(method: HTTPRequest.Method, route: String, status: HTTPResponse.Status) {
        // Clients choose method names: any but the usual ones count as "other", so a hostile
        // client cannot grow the label set.
        let labels = RequestLabels(method: Self.knownMethods.contains(method) ? method.rawValue : "other", route: route, status: status.code)
        let counter = requestCounters.withLock { counters in
            if let counter = counters[labels] { return counter }
            let counter = CoreMetrics.Counter(
                label: "runlog_http_requests_total",
                dimensions: [("method", labels.method), ("route", route), ("status", String(status.code))],
                factory: factory
            )
            counters[labels] = counter
            return counter
        }
        counter.increment()
    }

    func appended(events: Int, bytes: Int) {
        eventsAppended.increment(by: events)
        bytesAppended.increment(by: bytes)
    }

    func rejected(reason: String) {
        CoreMetrics.Counter(label: "runlog_append_rejections_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// A stream opened (`change` 1) or closed (-1); `format` is sse, ndjson or ndjson_follow.
    func readers(_ format: String, change: Double) {
        Meter(label: "runlog_stream_readers", dimensions: [("format", format)], factory: factory).increment(by: change)
    }

    /// What a task of the server's is for: serving a connection's requests, or taking a parked
    /// live stream up (which holds no task while parked).
    enum TaskKind {
        case connection, stream
    }

    /// Runs `body`, counted as a running task of `kind`: with the open descriptors, what tells
    /// that connections which came and went left nothing behind.
    func counting<T>(_ kind: TaskKind, _ body: () async throws -> T) async rethrows -> T {
        let meter = kind == .connection ? connectionTasks : streamTasks
        meter.increment()
        defer { meter.decrement() }
        return try await body()
    }

    /// Files of whole-log downloads sent with sendfile, bypassing user space.
    func sentFiles(_ count: Int) {
        filesSent.increment(by: count)
    }

    /// A live reader fell behind what the store keeps in memory and went back to the files.
    func slowReaderFellBack() {
        slowReaderFallbacks.increment()
    }

    /// The text `/metrics` answers, with the store's gauges read now.
    func text(openLogs: (runs: Int, files: Int)) -> [UInt8] {
        openRuns.record(openLogs.runs)
        openLogWriters.record(openLogs.files)
        if let count = Self.openDescriptorCount() { openDescriptors.record(count) }
        let newlyDropped = droppedLogLinesCounted.withLock { counted in
            let total = droppedLogLines()
            defer { counted = max(counted, total) }
            return max(0, total - counted)
        }
        if newlyDropped > 0 { logLinesDropped.increment(by: newlyDropped) }
        return registry.emitToBuffer()
    }

    /// File descriptors this process holds (sockets included); nil where /proc is missing.
    static func openDescriptorCount() -> Int? {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map(\.count)
    }
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
