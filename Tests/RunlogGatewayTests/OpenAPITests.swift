import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import RunlogCatalog
@testable import RunlogGateway
import RunlogRuns
import RunlogStorage
import RunlogTestSupport
import Testing

@Suite struct OpenAPITests {
    /// `/v1/workspaces/{ws}/runs` for both `:ws` (Hummingbird) and `{ws}` (OpenAPI).
    static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/").map { $0.hasPrefix(":") || $0.hasPrefix("{") ? "{}" : String($0) }.joined(separator: "/")
    }

    /// Path → methods in docs/openapi.yaml (read loosely: path keys, then method keys under them).
    static func documented() throws -> [String: Set<String>] {
        let text = String(decoding: Gateway.openAPIDocument, as: UTF8.self)
        var result: [String: Set<String>] = [:]
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  /") && line.hasSuffix(":") {
                current = normalized(String(line.dropFirst(2).dropLast()))
                result[current!] = []
            } else if line.hasPrefix("components:") {
                current = nil
            } else if let path = current, line.hasPrefix("    "), !line.hasPrefix("     "),
                let method = ["get", "post", "put", "delete", "patch"].first(where: { line == "    \($0):" })
            {
                result[path]?.insert(method.uppercased())
            }
        }
        return result
    }

    @Test func theDocumentStatesThePatternsTheServerChecks() {
        let text = String(decoding: Gateway.openAPIDocument, as: UTF8.self)
        #expect(text.contains("pattern: '\(TypeFilter.pattern)'"))
        #expect(text.contains("maxLength: \(TypeFilter.maxLength)"))
        #expect(text.contains("pattern: '\(ListCursor.pattern)'"))
    }

    @Test func valuesTheDocumentAllowsAreAccepted() async throws {
        try await withGateway { client, _, _ in
            #expect(try await client.execute(uri: "/v1/workspaces/ws_1/runs", method: .post, body: ByteBuffer(string: #"{"run_id":"run_1","configuration_id":null,"metadata":null}"#)).status == .created)
            let events = (1...5).map { #"{"type":"step.log","payload":{"n":\#($0)}}"# }.joined(separator: "\n")
            #expect(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events", method: .post, headers: ndjson, body: ByteBuffer(string: events)).status == .ok)
            // An empty body appends nothing.
            let empty = try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events?expected_last_sequence=5", method: .post, body: ByteBuffer())
            #expect(empty.status == .ok)
            #expect(try object(empty)["appended"] as? Int == 0)
            let json: HTTPFields = [.accept: "application/json"]
            // after_sequence and from_sequence together: the later bound holds.
            let both = try object(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events?after_sequence=1&from_sequence=4", method: .get, headers: json))
            #expect((both["items"] as? [[String: Any]])?.compactMap { $0["sequence"] as? Int } == [4, 5])
            // A page asked larger than the largest is the largest, not an error.
            #expect(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events?limit=9223372036854775807", method: .get, headers: json).status == .ok)
            // A type filter longer than any stored type matches nothing; it is not an error.
            let long = "a." + String(repeating: "b", count: 300) + ",step.*"
            #expect(try await client.execute(uri: "/v1/workspaces/ws_1/runs/run_1/events?types=\(long)", method: .get, headers: json).status == .ok)
            // Cursors of the documented shape are positions, whether or not a page ended there.
            #expect(try await client.execute(uri: "/v1/workspaces/ws_1/runs?cursor=0~a", method: .get).status == .ok)
        }
    }

    @Test func everyRegisteredRouteIsDocumentedAndAnsweredFor405() async throws {
        try await withRunService { runs in
            let gateway = Gateway(runs: runs, configuration: GatewayConfiguration(), logger: quietLogger)
            let registered = Set(gateway.makeRouter().routes.map { "\($0.method.rawValue) \(Self.normalized($0.path.description))" })
            let declared = Set(Gateway.routes.routes.map { "\($0.method.rawValue) \(Self.normalized($0.path))" })
            let documented = Set(try Self.documented().flatMap { path, methods in methods.map { "\($0) \(path)" } })
            #expect(registered == declared, "the route table is out of step with the router")
            #expect(registered.subtracting(documented).isEmpty, "not in docs/openapi.yaml: \(registered.subtracting(documented))")
            #expect(documented.subtracting(registered).isEmpty, "documented but not served: \(documented.subtracting(registered))")
        }
    }
}
