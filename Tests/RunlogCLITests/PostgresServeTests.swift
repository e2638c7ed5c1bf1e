import Foundation
import RunlogTestSupport
import Testing

/// `runlog serve --catalog postgres://...` against a real PostgreSQL that the test kills and
/// restarts: what clients see while it is gone, and that the node comes back by itself.
@Suite struct PostgresServeTests {
    @Test(.slow, .timeLimit(.minutes(3))) func whilePostgresIsGoneCatalogRoutesAnswer503AndOpenStreamsGoOn() async throws {
        let postgres = try await PrivatePostgres()
        let server = try await ServerProcess(arguments: ["--catalog", postgres.url, "--progress-interval", "100ms"])
        func cleanUp() async {
            server.stop()
            await postgres.remove()
        }
        do {
            let runs = "/v1/workspaces/ws_1/runs"
            #expect(try RawConnection.request(port: server.port, "POST", runs, body: #"{"run_id":"run_1"}"#).status == 201)
            #expect(!FileManager.default.fileExists(atPath: server.storage + "/catalog.sqlite"), "a PostgreSQL catalog made a SQLite file")
            let started = try RawConnection.request(port: server.port, "POST", runs + "/run_1/events", body: #"{"type":"run.started"}"#, contentType: "application/x-ndjson")
            #expect(started.status == 200)

            // A live reader, connected and past the replay before PostgreSQL goes.
            let reader = try RawConnection(port: server.port, receiveTimeout: 120)
            defer { reader.close() }
            try reader.requestStream(runs + "/run_1/events")
            let replayed = try await offPool {
                var received: [UInt8] = []
                return reader.read(until: "event: run.started", into: &received)
            }
            #expect(replayed)

            try await postgres.kill()

            // Routes that need the catalog: 503, problem+json, Retry-After; health says so too.
            let list = try await ChildProcess.curl(["-s", "-i", server.base + runs])
            #expect(list.output.hasPrefix("HTTP/1.1 503"), "\(list.output)")
            #expect(list.output.lowercased().contains("retry-after: 5\r\n"), "\(list.output)")
            #expect(list.output.lowercased().contains("content-type: application/problem+json"), "\(list.output)")
            #expect(list.output.contains(#""type":"/problems/catalog-unavailable""#), "\(list.output)")
            #expect(!list.output.contains("127.0.0.1:"), "the problem names the database: \(list.output)")
            #expect(try await ChildProcess.curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", server.base + "/healthz"]).output == "503")

            // An open run needs no catalog to take events, and its reader gets them.
            let line = try RawConnection.request(
                port: server.port, "POST", runs + "/run_1/events", body: #"{"type":"console.line","payload":{"line":"while it was gone"}}"#,
                contentType: "application/x-ndjson"
            )
            #expect(line.status == 200, "\(line.body)")
            let live = try await offPool {
                var received: [UInt8] = []
                return reader.read(until: "while it was gone", into: &received)
            }
            #expect(live)

            // Its completion is stored, but the row cannot be written: 503, and the run is
            // completed in the catalog once PostgreSQL is back, without the producer's retry.
            let completion = try RawConnection.request(
                port: server.port, "POST", runs + "/run_1/events", body: #"{"type":"run.completed","event_id":"done-1","payload":{"status":"succeeded"}}"#,
                contentType: "application/x-ndjson"
            )
            #expect(completion.status == 503, "\(completion.body)")

            try await postgres.start()
            try await waitUntil("the run is completed in the catalog", within: .seconds(90), every: .milliseconds(200)) {
                let run = try RawConnection.request(port: server.port, "GET", runs + "/run_1")
                return run.status == 200 && run.body.contains(#""status":"succeeded""#)
            }
            #expect(try RawConnection.request(port: server.port, "GET", "/healthz").status == 200)
            // The reader's stream ends with the completion, as it would have without the outage.
            let rest = try await offPool { String(decoding: reader.readToEnd().bytes, as: UTF8.self) }
            #expect(rest.contains("event: run.completed"), "\(rest)")
            // The producer's retry of its completion is a duplicate, not an error.
            let retry = try RawConnection.request(
                port: server.port, "POST", runs + "/run_1/events", body: #"{"type":"run.completed","event_id":"done-1","payload":{"status":"succeeded"}}"#,
                contentType: "application/x-ndjson"
            )
            #expect(retry.status == 200 && retry.body.contains(#""duplicates":1"#), "\(retry.body)")
        } catch {
            await cleanUp()
            throw error
        }
        await cleanUp()
    }

    @Test func aCatalogThatCannotBeReachedOrIsNoURLStopsTheCommandWithOneLine() async throws {
        let postgres = try await PrivatePostgres()
        let url = postgres.url
        try await postgres.stop()
        let storage = TemporaryDirectory()
        defer { storage.remove() }
        let unreachable = try await ChildProcess.runlog(["serve", "--port", "0", "--storage", storage.path, "--catalog", url])
        #expect(unreachable.status == 1)
        #expect(unreachable.error.hasPrefix("Error: cannot open the catalog postgres://runlog@127.0.0.1:"), "\(unreachable.error)")
        #expect(unreachable.error.split(separator: "\n").count == 1, "\(unreachable.error)")

        for bad in ["mysql://u@h/db", "postgres://u@h/", "postgres://h/db", "postgres://u@h/db?sslmode=maybe", "postgres://u@h/db?pool=9"] {
            let refused = try await ChildProcess.runlog(["verify", "--storage", storage.path], environment: ["RUNLOG_CATALOG": bad])
            #expect(refused.status != 0)
            #expect(refused.error.hasPrefix("Error: --catalog must be sqlite or postgres://"), "\(bad): \(refused.error)")
            #expect(refused.error.split(separator: "\n").count == 1, "\(bad): \(refused.error)")
        }
        #expect(!FileManager.default.fileExists(atPath: storage.path + "/catalog.sqlite"))
        await postgres.remove()
    }
}
