import Foundation
import GRDB
import Testing

@testable import RunlogCatalog

@Suite struct RunCatalogTests {
    func withCatalog(_ body: (RunCatalog) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "runlog-catalog-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer {
            do { try FileManager.default.removeItem(atPath: directory) } catch { Issue.record("cleanup: \(error)") }
        }
        let catalog = try RunCatalog(path: directory + "/catalog.sqlite")
        try await body(catalog)
        try catalog.close()
    }

    func record(_ id: String, createdAt: Int64, status: RunStatus = .queued, configuration: String? = nil, workspace: String = "ws_1") -> RunRecord {
        RunRecord(workspaceID: workspace, id: id, configurationID: configuration, status: status, createdAt: createdAt, eventsPath: "workspaces/\(workspace)/runs/\(id)/logs")
    }

    @Test func createsAndRefusesADuplicateID() async throws {
        try await withCatalog { catalog in
            try await catalog.create(record("run_1", createdAt: 1000))
            await #expect(throws: RunCatalog.Error.runExists(workspace: "ws_1", run: "run_1")) {
                try await catalog.create(record("run_1", createdAt: 2000))
            }
            // The same id in another workspace is another run.
            try await catalog.create(record("run_1", createdAt: 2000, workspace: "ws_2"))
            #expect(try await catalog.run(workspace: "ws_1", id: "run_1")?.createdAt == 1000)
            #expect(try await catalog.run(workspace: "ws_1", id: "nope") == nil)
        }
    }

    @Test func listsNewestFirstWithKeysetPaginationThroughTies() async throws {
        try await withCatalog { catalog in
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

    @Test func filtersByStatusConfigurationAndTime() async throws {
        try await withCatalog { catalog in
            try await catalog.create(record("a", createdAt: 100, status: .queued, configuration: "build"))
            try await catalog.create(record("b", createdAt: 200, status: .running, configuration: "build"))
            try await catalog.create(record("c", createdAt: 300, status: .failed, configuration: "deploy"))
            try await catalog.create(record("d", createdAt: 400, status: .failed, configuration: "build"))
            func ids(_ filter: RunCatalog.Filter) async throws -> [String] {
                try await catalog.list(workspace: "ws_1", filter: filter, limit: 50).items.map(\.id)
            }
            #expect(try await ids(.init(status: .failed)) == ["d", "c"])
            #expect(try await ids(.init(configurationID: "build")) == ["d", "b", "a"])
            #expect(try await ids(.init(status: .failed, configurationID: "build")) == ["d"])
            #expect(try await ids(.init(createdAfter: 100, createdBefore: 400)) == ["c", "b"])
        }
    }

    @Test func refusesACursorItDidNotIssue() async throws {
        try await withCatalog { catalog in
            await #expect(throws: RunCatalog.Error.invalidCursor) {
                _ = try await catalog.list(workspace: "ws_1", limit: 5, cursor: "not-a-cursor!")
            }
        }
    }

    @Test func progressNeverOverwritesATerminalRow() async throws {
        try await withCatalog { catalog in
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
        try await withCatalog { catalog in
            let plans = try await catalog.database.read { db -> [String] in
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
}
