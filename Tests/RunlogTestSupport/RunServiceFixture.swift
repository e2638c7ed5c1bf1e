package import CoreMetrics
package import Logging
import RunlogCatalog
package import RunlogRuns
package import RunlogStorage

/// A logger that keeps quiet but for critical lines, for tests that do not look at logs.
package var quietLogger: Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}

/// Runs `body` with a run service over a fresh storage root (the store, and a SQLite catalog in
/// it), then shuts the store down, closes the catalog and removes the root, whatever `body` did.
/// The store flushes under `flush` durability with two I/O threads unless `configure` says else.
/// With `root`, the store and catalog live there instead, and the directory is left in place.
package func withRunService<T>(
    root: String? = nil,
    logger: Logger = quietLogger,
    metricsFactory: any MetricsFactory = MetricsSystem.factory,
    configure: (inout EventStoreConfiguration) -> Void = { _ in },
    _ body: (RunService) async throws -> T
) async throws -> T {
    let directory = root == nil ? TemporaryDirectory() : nil
    defer { directory?.remove() }
    let root = root ?? directory!.path
    var configuration = EventStoreConfiguration(root: root)
    configuration.durability = .flush
    configuration.ioThreads = 2
    configure(&configuration)
    let store = EventStore(configuration: configuration, logger: logger, metricsFactory: metricsFactory)
    let catalog = try SQLiteRunCatalog(path: root + "/catalog.sqlite")
    let runs = RunService(store: store, catalog: catalog, logger: logger)
    let result: Result<T, any Error>
    do {
        result = .success(try await body(runs))
    } catch {
        result = .failure(error)
    }
    await store.shutdown()
    try await catalog.close()
    return try result.get()
}
