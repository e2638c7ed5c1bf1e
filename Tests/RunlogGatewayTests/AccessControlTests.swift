import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import RunlogAuth
import RunlogCatalog
@testable import RunlogGateway
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(2))) struct AccessControlTests {
    static let key = Array("0123456789abcdef0123456789abcdef-runlog-test-key".utf8)

    /// The server's authority (the real clock), or one whose clock stands still at `date`.
    static func authority(at date: Date? = nil) async throws -> TokenAuthority {
        try await TokenAuthority(key: key, clock: { date ?? Date() })
    }

    enum Case: String, CaseIterable {
        case none, expired, badSignature, algNone, wrongWorkspace, wrongScope, otherRun, right
    }

    struct Route {
        var method: HTTPRequest.Method
        var path: String
        var body: String?
        var scope: AccessScope
        var success: HTTPResponse.Status
    }

    static let routes = [
        Route(method: .post, path: "/v1/workspaces/ws_1/runs", body: #"{"run_id":"run_new"}"#, scope: .runsCreate, success: .created),
        Route(method: .get, path: "/v1/workspaces/ws_1/runs", scope: .eventsRead, success: .ok),
        Route(method: .get, path: "/v1/workspaces/ws_1/runs/run_1", scope: .eventsRead, success: .ok),
        Route(method: .get, path: "/v1/workspaces/ws_1/runs/run_1/summary", scope: .eventsRead, success: .ok),
        Route(method: .post, path: "/v1/workspaces/ws_1/runs/run_1/events", body: #"{"type":"console.line","payload":{}}"#, scope: .eventsAppend, success: .ok),
        Route(method: .get, path: "/v1/workspaces/ws_1/runs/run_1/events?format=json", scope: .eventsRead, success: .ok),
        Route(method: .get, path: "/v1/workspaces/ws_1/runs/run_1/events?format=ndjson", scope: .eventsRead, success: .ok),
        Route(method: .get, path: "/metrics", scope: .runsAdmin, success: .ok),
    ]

    static func token(_ testCase: Case, for route: Route) async throws -> String? {
        let everyReadWrite: [AccessScope] = [.runsCreate, .eventsAppend, .eventsRead]
        switch testCase {
        case .none:
            return nil
        case .expired:
            return try await authority(at: Date().addingTimeInterval(-3600)).issue(workspaces: ["ws_1"], scopes: [route.scope], ttl: .seconds(60))
        case .badSignature:
            let forger = try await TokenAuthority(key: Array("another key, just as long as the real one!".utf8))
            return try await forger.issue(workspaces: ["ws_1"], scopes: [route.scope], ttl: .seconds(60))
        case .algNone:
            let signed = try await authority().issue(workspaces: ["ws_1"], scopes: [route.scope], ttl: .seconds(60))
            let payload = signed.split(separator: ".")[1]
            let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString()
                .replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            return "\(header).\(payload)."
        case .wrongWorkspace:
            return try await authority().issue(workspaces: ["ws_2"], scopes: route.scope == .runsAdmin ? everyReadWrite : [route.scope], ttl: .seconds(60))
        case .wrongScope:
            let others = AccessScope.allCases.filter { $0 != route.scope && $0 != .runsAdmin }
            return try await authority().issue(workspaces: ["ws_1"], scopes: others, ttl: .seconds(60))
        case .otherRun:
            return try await authority().issue(workspaces: ["ws_1"], scopes: everyReadWrite, run: "run_other", ttl: .seconds(60))
        case .right:
            return try await authority().issue(workspaces: ["ws_1"], scopes: [route.scope], ttl: .seconds(60))
        }
    }

    static func expected(_ testCase: Case, _ route: Route) -> HTTPResponse.Status {
        switch testCase {
        case .none, .expired, .badSignature, .algNone: return .unauthorized
        case .wrongWorkspace, .wrongScope, .otherRun: return .forbidden
        case .right: return route.success
        }
    }

    @Test func everyRouteRefusesAllButTheRightToken() async throws {
        let authority = try await Self.authority()
        try await withGateway({ $0.accessControl = authority }) { client, _, runs in
            _ = try await runs.createRun(workspace: "ws_1", runID: "run_1")
            for route in Self.routes {
                for testCase in Case.allCases {
                    var headers: HTTPFields = [:]
                    if let token = try await Self.token(testCase, for: route) { headers[.authorization] = "Bearer \(token)" }
                    let response = try await client.execute(
                        uri: route.path, method: route.method, headers: headers, body: route.body.map { ByteBuffer(string: $0) }
                    )
                    let label = "\(route.method) \(route.path) with \(testCase)"
                    #expect(response.status == Self.expected(testCase, route), "\(label): \(text(response))")
                    if response.status == .unauthorized {
                        #expect(response.headers[.wwwAuthenticate]?.hasPrefix("Bearer realm=\"runlog\"") == true, "\(label)")
                        #expect(response.headers[.contentType] == "application/problem+json", "\(label)")
                    }
                }
            }
            // Nothing refused was done: one run created, one event appended.
            #expect(try await runs.store.lastSequence(of: RunKey(workspace: "ws_1", run: "run_1")) == 1)
        }
    }

    @Test func aTokenForOneWorkspaceLearnsNothingAboutAnother() async throws {
        let authority = try await Self.authority()
        try await withGateway({ $0.accessControl = authority }) { client, _, runs in
            _ = try await runs.createRun(workspace: "ws_2", runID: "run_exists")
            let token = try await authority.issue(workspaces: ["ws_1"], scopes: AccessScope.allCases.filter { $0 != .runsAdmin }, ttl: .seconds(60))
            var answers: [String] = []
            for path in ["/v1/workspaces/ws_2/runs/run_exists", "/v1/workspaces/ws_2/runs/run_missing", "/v1/workspaces/ws_2/runs/run_exists/events", "/v1/workspaces/ws_2/runs/run_missing/events"] {
                let response = try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer \(token)"])
                let body = try object(response)
                answers.append("\(response.status.code) \(body["type"] ?? "") \(body["detail"] ?? "")")
            }
            #expect(Set(answers).count == 1, "\(answers)")
            #expect(answers[0].hasPrefix("403"))
        }
    }

    @Test func whatARequestNeedsComesFromTheRouteTableEvenWhenNoRouteMatches() async throws {
        let authority = try await Self.authority()
        try await withGateway({ $0.accessControl = authority }) { client, _, runs in
            _ = try await runs.createRun(workspace: "ws_1", runID: "run_1")
            func status(_ method: HTTPRequest.Method, _ uri: String, scopes: [AccessScope]?) async throws -> HTTPResponse.Status {
                var headers: HTTPFields = [:]
                if let scopes {
                    headers[.authorization] = "Bearer \(try await authority.issue(workspaces: ["ws_1"], scopes: scopes, ttl: .seconds(60)))"
                }
                return try await client.execute(uri: uri, method: method, headers: headers).status
            }
            // A method the path does not take: 405, but only to a token that may read the path.
            #expect(try await status(.delete, "/v1/workspaces/ws_1/runs/run_1", scopes: nil) == .unauthorized)
            #expect(try await status(.delete, "/v1/workspaces/ws_1/runs/run_1", scopes: [.eventsAppend]) == .forbidden)
            #expect(try await status(.delete, "/v1/workspaces/ws_1/runs/run_1", scopes: [.eventsRead]) == .methodNotAllowed)
            // A /v1 path no route has: 404 to any valid token, whatever it allows.
            #expect(try await status(.get, "/v1/workspaces/ws_1/nothing", scopes: nil) == .unauthorized)
            #expect(try await status(.get, "/v1/workspaces/ws_1/nothing", scopes: [.eventsAppend]) == .notFound)
            // Creating a run and streaming it needs both scopes.
            #expect(try await status(.post, "/v1/workspaces/ws_1/runs?stream=true", scopes: [.runsCreate]) == .forbidden)
            #expect(try await status(.post, "/v1/workspaces/ws_1/runs", scopes: [.runsCreate]) == .created)
        }
    }

    @Test func tokensComeAsHeaderQueryOrCookieAndNeverReachTheLogs() async throws {
        let capture = CapturedLog()
        let authority = try await Self.authority()
        var configuration = GatewayConfiguration()
        configuration.port = 0
        configuration.accessControl = authority
        let token = try await authority.issue(workspaces: ["ws_1"], scopes: [.runsCreate, .eventsRead, .eventsAppend], ttl: .seconds(60))
        let forged = token.dropLast(4) + "AAAA"
        try await withRunService(logger: capture.logger()) { runs in
            try await Gateway(runs: runs, configuration: configuration, logger: capture.logger()).makeApplication().test(.live) { client in
                let status1 = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, headers: [.authorization: "Bearer \(token)"], body: ByteBuffer(string: #"{"run_id":"run_1"}"#)).status
                #expect(status1 == .created)
                let status2 = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1?access_token=\(token)", method: .get).status
                #expect(status2 == .ok)
                let status3 = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1", method: .get, headers: [.cookie: "theme=dark; runlog_token=\(token)"]).status
                #expect(status3 == .ok)
                let status4 = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1?access_token=\(forged)", method: .get).status
                #expect(status4 == .unauthorized)
                let status5 = try await client.execute(uri: "/v1/workspaces/ws_2/runs/run_1?access_token=\(token)", method: .get).status
                #expect(status5 == .forbidden)
                let status6 = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_none/events?format=ndjson&access_token=\(token)", method: .get).status
                #expect(status6 == .notFound)
            }
        }
        let lines = capture.lines
        #expect(!lines.isEmpty, "the server logged nothing: the check would prove nothing")
        let signature = String(token.split(separator: ".")[2])
        for line in lines {
            #expect(!line.contains(signature) && !line.contains(String(forged.suffix(20))) && !line.contains("access_token"), "\(line)")
        }
    }

    @Test func aLiveStreamEndsWhenItsTokenExpiresAndResumesWithAFreshOne() async throws {
        let authority = try await Self.authority()
        try await withGateway({ $0.accessControl = authority }) { _, base, runs in
            let key = try RunKey(workspace: "ws_1", run: "run_1")
            _ = try await runs.createRun(workspace: "ws_1", runID: "run_1")
            _ = try await runs.append(try EventBatch(ndjson: Array(#"{"type":"console.line","payload":{"n":1}}"#.utf8)), to: key)
            // The run stays live: without the expiry this stream would never end. The token must
            // still be valid when the request is checked; on a machine busy enough to delay that
            // past its 1.5 s (seen once in a full parallel run), the attempt proves nothing, so
            // it is made again with a fresh token, at most three times.
            var shortLived = ""
            var first = (ids: [Int64](), comments: 0, status: 0)
            for _ in 0..<3 {
                shortLived = try await authority.issue(workspaces: ["ws_1"], scopes: [.eventsRead], ttl: .milliseconds(1500))
                first = try await readSSE(base + "/v1/workspaces/ws_1/runs/run_1/events?access_token=\(shortLived)")
                if first.status != 401 { break }
            }
            #expect(first.status == 200 && first.ids == [1])
            _ = try await runs.append(try EventBatch(ndjson: Array(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#.utf8)), to: key)
            // The expired token is refused; a fresh one resumes after the last id seen.
            let refused = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/v1/workspaces/ws_1/runs/run_1/events?access_token=\(shortLived)"), timeout: .seconds(10))
            #expect(refused.status == .unauthorized)
            _ = try await refused.body.collect(upTo: 1 << 16)
            let fresh = try await authority.issue(workspaces: ["ws_1"], scopes: [.eventsRead], ttl: .seconds(60))
            let second = try await readSSE(base + "/v1/workspaces/ws_1/runs/run_1/events?access_token=\(fresh)", lastEventID: "1")
            #expect(second.ids == [2])
        }
    }

    @Test func corsAllowsConfiguredOriginsOnly() async throws {
        let authority = try await Self.authority()
        try await withGateway({ $0.accessControl = authority; $0.corsOrigins = ["https://app.example.com"] }) { client, _, _ in
            let preflight = try await client.execute(
                uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .options,
                headers: [.origin: "https://app.example.com", .accessControlRequestMethod: "GET", .accessControlRequestHeaders: "authorization, last-event-id"]
            )
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example.com")
            let allowed = preflight.headers[.accessControlAllowHeaders]?.lowercased() ?? ""
            #expect(allowed.contains("authorization") && allowed.contains("last-event-id"))
            // Errors carry the headers too, so the page can read them.
            let refused = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .get, headers: [.origin: "https://app.example.com"])
            #expect(refused.status == .unauthorized && refused.headers[.accessControlAllowOrigin] == "https://app.example.com")
            let other = try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .get, headers: [.origin: "https://evil.example.net"])
            #expect(other.headers[.accessControlAllowOrigin] == nil)
        }
    }

    @Test func everyErrorCarriesTheCORSHeadersAndTheRequestID() async throws {
        try await withGateway({ $0.corsOrigins = ["https://app.example.com"] }) { client, _, _ in
            let origin: HTTPFields = [.origin: "https://app.example.com"]
            var json = origin
            json[.contentType] = "application/json"
            func check(_ uri: String, _ method: HTTPRequest.Method, _ body: String?, _ status: HTTPResponse.Status, _ kind: String) async throws {
                let response = try await client.execute(uri: uri, method: method, headers: json, body: body.map { ByteBuffer(string: $0) })
                let label = "\(method) \(uri)"
                #expect(response.status == status, "\(label): \(text(response))")
                #expect(response.headers[.accessControlAllowOrigin] == "https://app.example.com", "\(label)")
                #expect(response.headers[HTTPField.Name("X-Request-Id")!]?.isEmpty == false, "\(label)")
                #expect(response.headers[.contentType] == "application/problem+json", "\(label)")
                #expect((try object(response)["type"] as? String) == "/problems/\(kind)", "\(label)")
            }
            let runs = "/v1/workspaces/ws_1/runs"
            for run in ["run_1", "run_2"] {
                let created = try await client.execute(uri: runs, method: .post, headers: json, body: ByteBuffer(string: #"{"run_id":"\#(run)"}"#))
                #expect(created.status == .created && created.headers[.accessControlAllowOrigin] == "https://app.example.com")
            }
            _ = try await client.execute(uri: runs + "/run_1/events", method: .post, headers: json, body: ByteBuffer(string: #"{"type":"run.completed","payload":{"status":"failed"}}"#))
            try await check(runs + "/ghost", .get, nil, .notFound, "run-not-found")
            try await check(runs, .post, #"{"run_id":"run_2"}"#, .conflict, "run-exists")
            try await check(runs + "/run_1/events", .post, #"{"type":"a.b"}"#, .conflict, "run-closed")
            try await check(runs + "/run_2/events?expected_last_sequence=7", .post, #"{"type":"a.b"}"#, .conflict, "sequence-mismatch")
            try await check(runs + "/run_2/events", .post, #"{"type":"Bad Type"}"#, .badRequest, "invalid-event")
            try await check(runs + "/run_2", .delete, nil, .methodNotAllowed, "method-not-allowed")
        }
    }
}
