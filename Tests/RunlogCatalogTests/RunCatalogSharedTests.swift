import RunlogTestSupport
import Testing

@testable import RunlogCatalog

/// The rest of the protocol, the same on every backend: changes in a transaction, live runs,
/// the verification walk and retention's scans and marks.
@Suite struct RunCatalogSharedTests {
    @Test(arguments: CatalogBackend.allCases) func anUpdateChangesEveryFieldAndRefusesAMissingRun(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            var original = record("run_1", createdAt: 1000, configuration: "build")
            original.metadata = #"{"branch":"main"}"#
            try await catalog.create(original)
            let updated = try await catalog.update(workspace: "ws_1", id: "run_1") { row in
                row.status = .failed
                row.exitCode = -2
                row.startedAt = 1100
                row.completedAt = 1200
                row.lastSequence = 7
                row.eventCount = 7
                row.byteSize = 700
                row.errorCount = 2
                row.summary = #"{"schema":"runlog.run_summary/v1"}"#
                row.logsCompressedAt = 1300
            }
            #expect(try await catalog.run(workspace: "ws_1", id: "run_1") == updated)
            #expect(updated.metadata == original.metadata && updated.exitCode == -2 && updated.logsCompressedAt == 1300)
            await #expect(throws: RunCatalogError.runNotFound(workspace: "ws_1", run: "nope")) {
                try await catalog.update(workspace: "ws_1", id: "nope") { $0.status = .running }
            }
        }
    }

    @Test(arguments: CatalogBackend.allCases) func aFailingChangeLeavesTheRowAsItWas(_ backend: CatalogBackend) async throws {
        struct Refused: Error {}
        try await backend.withCatalog { catalog in
            try await catalog.create(record("run_1", createdAt: 1000))
            await #expect(throws: Refused.self) {
                try await catalog.update(workspace: "ws_1", id: "run_1") { row in
                    row.status = .running
                    throw Refused()
                }
            }
            #expect(try await catalog.run(workspace: "ws_1", id: "run_1")?.status == .queued)
        }
    }

    @Test(arguments: CatalogBackend.allCases) func liveRunsAndTheVerificationWalkSeeEveryWorkspace(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            for (index, workspace) in ["ws_b", "ws_a", "ws_c"].enumerated() {
                try await catalog.create(record("run_2", createdAt: Int64(index), status: .running, workspace: workspace))
                try await catalog.create(record("run_1", createdAt: Int64(index), status: .succeeded, workspace: workspace))
                try await catalog.create(record("run_3", createdAt: Int64(index), workspace: workspace))
            }
            let live = try await catalog.liveRuns().map { "\($0.workspaceID)/\($0.id)" }.sorted()
            #expect(live == ["ws_a/run_2", "ws_a/run_3", "ws_b/run_2", "ws_b/run_3", "ws_c/run_2", "ws_c/run_3"])
            var walked: [String] = []
            var last: (workspace: String, id: String)?
            while true {
                let page = try await catalog.allRuns(after: last, size: 4)
                guard let end = page.last else { break }
                walked += page.map { "\($0.workspaceID)/\($0.id)" }
                last = (end.workspaceID, end.id)
            }
            #expect(walked == ["a", "b", "c"].flatMap { ws in (1...3).map { "ws_\(ws)/run_\($0)" } })
        }
    }

    @Test(arguments: CatalogBackend.allCases) func retentionScansGoOldestFirstByKeysetAndCountWhatTheyWillSee(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            // Nine finished runs, three per completion time, and two live ones.
            for index in 0..<9 {
                try await catalog.create(record("run_\(index)", createdAt: Int64(index), workspace: index % 2 == 0 ? "ws_1" : "ws_2"))
                try await catalog.update(workspace: index % 2 == 0 ? "ws_1" : "ws_2", id: "run_\(index)") { row in
                    row.status = .succeeded
                    row.completedAt = Int64(100 + index / 3)
                }
            }
            try await catalog.create(record("live_1", createdAt: 5, status: .running))
            try await catalog.create(record("live_2", createdAt: 50))

            #expect(try await catalog.countCompletedRuns(in: 100..<102, logs: .awaitingCompression) == 6)
            var seen: [String] = []
            var position: ScanPosition?
            while true {
                let page = try await catalog.completedRuns(in: 100..<102, logs: .awaitingCompression, after: position, limit: 4)
                guard let last = page.last else { break }
                seen += page.map(\.id)
                position = ScanPosition(time: last.completedAt!, workspaceID: last.workspaceID, id: last.id)
            }
            #expect(seen == ["run_0", "run_2", "run_1", "run_4", "run_3", "run_5"])

            #expect(try await catalog.markLogsCompressed(workspace: "ws_1", id: "run_0", at: 200))
            #expect(try await catalog.countCompletedRuns(in: 100..<102, logs: .awaitingCompression) == 5)
            #expect(try await catalog.countCompletedRuns(in: 100..<102, logs: .present) == 6)

            // Deleting logs keeps the row and the earliest deletion time, and ends compression marks.
            #expect(try await catalog.markLogsDeleted(workspace: "ws_1", id: "run_0", at: 300))
            #expect(try await catalog.markLogsDeleted(workspace: "ws_1", id: "run_0", at: 400))
            let deleted = try #require(try await catalog.run(workspace: "ws_1", id: "run_0"))
            #expect(deleted.eventsPath == nil && deleted.logsDeletedAt == 300)
            #expect(try await !catalog.markLogsCompressed(workspace: "ws_1", id: "run_0", at: 500))
            #expect(try await catalog.countCompletedRuns(in: 0..<1000, logs: .deleted) == 1)
            #expect(try await catalog.completedRuns(in: 0..<1000, logs: .deleted, after: nil, limit: 10).map(\.id) == ["run_0"])

            #expect(try await catalog.countLiveRuns(createdBefore: 50) == 1)
            #expect(try await catalog.liveRuns(createdBefore: 51, after: nil, limit: 10).map(\.id) == ["live_1", "live_2"])
            #expect(
                try await catalog.liveRuns(createdBefore: 51, after: ScanPosition(time: 5, workspaceID: "ws_1", id: "live_1"), limit: 10).map(\.id) == ["live_2"]
            )

            #expect(try await catalog.deleteRun(workspace: "ws_1", id: "run_0"))
            #expect(try await !catalog.deleteRun(workspace: "ws_1", id: "run_0"))
            #expect(try await !catalog.markLogsDeleted(workspace: "ws_1", id: "run_0", at: 1))
            #expect(try await catalog.run(workspace: "ws_1", id: "run_0") == nil)
        }
    }

    @Test(arguments: CatalogBackend.allCases) func idsOrderByTheirBytesWhateverTheBackend(_ backend: CatalogBackend) async throws {
        try await backend.withCatalog { catalog in
            // A locale's collation would put "a" before "B" and ignore "_" or "-"; bytes do not.
            for id in ["a", "B", "_x", "-y", "Z.1", "z"] { try await catalog.create(record(id, createdAt: 1)) }
            #expect(try await catalog.list(workspace: "ws_1", limit: 10).items.map(\.id) == ["z", "a", "_x", "Z.1", "B", "-y"])
        }
    }
}
