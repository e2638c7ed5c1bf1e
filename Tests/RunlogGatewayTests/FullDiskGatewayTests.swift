import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
@testable import RunlogGateway
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Testing

/// What producers, balancers and operators see when the storage volume fills up.
@Suite(.timeLimit(.minutes(1))) struct FullDiskGatewayTests {
    @Test func aFullVolumeAnswers507WithoutServerPathsAndHealthAndMetricsFollowIt() async throws {
        let volume = try await SmallVolume(bytes: 2 << 20)
        let root = volume.path
        do {
            try await withServedGateway(root: root) { client, _, _ in
                #expect(try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1"}"#)).status == .created)
                let events = (1...60).map { #"{"type":"step.log","payload":{"n":\#($0),"pad":"\#(String(repeating: "x", count: 400))"}}"# }.joined(separator: "\n")
                try volume.fill()

                let refused = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: events))
                #expect(refused.status.code == 507)
                #expect(refused.headers[.contentType] == "application/problem+json")
                #expect(try object(refused)["type"] as? String == "/problems/insufficient-storage")
                #expect(!text(refused).contains(root), "\(text(refused))")
                // The catalog lives on the same volume: a new run cannot be stored either.
                let notCreated = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_2"}"#))
                #expect(notCreated.status.code == 507, "\(text(notCreated))")
                let unhealthy = try await client.execute(uri: "/healthz", method: .get)
                #expect(unhealthy.status == .serviceUnavailable)
                #expect(!text(unhealthy).contains(root), "\(text(unhealthy))")
                #expect(text(try await client.execute(uri: "/metrics", method: .get)).contains("runlog_storage_out_of_space 1"))
                #expect(text(try await client.execute(uri: "/metrics", method: .get)).contains(#"runlog_storage_write_failures_total{reason="out_of_space"} "#))

                try volume.free()
                let accepted = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: events))
                #expect(accepted.status == .ok, "\(text(accepted))")
                #expect(try object(accepted)["last_sequence"] as? Int == 60)
                #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
                // The refused creation left nothing behind: the same id can be created now.
                let created = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_2"}"#))
                #expect(created.status == .created, "\(text(created))")
                #expect(text(try await client.execute(uri: "/metrics", method: .get)).contains("runlog_storage_out_of_space 0"))
            }
        } catch {
            Issue.record(error)
        }
        await volume.remove()
    }

    @Test func noProblemBodyNamesAServerPath() {
        let secret = "/srv/secret/storage/workspaces/ws_1/runs/run_1/logs/events.ndjson"
        let failures: [RunError] = [
            .storage(.io(SystemError("write", path: secret, errno: EIO))),
            .storage(.outOfSpace(SystemError("write", path: secret, errno: ENOSPC))),
            .storage(.corruptLog("\(secret) is 10 bytes but 20 were written")),
            .catalog("SQLite error 14: unable to open database file \(secret)"),
            .outOfSpace("database or disk is full \(secret)"),
        ]
        for failure in failures {
            let problem = Problem.from(failure)
            #expect(!problem.detail.contains("/srv/secret"), "\(problem.detail)")
            // What failed still reaches the server's log.
            #expect(problem.description.contains(secret), "\(problem)")
        }
        #expect(Problem.from(failures[1]).status.code == 507)
        #expect(Problem.from(failures[4]).status.code == 507)
    }
}
