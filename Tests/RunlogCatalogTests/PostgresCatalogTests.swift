import PostgresNIO
import RunlogTestSupport
import Testing

@testable import RunlogCatalog

/// What only the PostgreSQL backend has: a server that comes and goes, several nodes migrating
/// at once, and its planner's choice of indexes.
@Suite struct PostgresCatalogTests {
    @Test func listingAndRetentionScansWalkAnIndexWithoutSorting() async throws {
        try await TestPostgres.withDatabase { location in
            // Loading the rows takes seconds under a busy suite: a deadline to match.
            let catalog = try await PostgresRunCatalog.open(location, logger: quietLogger, timeout: .seconds(120))
            defer { Task { try await catalog.close() } }
            // 100,000 rows over 10 workspaces, statistics up to date: the planner's real choice.
            try await catalog.perform { client in
                try await client.query(
                    """
                    INSERT INTO runs (workspace_id, id, configuration_id, status, created_at, completed_at, events_path)
                    SELECT 'ws_' || (n % 10), 'run_' || n, 'conf_' || (n % 7), CASE WHEN n % 3 = 0 THEN 'succeeded' ELSE 'running' END,
                        n, CASE WHEN n % 3 = 0 THEN n + 5 END, 'logs/' || n
                    FROM generate_series(1, 100000) AS n
                    """
                )
                try await client.query("ANALYZE runs")
            }
            let deepPage = try #require(try await catalog.list(workspace: "ws_1", limit: 50, cursor: "50000~run_50001").items.first)
            #expect(deepPage.createdAt < 50000)
            var queries = [
                PostgresRunCatalog.listQuery(workspace: "ws_1", filter: RunFilter(), limit: 50, after: nil),
                PostgresRunCatalog.listQuery(workspace: "ws_1", filter: RunFilter(), limit: 50, after: ListCursor(createdAt: 50_000, id: "run_50001")),
                PostgresRunCatalog.listQuery(workspace: "ws_1", filter: RunFilter(status: .succeeded), limit: 50, after: ListCursor(createdAt: 50_000, id: "x")),
                PostgresRunCatalog.listQuery(workspace: "ws_1", filter: RunFilter(configurationID: "conf_3"), limit: 50, after: nil),
            ]
            queries.append("SELECT id FROM runs WHERE \(unescaped: RunLogState.awaitingCompression.condition) AND completed_at >= 0 AND completed_at < 90000 ORDER BY completed_at, workspace_id, id LIMIT 100")
            for query in queries {
                let plan = try await catalog.perform { client in
                    var lines: [String] = []
                    let explain = PostgresQuery(unsafeSQL: "EXPLAIN " + query.sql, binds: query.binds)
                    for try await line in try await client.query(explain).decode(String.self) { lines.append(line) }
                    return lines.joined(separator: "\n")
                }
                #expect(plan.contains("Index Scan") || plan.contains("Index Only Scan"), "\(query.sql):\n\(plan)")
                #expect(!plan.contains("Sort") && !plan.contains("Seq Scan"), "sorts or scans instead of walking an index: \(query.sql):\n\(plan)")
            }
        }
    }

    @Test func nodesStartingTogetherMigrateOneAtATimeAndOnce() async throws {
        try await TestPostgres.withDatabase { location in
            let catalogs = try await withThrowingTaskGroup(of: PostgresRunCatalog.self) { group in
                for _ in 0..<4 { group.addTask { try await PostgresRunCatalog.open(location, logger: quietLogger) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let names = try await catalogs[0].perform { client in
                try await client.query("SELECT name FROM runlog_migrations ORDER BY name").decode(String.self).reduce(into: []) { $0.append($1) }
            }
            #expect(names == PostgresSchema.migrations.map(\.name))
            try await catalogs[1].create(record("run_1", createdAt: 1))
            #expect(try await catalogs[3].run(workspace: "ws_1", id: "run_1") != nil)
            for catalog in catalogs { try await catalog.close() }
        }
    }

    @Test func openingAServerThatIsNotThereFailsAtOnceWithTheReason() async throws {
        let server = try await PrivatePostgres()
        let location = try server.location
        try await server.stop()
        defer { Task { await server.remove() } }
        let started = ContinuousClock.now
        do {
            _ = try await PostgresRunCatalog.open(location, logger: quietLogger, timeout: .seconds(5))
            Issue.record("opened a catalog on a stopped server")
        } catch RunCatalogError.unavailable(let reason) {
            #expect(reason.contains("connect"), "\(reason)")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test(.slow, .timeLimit(.minutes(2))) func aServerThatGoesAwayMakesTheCatalogUnavailableUntilItReturns() async throws {
        let server = try await PrivatePostgres()
        do {
            let catalog = try await PostgresRunCatalog.open(try server.location, logger: quietLogger, timeout: .seconds(2))
            try await catalog.create(record("run_1", createdAt: 1))
            // A crash, not a clean stop: the pool's connections die under it.
            try await server.kill()
            // Each operation ends by its deadline (2 s; the slack is for a busy machine), where
            // the pool alone would keep it waiting for a connection for a minute.
            for _ in 0..<3 {
                var started = ContinuousClock.now
                await #expect(throws: RunCatalogError.self) { _ = try await catalog.run(workspace: "ws_1", id: "run_1") }
                #expect(ContinuousClock.now - started < .seconds(5), "an operation waited past its deadline")
                started = ContinuousClock.now
                do {
                    _ = try await catalog.list(workspace: "ws_1", limit: 5)
                    Issue.record("listed runs on a dead server")
                } catch RunCatalogError.unavailable {
                    // As it should: not a fault of the request.
                }
                #expect(ContinuousClock.now - started < .seconds(5), "an operation waited past its deadline")
            }
            try await server.start()
            try await waitUntil("the catalog answers again", within: .seconds(90)) {
                (try? await catalog.run(workspace: "ws_1", id: "run_1")) != nil
            }
            try await catalog.create(record("run_2", createdAt: 2))
            #expect(try await catalog.list(workspace: "ws_1", limit: 5).items.map(\.id) == ["run_2", "run_1"])
            try await catalog.close()
        } catch {
            await server.remove()
            throw error
        }
        await server.remove()
    }

    @Test(.slow, .timeLimit(.minutes(2))) func aFrozenServerMakesOperationsUnavailableWithinTheirDeadline() async throws {
        let server = try await PrivatePostgres()
        do {
            let catalog = try await PostgresRunCatalog.open(try server.location, logger: quietLogger, timeout: .seconds(2))
            // Connections in the pool, open to backends that will stop answering.
            try await catalog.create(record("run_1", createdAt: 1))
            #expect(try await catalog.list(workspace: "ws_1", limit: 5).items.count == 1)
            try await server.freeze()
            for _ in 0..<3 {
                let started = ContinuousClock.now
                await #expect(throws: RunCatalogError.self) { _ = try await catalog.run(workspace: "ws_1", id: "run_1") }
                #expect(ContinuousClock.now - started < .seconds(5), "an operation on a frozen server waited past its deadline")
            }
            try await server.thaw()
            try await waitUntil("the catalog answers again", within: .seconds(60)) {
                (try? await catalog.run(workspace: "ws_1", id: "run_1")) != nil
            }
            try await catalog.close()
        } catch {
            await server.remove()
            throw error
        }
        await server.remove()
    }
}
