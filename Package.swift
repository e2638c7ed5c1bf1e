// swift-tools-version:6.0
import PackageDescription

/// Every target is built strict: `any` spelled out for existentials, and every module a file
/// uses imported by that file.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "runlog",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "runlog", targets: ["RunlogCLI"]),
        .library(name: "RunlogStorage", targets: ["RunlogStorage"]),
        .executable(name: "runlog-bench", targets: ["RunlogBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        // NIOHTTP1 types below Hummingbird's codec: whole-file downloads go out with sendfile.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // The shared catalog of several nodes: PostgreSQL, with postgres-nio's bounded pool.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        // TLS for PostgreSQL connections (sslmode), as postgres-nio takes it.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        // HTTP field and status types, as Hummingbird's API has them.
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.0"),
    ],
    targets: [
        // zlib from the system (Debian: zlib1g-dev), for gzip segments.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The storage engine: per-run NDJSON logs. Knows nothing of HTTP or SQLite.
        .target(
            name: "RunlogStorage",
            dependencies: [
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Run metadata in SQLite (GRDB, the embedded default) or PostgreSQL (postgres-nio, shared
        // by several nodes). Knows nothing of log files.
        .target(
            name: "RunlogCatalog",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Runs: the catalog and the event logs kept in step (lifecycle, summaries, reconciliation).
        .target(
            name: "RunlogRuns",
            dependencies: [
                "RunlogStorage",
                "RunlogCatalog",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Retention: compresses and deletes old logs as the catalog says they are due.
        .target(
            name: "RunlogRetention",
            dependencies: [
                "RunlogStorage",
                "RunlogCatalog",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Access control: signed, workspace-scoped tokens (JWT HS256 via jwt-kit).
        .target(
            name: "RunlogAuth",
            dependencies: [
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strict
        ),
        // The HTTP gateway: routes of the contract over the run service (Hummingbird 2).
        .target(
            name: "RunlogGateway",
            dependencies: [
                "RunlogAuth",
                "RunlogRuns",
                "RunlogCatalog",
                "RunlogStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The connection layer's notes on what it copied from Hummingbird.
            exclude: ["Connection/README.md"],
            // docs/openapi.yaml and clients/js/runlog.js link here; the server serves them at
            // /openapi.yaml and /runlog.js.
            resources: [.copy("Resources/openapi.yaml"), .copy("Resources/runlog.js")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "RunlogCLI",
            dependencies: [
                "RunlogStorage",
                "RunlogCatalog",
                "RunlogRuns",
                "RunlogGateway",
                "RunlogRetention",
                "RunlogAuth",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Release-built benchmark: `swift run -c release runlog-bench`.
        .executableTarget(
            name: "RunlogBenchmark",
            dependencies: [
                "CZlib",
                "RunlogStorage",
                "RunlogRetention",
                "RunlogCatalog",
                "RunlogRuns",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                // The gateway benchmark's baseline servers, which store nothing.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Fuzzing: what arbitrary bytes are fed to (the batch parser, the query parsers, log
        // recovery), shared by the libFuzzer binary and the corpus replay test.
        .target(
            name: "RunlogFuzzing",
            dependencies: [
                "RunlogStorage",
                "RunlogCatalog",
                "RunlogGateway",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The libFuzzer binary (scripts/fuzz builds it with -sanitize=fuzzer).
        .executableTarget(
            name: "RunlogFuzz",
            dependencies: ["RunlogFuzzing"],
            swiftSettings: strict
        ),
        // A child process for the crash tests: appends until it is SIGKILLed.
        .executableTarget(
            name: "RunlogCrashHelper",
            dependencies: [
                "RunlogStorage",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // What the test targets share (not a product): temporary directories, child processes
        // (`runlog serve`, curl), raw connections, captured logs, a run service on a fresh root.
        .target(
            name: "RunlogTestSupport",
            dependencies: [
                "RunlogRuns",
                "RunlogCatalog",
                "RunlogStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Tests/RunlogTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "RunlogGatewayTests",
            dependencies: [
                "RunlogTestSupport",
                "RunlogGateway",
                "RunlogAuth",
                "RunlogRuns",
                "RunlogCatalog",
                "RunlogStorage",
                "RunlogFuzzing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RunlogRunsTests",
            dependencies: [
                "RunlogTestSupport",
                "RunlogRuns",
                "RunlogCatalog",
                "RunlogStorage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RunlogRetentionTests",
            dependencies: [
                "RunlogTestSupport",
                "RunlogRetention",
                "RunlogRuns",
                "RunlogCatalog",
                "RunlogStorage",
                // Killed at random moments by the resumability test.
                "RunlogCLI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RunlogCatalogTests",
            dependencies: [
                "RunlogTestSupport",
                "RunlogCatalog",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        // The `runlog` binary as users run it: commands, `serve` under curl, Chromium and load.
        .testTarget(
            name: "RunlogCLITests",
            dependencies: [
                "RunlogTestSupport",
                "RunlogStorage",
                "RunlogCatalog",
                // Built for the tests, which run it as a child process.
                "RunlogCLI",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RunlogStorageTests",
            dependencies: [
                "RunlogTestSupport",
                "RunlogStorage",
                // Built for the crash tests, which run it as a child process.
                "RunlogCrashHelper",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
