import Testing

@testable import RunlogGateway

/// The operational log's request ids and trace ids, without a server.
@Suite struct RequestLogTests {
    @Test func requestIDsAreSixteenHexDigitsAndNeverRepeatInAProcess() {
        let ids = (0..<20_000).map { _ in RequestID.next() }
        #expect(ids.allSatisfy { $0.count == 16 && $0.allSatisfy { "0123456789abcdef".contains($0) } })
        #expect(Set(ids).count == ids.count)
        // Not a visible counter: consecutive ids differ in most digits.
        let differing = zip(ids[0], ids[1]).filter { $0 != $1 }.count
        #expect(differing >= 8)
    }

    @Test func traceIDsComeFromWellFormedTraceparents() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736"
        #expect(RequestLogMiddleware<GatewayRequestContext>.traceID("00-\(id)-00f067aa0ba902b7-01") == id)
        #expect(RequestLogMiddleware<GatewayRequestContext>.traceID("00-\(String(repeating: "0", count: 32))-00f067aa0ba902b7-01") == nil)
        #expect(RequestLogMiddleware<GatewayRequestContext>.traceID("garbage") == nil)
    }
}

