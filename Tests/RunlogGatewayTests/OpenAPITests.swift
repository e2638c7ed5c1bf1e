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
