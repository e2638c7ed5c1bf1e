import Foundation
import GRDB
import RunlogTestSupport
import Testing

@testable import RunlogCatalog

@Suite struct RunCatalogTests {
    @Test func cursorsAreReadInTheirDocumentedShapeAndInTheEarlierBase64One() throws {
        let cursor = ListCursor(createdAt: 1_733_590_000_000, id: "run_1")
        #expect(cursor.text == "1733590000000~run_1")
        #expect(try ListCursor(cursor.text) == cursor)
        #expect(try ListCursor("MTIzOnJ1bl8x") == ListCursor(createdAt: 123, id: "run_1"))
        for bad in ["", "~run_1", "12~", "12~../x", "1234567890123456789~a", "-1~a", "x"] {
            #expect(throws: RunCatalogError.invalidCursor, "\(bad)") { try ListCursor(bad) }
        }
    }

    @Test(arguments: CatalogBackend.allCases) func createsAndRefusesADuplicateID(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            try await catalog.create(record("run_1", createdAt: 1000))
            await #expect(throws: RunCatalogError.runExists(workspace: "ws_1", run: "run_1")) {
                try await catalog.create(record("run_1", createdAt: 2000))
            }
            // The same id in another workspace is another run.
            try await catalog.create(record("run_1", createdAt: 2000, workspace: "ws_2"))
            #expect(try await catalog.run(workspace: "ws_1", id: "run_1")?.createdAt == 1000)
            #expect(try await catalog.run(workspace: "ws_1", id: "nope") == nil)
        }
    }

    @Test(arguments: CatalogBackend.allCases) func listsNewestFirstWithKeysetPaginationThroughTies(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            // 25 runs, five per created_at value: ties must neither repeat nor vanish across pages.
            var expected: [String] = []
            for index in 0..<25 {
                let id = String(format: "run_%02d", index)
                try await catalog.create(record(id, createdAt: Int64(1000 + index / 5)))
                expected.append(id)
            }
            try await catalog.create(record("other", createdAt: 5000, workspace: "ws_2"))
            expected.sort { lhs, rhs in
                let (l, r) = (Int(lhs.dropFirst(4))! / 5, Int(rhs.dropFirst(4))! / 5)
                return l != r ? l > r : lhs > rhs
            }
            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await catalog.list(workspace: "ws_1", limit: 7, cursor: cursor)
                #expect(page.items.count <= 7)
                seen += page.items.map(\.id)
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil
            #expect(seen == expected)
            #expect(pages == 4)
        }
    }

    @Test(arguments: CatalogBackend.allCases) func filtersByStatusConfigurationAndTime(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            try await catalog.create(record("a", createdAt: 100, status: .queued, configuration: "build"))
            try await catalog.create(record("b", createdAt: 200, status: .running, configuration: "build"))
            try await catalog.create(record("c", createdAt: 300, status: .failed, configuration: "deploy"))
            try await catalog.create(record("d", createdAt: 400, status: .failed, configuration: "build"))
            func ids(_ filter: RunFilter) async throws -> [String] {
                try await catalog.list(workspace: "ws_1", filter: filter, limit: 50).items.map(\.id)
            }
            #expect(try await ids(.init(status: .failed)) == ["d", "c"])
            #expect(try await ids(.init(configurationID: "build")) == ["d", "b", "a"])
            #expect(try await ids(.init(status: .failed, configurationID: "build")) == ["d"])
            #expect(try await ids(.init(createdAfter: 100, createdBefore: 400)) == ["c", "b"])
        }
    }

    @Test(arguments: CatalogBackend.allCases) func refusesACursorItDidNotIssue(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            await #expect(throws: RunCatalogError.invalidCursor) {
                _ = try await catalog.list(workspace: "ws_1", limit: 5, cursor: "not-a-cursor!")
            }
        }
    }

    @Test(arguments: CatalogBackend.allCases) func progressNeverOverwritesATerminalRow(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            try await catalog.create(record("live", createdAt: 1))
            try await catalog.create(record("done", createdAt: 2, status: .succeeded))
            try await catalog.record([
                .init(workspaceID: "ws_1", runID: "live", lastSequence: 10, eventCount: 10, byteSize: 999, errorCount: 1, summary: "{}"),
                .init(workspaceID: "ws_1", runID: "done", lastSequence: 10, eventCount: 10, byteSize: 999, errorCount: 1, summary: "{}"),
            ])
            #expect(try await catalog.run(workspace: "ws_1", id: "live")?.lastSequence == 10)
            #expect(try await catalog.run(workspace: "ws_1", id: "done")?.lastSequence == 0)
        }
    }

    @Test func listingUsesTheIndexesNotAScan() async throws {
        try await CatalogBackend.sqliteFile.withCatalog { catalog in
            let plans = try await #require(catalog as? SQLiteRunCatalog).database.read { db -> [String] in
                try [
                    "SELECT * FROM runs WHERE workspace_id = 'w' ORDER BY created_at DESC, id DESC LIMIT 5",
                    "SELECT * FROM runs WHERE workspace_id = 'w' AND status = 'failed' AND (created_at, id) < (5, 'x') ORDER BY created_at DESC, id DESC LIMIT 5",
                    "SELECT * FROM runs WHERE workspace_id = 'w' AND configuration_id = 'c' ORDER BY created_at DESC, id DESC LIMIT 5",
                ].map { sql in
                    try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "; ")
                }
            }
            for plan in plans {
                #expect(plan.contains("USING INDEX"), "plan: \(plan)")
                #expect(!plan.contains("TEMP B-TREE"), "sorts instead of walking the index: \(plan)")
            }
        }
    }

    @Test func closingTheCatalogLeavesNoWriteAheadLog() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let catalog = try SQLiteRunCatalog(path: directory.path + "/catalog.sqlite")
        for index in 0..<20 { try await catalog.create(record("run_\(index)", createdAt: Int64(index))) }
        // Reads too, as a server's: they open the pool's reader connections, which outlive its writer's.
        #expect(try await catalog.list(workspace: "ws_1", limit: 10).items.count == 10)
        #expect(FileManager.default.fileExists(atPath: directory.path + "/catalog.sqlite-wal"))
        try await catalog.close()
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/catalog.sqlite-wal"))
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/catalog.sqlite-shm"))
        let reopened = try SQLiteRunCatalog(path: directory.path + "/catalog.sqlite")
        #expect(try await reopened.list(workspace: "ws_1", limit: 500).items.count == 20)
        try await reopened.close()
    }

    @Test func theWriteAheadLogShrinksBackAfterALargeTransaction() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let catalog = try SQLiteRunCatalog(path: directory.path + "/catalog.sqlite")
        let wal = directory.path + "/catalog.sqlite-wal"
        func walBytes() throws -> Int { try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int ?? -1 }
        // One transaction of about 8 MB of summaries over 100 rows: the WAL grows to hold it all.
        for index in 0..<100 { try await catalog.create(record("run_\(index)", createdAt: Int64(index))) }
        let summary = String(repeating: "s", count: 80_000)
        try await catalog.record((0..<100).map { index in
            RunProgress(workspaceID: "ws_1", runID: "run_\(index)", lastSequence: 1, eventCount: 1, byteSize: 1, errorCount: 0, summary: summary)
        })
        #expect(try walBytes() > 4 * SQLiteRunCatalog.journalSizeLimit)
        // The commit's automatic checkpoint emptied it; the next write starts it over and cuts it down.
        try await catalog.create(record("small", createdAt: 5_000))
        #expect(try walBytes() <= SQLiteRunCatalog.journalSizeLimit)
        try await catalog.close()
    }
}
