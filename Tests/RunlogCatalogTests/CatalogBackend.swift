import GRDB
import RunlogTestSupport

@testable import RunlogCatalog

/// Every catalog backend; each test of the shared suite runs against all of them.
enum CatalogBackend: String, CaseIterable, Sendable {
    case sqliteFile
    case sqliteInMemory
    /// A fresh database on the server `scripts/test` starts.
    case postgres

    /// Runs `body` with a new, empty catalog of this backend, closed and removed afterwards.
    func withCatalog(_ body: (any RunCatalog) async throws -> Void) async throws {
        switch self {
        case .sqliteFile:
            let directory = TemporaryDirectory()
            defer { directory.remove() }
            try await Self.using(try SQLiteRunCatalog(path: directory.path + "/catalog.sqlite"), body)
        case .sqliteInMemory:
            try await Self.using(try SQLiteRunCatalog(database: DatabaseQueue()), body)
        case .postgres:
            try await TestPostgres.withDatabase { location in
                try await Self.using(try await PostgresRunCatalog.open(location, logger: quietLogger), body)
            }
        }
    }

    /// Runs `body` with `catalog` and closes it, whatever `body` did.
    private static func using(_ catalog: any RunCatalog, _ body: (any RunCatalog) async throws -> Void) async throws {
        let result = await Result(catching: { try await body(catalog) })
        try await catalog.close()
        try result.get()
    }
}

/// A run in workspace `ws_1` (by default), with the log directory the store would give it.
func record(_ id: String, createdAt: Int64, status: RunStatus = .queued, configuration: String? = nil, workspace: String = "ws_1") -> RunRecord {
    RunRecord(workspaceID: workspace, id: id, configurationID: configuration, status: status, createdAt: createdAt, eventsPath: "workspaces/\(workspace)/runs/\(id)/logs")
}

extension Result where Failure == any Error {
    /// The outcome of `body`, caught.
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
