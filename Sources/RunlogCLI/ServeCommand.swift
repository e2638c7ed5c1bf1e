import ArgumentParser
import Foundation
import Logging
import NIOCore
import RunlogCatalog
import RunlogGateway
import RunlogRetention
import RunlogRuns
import RunlogStorage
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP gateway (SSE, NDJSON and JSON over the storage root)."
    )

    @Option(help: "Address to listen on (env RUNLOG_HOST).")
    var host: String = environment("HOST") ?? "127.0.0.1"

    @Option(help: "Port to listen on (env RUNLOG_PORT).")
    var port: Int = environment("PORT", as: { Int($0) }) ?? 8080

    @Option(help: "Largest request body, like 16MiB (env RUNLOG_MAX_BODY_SIZE).")
    var maxBodySize: ByteSize = environment("MAX_BODY_SIZE", as: ByteSize.init(argument:)) ?? ByteSize(bytes: 16 << 20)

    @Option(help: "Largest request head, like 16KiB; larger ones get 431 (env RUNLOG_MAX_HEADER_SIZE).")
    var maxHeaderSize: ByteSize = environment("MAX_HEADER_SIZE", as: ByteSize.init(argument:)) ?? ByteSize(bytes: 16 << 10)

    @Option(help: "Close a connection that waits this long for a whole request head, the next piece of a body, or its next request (env RUNLOG_REQUEST_TIMEOUT).")
    var requestTimeout: HumanDuration = environment("REQUEST_TIMEOUT", as: HumanDuration.init(argument:)) ?? HumanDuration(.seconds(30))

    @Option(help: "Heartbeat comment interval on idle event streams (env RUNLOG_HEARTBEAT).")
    var heartbeat: HumanDuration = environment("HEARTBEAT", as: HumanDuration.init(argument:)) ?? HumanDuration(.seconds(15))

    @Option(help: "How often live runs' counts and summaries are written to the catalog (env RUNLOG_PROGRESS_INTERVAL).")
    var progressInterval: HumanDuration = environment("PROGRESS_INTERVAL", as: HumanDuration.init(argument:)) ?? HumanDuration(.seconds(1))

    @Option(help: "Complete a live run with no append for this long, like 2h, as cancelled (reason timed_out); off by default (env RUNLOG_RUN_TIMEOUT).")
    var runTimeout: HumanDuration?

    @Option(help: "Run a retention pass at start-up and then this often, like 1h; off by default (env RUNLOG_RETENTION_INTERVAL).")
    var retentionInterval: HumanDuration?

    @OptionGroup(title: "Retention (with --retention-interval)") var retention: RetentionPolicyOptions

    @OptionGroup(title: "Access control") var auth: AuthKeyOptions

    @Flag(help: "Serve without access control on a non-loopback address (anyone who reaches the port can read and write every run).")
    var insecureOpen = false

    @Option(name: .customLong("cors-origin"), help: "An origin whose pages may call the API, like https://app.example.com (repeatable).")
    var corsOrigins: [String] = environment("CORS_ORIGINS").map { $0.split(separator: ",").map(String.init) } ?? []

    @OptionGroup var options: StorageOptions

    mutating func validate() throws {
        // Read here rather than as the option's default: an optional option takes none.
        if retentionInterval == nil { retentionInterval = environment("RETENTION_INTERVAL", as: HumanDuration.init(argument:)) }
        if runTimeout == nil { runTimeout = environment("RUN_TIMEOUT", as: HumanDuration.init(argument:)) }
        try EnvironmentDefaults.check()
        for (flag, value) in [("--request-timeout", requestTimeout as HumanDuration?), ("--run-timeout", runTimeout)] {
            if let value, value.duration <= .zero { throw ValidationError("\(flag) must be longer than 0s") }
        }
    }

    func run() async throws {
        // A reader of stdout that goes away (a log shipper, `| head`) costs the logs, not the
        // server: writes to it fail with EPIPE, which the log writer reports once on stderr.
        // Said here rather than left to whichever dependency happens to ignore SIGPIPE too.
        signal(SIGPIPE, SIG_IGN)
        // Operational logs go to stdout, apart from events (in the logs) and metrics (/metrics).
        let output = JSONLogHandler.Output.standardOutput(version: Gateway.version)
        defer { output.flush() }
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, version: Gateway.version, output: output) }
        var logger = Logger(label: "runlog")
        logger.logLevel = .info
        if let (before, after) = OpenFileLimit.raiseToHardLimit() {
            // Each reader is a socket: the limit bounds how many streams the server can hold.
            logger.info("open-file limit", metadata: ["soft": "\(after.soft)", "hard": "\(after.hard)", "raised_from": "\(before.soft)"])
        }
        // One writer per storage root: this server, until it exits (the kernel lets go of the
        // lock however it exits). Commands that write refuse meanwhile; retention has its own lock.
        let lock = try options.lockStorageRoot { holder in
            "another runlog serve (\(holder)) is serving \(options.storage): stop it, or give this one another --storage"
        }
        defer { withExtendedLifetime(lock) {} }
        // Closed once every service has stopped: the last progress is written by then.
        let catalogLocation = try options.catalogLocation
        try await options.withCatalog(at: catalogLocation, logger: logger) { catalog in
            logger.info("catalog open", metadata: ["catalog": "\(catalogLocation)"])
            let metrics = GatewayMetrics(droppedLogLines: { output.droppedLines })
            let store = EventStore(configuration: options.storeConfiguration, logger: logger, metricsFactory: metrics.factory)
            let runs = RunService(
                store: store, catalog: catalog, logger: logger, progressInterval: progressInterval.duration, runTimeout: runTimeout?.duration,
                metricsFactory: metrics.factory
            )
            var gatewayConfiguration = GatewayConfiguration()
            gatewayConfiguration.host = host
            gatewayConfiguration.port = port
            gatewayConfiguration.maxBodyBytes = Int(maxBodySize.bytes)
            gatewayConfiguration.maxHeaderBytes = Int(maxHeaderSize.bytes)
            gatewayConfiguration.requestTimeout = requestTimeout.duration
            gatewayConfiguration.heartbeatInterval = heartbeat.duration
            gatewayConfiguration.corsOrigins = corsOrigins
            gatewayConfiguration.accessControl = try await auth.authority()
            if gatewayConfiguration.accessControl == nil {
                let loopback = ["127.0.0.1", "localhost", "::1"].contains(host) || host.hasPrefix("127.")
                guard loopback || insecureOpen else {
                    throw CommandFailure(description: "refusing to serve \(host) without access control: pass --auth-key-file (or RUNLOG_AUTH_KEY), or --insecure-open")
                }
                logger.warning("access control is off: anyone who reaches the port can read and write every run", metadata: ["address": "\(host):\(port)"])
            } else {
                logger.info("access control is on: every /v1 route needs a token")
            }
            let gateway = Gateway(runs: runs, configuration: gatewayConfiguration, logger: logger, metrics: metrics)
            // Hummingbird says "listening on" once the port is bound; this comes before.
            logger.info("runlog starting", metadata: ["address": "http://\(host):\(port)", "storage": "\(options.storage)", "durability": "\(options.durability)"])
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: store), .init(service: runs)]
            if let interval = retentionInterval {
                var pass = RetentionPass(catalog: catalog, maintenance: LogMaintenance(configuration: options.storeConfiguration, logger: logger), logger: logger)
                // Files this pass renames or deletes are re-read by the store on next use.
                pass.onLogChanged = { key in store.forgetSealedLog(of: key) }
                services.append(.init(service: RetentionService(pass: pass, policy: retention.policy, interval: interval.duration, logger: logger)))
                logger.info("retention passes enabled", metadata: ["interval": "\(interval)", "compress_after": "\(retention.compressAfter)", "delete_after": "\(retention.deleteAfter)"])
            }
            services.append(.init(service: gateway.makeApplication()))
            // Stopped in reverse order: the server first (ending streams), retention, progress, then the store (flush, close).
            let group = ServiceGroup(
                configuration: .init(
                    services: services,
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            do {
                try await group.run()
            } catch let error as IOError where error.errnoCode == EADDRINUSE {
                throw CommandFailure(description: "port \(port) on \(host) is already in use: stop what holds it, or choose another with --port (or RUNLOG_PORT)")
            }
            logger.info("runlog stopped", metadata: ["address": "http://\(host):\(port)"])
        }
    }
}
