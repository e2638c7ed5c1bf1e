import Foundation
package import RunlogCatalog
import Synchronization
import Testing

/// PostgreSQL for the tests: a fresh database per test on the server `scripts/test` starts
/// (`RUNLOG_TEST_POSTGRES_URL`), and private servers that a test may stop, kill and restart.
package enum TestPostgres {
    /// Why a PostgreSQL test cannot run; it fails with this rather than skip.
    package struct Unavailable: Error, CustomStringConvertible {
        package var description: String
    }

    /// The shared server's URL.
    package static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["RUNLOG_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw Unavailable(description: "RUNLOG_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL")
        }
        return url
    }

    /// Runs `body` with a database of its own on the shared server, dropped afterwards.
    package static func withDatabase<T>(_ body: (PostgresLocation) async throws -> T) async throws -> T {
        let location = try await createDatabase()
        let result: Result<T, any Error>
        do {
            result = .success(try await body(location))
        } catch {
            result = .failure(error)
        }
        try await dropDatabase(location)
        return try result.get()
    }

    /// A new, empty database on the shared server.
    package static func createDatabase() async throws -> PostgresLocation {
        let server = try serverURL()
        let name = "runlog_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await psql(server, "CREATE DATABASE \(name)")
        var location = try PostgresLocation(url: server)
        location.database = name
        return location
    }

    /// Drops a database ``createDatabase()`` made, disconnecting whoever is still connected.
    package static func dropDatabase(_ location: PostgresLocation) async throws {
        try await offPool { try dropDatabaseBlocking(location) }
    }

    /// ``dropDatabase(_:)`` for code that cannot wait asynchronously (a `defer`).
    package static func dropDatabaseBlocking(_ location: PostgresLocation) throws {
        try psqlBlocking(try serverURL(), "DROP DATABASE \(location.database) WITH (FORCE)")
    }

    /// Runs one SQL statement with `psql`, failing with what it printed.
    static func psql(_ url: String, _ sql: String) async throws {
        try await offPool { try psqlBlocking(url, sql) }
    }

    /// ``psql(_:_:)``, blocking its thread.
    static func psqlBlocking(_ url: String, _ sql: String) throws {
        let result = try ChildProcess.runBlocking("/usr/bin/psql", [url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        guard result.status == 0 else { throw Unavailable(description: "psql \(sql): \(result.error)") }
    }

    /// The repository's `scripts/postgres`.
    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/postgres").path
    }
}

/// The catalog backends, for tests of what sits on a catalog (the run service, retention).
package enum TestCatalogBackend: String, CaseIterable, Sendable {
    case sqlite
    case postgres
}

/// Where one test's catalog lives: `catalog.sqlite` under its storage root, or a database of its
/// own on the test PostgreSQL. It outlives the catalogs opened on it (a restart reopens the same),
/// until ``drop()``.
package struct TestCatalogPlace: Sendable {
    package let location: CatalogLocation

    /// A place for `backend`'s catalog for the storage root `root` (for PostgreSQL, a new database).
    package static func make(_ backend: TestCatalogBackend, root: String) async throws -> TestCatalogPlace {
        switch backend {
        case .sqlite: return TestCatalogPlace(location: .sqlite(path: root + "/catalog.sqlite"))
        case .postgres: return TestCatalogPlace(location: .postgres(try await TestPostgres.createDatabase()))
        }
    }

    /// Opens (creating and migrating) the catalog here.
    package func open() async throws -> any RunCatalog {
        try await location.open(logger: quietLogger)
    }

    /// Removes a PostgreSQL database (a SQLite file goes with its storage root). It blocks its
    /// thread for the `psql` it runs, so that a `defer` can call it.
    package func drop() {
        guard case .postgres(let database) = location else { return }
        do {
            try TestPostgres.dropDatabaseBlocking(database)
        } catch {
            Issue.record("could not drop the test database: \(error)")
        }
    }
}

/// A PostgreSQL server of one test's own (`scripts/postgres` in a temporary directory), to stop,
/// kill and restart at will. ``remove()`` stops it and deletes its files.
package final class PrivatePostgres: Sendable {
    private let directory = TemporaryDirectory()
    private let running = Mutex(false)
    /// Its URL (database `postgres`).
    package let url: String

    /// Creates and starts the server.
    package init() async throws {
        url = try await Self.script("start", directory.path)
        running.withLock { $0 = true }
    }

    package var location: PostgresLocation {
        get throws { try PostgresLocation(url: url) }
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    package func stop() async throws {
        _ = try await Self.script("stop", directory.path)
        running.withLock { $0 = false }
    }

    /// SIGKILLs the server, as a crash would.
    package func kill() async throws {
        _ = try await Self.script("kill", directory.path)
        running.withLock { $0 = false }
    }

    /// SIGSTOPs the server and its backends: connections stay open and nothing answers.
    package func freeze() async throws { _ = try await Self.script("freeze", directory.path) }

    /// SIGCONTs what ``freeze()`` stopped.
    package func thaw() async throws { _ = try await Self.script("thaw", directory.path) }

    /// Starts it again on the same port and data.
    package func start() async throws {
        _ = try await Self.script("start", directory.path)
        running.withLock { $0 = true }
    }

    /// Stops the server if it runs and removes its files.
    package func remove() async {
        if running.withLock({ $0 }) {
            do {
                // A frozen server would not stop; thawing a running one changes nothing.
                _ = try await Self.script("thaw", directory.path)
                try await stop()
            } catch {
                Issue.record("could not stop the test's PostgreSQL: \(error)")
            }
        }
        directory.remove()
    }

    private static func script(_ command: String, _ directory: String) async throws -> String {
        let result = try await ChildProcess.run(TestPostgres.script, [command, directory])
        guard result.status == 0 else {
            throw TestPostgres.Unavailable(description: "scripts/postgres \(command) failed: \(result.error)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
