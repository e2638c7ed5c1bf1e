import Foundation
import RunlogCatalog
import RunlogTestSupport
import Testing

/// `runlog catalog copy` and `runlog catalog rebuild`: moving a store between backends, and
/// getting a catalog back from the files alone.
@Suite struct CatalogCommandTests {
    /// Three runs made by `runlog append` on a SQLite catalog: one completed, one started, one queued.
    func storeWithThreeRuns(_ storage: [String]) async throws {
        let runs: [(String, String)] = [
            ("run_a", #"{"type":"run.started"}"# + "\n" + #"{"type":"step.failed","payload":{"message":"boom"}}"# + "\n" + #"{"type":"run.completed","payload":{"status":"failed","exit_code":3}}"#),
            ("run_b", #"{"type":"run.started"}"# + "\n" + #"{"type":"console.line","payload":{"line":"hi"}}"#),
            ("run_c", #"{"type":"console.line","payload":{"line":"queued"}}"#),
        ]
        for (run, lines) in runs {
            let appended = try await ChildProcess.runlog(["append", "ws_1", run] + storage, input: lines + "\n")
            #expect(appended.status == 0, "\(appended)")
        }
    }

    func json(_ text: String) throws -> [String: Int] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Int], "\(text)")
    }

    @Test func aCopyToPostgresAndBackIsCompleteAndSafeToRepeat() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let storage = ["--storage", directory.path]
        try await storeWithThreeRuns(storage)
        try await TestPostgres.withDatabase { location in
            let postgres = location.description
            let first = try await ChildProcess.runlog(["catalog", "copy", "--from", "sqlite", "--to", postgres] + storage)
            #expect(first.status == 0, "\(first)")
            #expect(try json(first.output) == ["rows_read": 3, "rows_created": 3, "rows_replaced": 0, "rows_unchanged": 0])
            let again = try await ChildProcess.runlog(["catalog", "copy", "--from", "sqlite", "--to", postgres] + storage)
            #expect(try json(again.output) == ["rows_read": 3, "rows_created": 0, "rows_replaced": 0, "rows_unchanged": 3])

            // The store on PostgreSQL checks out against its files, and reads the same.
            let verified = try await ChildProcess.runlog(["verify", "--catalog", postgres] + storage)
            #expect(verified.status == 0, "\(verified)")
            #expect(verified.output.contains("checked 3 runs: 0 problems"), "\(verified.output)")

            // And back: a lost SQLite catalog comes whole from PostgreSQL.
            let sqlite = directory.path + "/catalog.sqlite"
            try FileManager.default.removeItem(atPath: sqlite)
            let back = try await ChildProcess.runlog(["catalog", "copy", "--from", postgres, "--to", "sqlite"] + storage)
            #expect(try json(back.output) == ["rows_read": 3, "rows_created": 3, "rows_replaced": 0, "rows_unchanged": 0])
            #expect(try await ChildProcess.runlog(["verify"] + storage).status == 0)
        }
        let same = try await ChildProcess.runlog(["catalog", "copy", "--from", "sqlite", "--to", "sqlite"] + storage)
        #expect(same.status == 1 && same.error.hasPrefix("Error: --from and --to are the same catalog"), "\(same)")
    }

    @Test func aLostCatalogIsRebuiltFromTheLogFiles() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let storage = ["--storage", directory.path]
        try await storeWithThreeRuns(storage)
        try FileManager.default.removeItem(atPath: directory.path + "/catalog.sqlite")

        let rebuilt = try await ChildProcess.runlog(["catalog", "rebuild"] + storage)
        #expect(rebuilt.status == 0, "\(rebuilt)")
        #expect(try json(rebuilt.output) == ["runs_found": 3, "rows_created": 3, "rows_present": 0])
        let verified = try await ChildProcess.runlog(["verify"] + storage)
        #expect(verified.status == 0 && verified.output.contains("checked 3 runs: 0 problems"), "\(verified)")
        #expect(try json(try await ChildProcess.runlog(["catalog", "rebuild"] + storage).output) == ["runs_found": 3, "rows_created": 0, "rows_present": 3])

        // Into an empty PostgreSQL catalog too; what the rows say comes from the events.
        try await TestPostgres.withDatabase { location in
            let postgres = ["--catalog", location.description]
            let into = try await ChildProcess.runlog(["catalog", "rebuild"] + storage + postgres)
            #expect(try json(into.output) == ["runs_found": 3, "rows_created": 3, "rows_present": 0])
            let server = try await ServerProcess(arguments: postgres, storage: directory.path)
            defer { server.stop() }
            let failed = try RawConnection.request(port: server.port, "GET", "/v1/workspaces/ws_1/runs/run_a")
            #expect(failed.body.contains(#""status":"failed""#) && failed.body.contains(#""exit_code":3"#), "\(failed.body)")
            let listed = try RawConnection.request(port: server.port, "GET", "/v1/workspaces/ws_1/runs?status=running")
            #expect(listed.body.contains(#""id":"run_b""#) && !listed.body.contains("run_a"), "\(listed.body)")
        }
    }
}
