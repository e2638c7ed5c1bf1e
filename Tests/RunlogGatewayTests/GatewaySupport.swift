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

/// A gateway on a fresh storage root, served on a real socket for the test.
func withGateway(
    segmentBytes: Int64 = 64 << 20,
    _ adjust: (inout GatewayConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (_ client: any TestClientProtocol, _ base: String, _ runs: RunService) async throws -> Void
) async throws {
    try await withServedGateway(segmentBytes: segmentBytes, adjust) { client, base, gateway in try await body(client, base, gateway.runs) }
}

/// ``withGateway``, for tests that look into the gateway itself.
func withServedGateway(
    root: String? = nil,
    segmentBytes: Int64 = 64 << 20,
    _ adjust: (inout GatewayConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (_ client: any TestClientProtocol, _ base: String, _ gateway: Gateway) async throws -> Void
) async throws {
    let metrics = GatewayMetrics()
    try await withRunService(root: root, metricsFactory: metrics.factory, configure: { $0.segmentBytes = segmentBytes }) { runs in
        var configuration = GatewayConfiguration()
        configuration.port = 0
        adjust(&configuration)
        let gateway = Gateway(runs: runs, configuration: configuration, logger: quietLogger, metrics: metrics)
        try await gateway.makeApplication().test(.live) { client in
            try await body(client, "http://127.0.0.1:\(client.port!)", gateway)
        }
    }
}

func text(_ response: TestResponse) -> String { String(buffer: response.body) }

func object(_ response: TestResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
}

let ndjson: HTTPFields = [.contentType: "application/x-ndjson"]

/// Reads an SSE stream until it ends, returning the `id:` of each event frame (and counting comments).
func readSSE(_ url: String, lastEventID: String? = nil, client: HTTPClient = .shared) async throws -> (ids: [Int64], comments: Int, status: Int) {
    var request = HTTPClientRequest(url: url)
    request.headers.add(name: "accept", value: "text/event-stream")
    if let lastEventID { request.headers.add(name: "last-event-id", value: lastEventID) }
    let response = try await client.execute(request, timeout: .seconds(60))
    var ids: [Int64] = []
    var comments = 0
    var pending = ""
    for try await buffer in response.body {
        pending += String(buffer: buffer)
        while let end = pending.range(of: "\n\n") {
            let frame = pending[..<end.lowerBound]
            pending = String(pending[end.upperBound...])
            for line in frame.split(separator: "\n") {
                if line.hasPrefix("id: ") { ids.append(Int64(line.dropFirst(4))!) }
                if line.hasPrefix(":") { comments += 1 }
            }
        }
    }
    return (ids, comments, Int(response.status.code))
}
