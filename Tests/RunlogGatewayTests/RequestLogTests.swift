import Foundation
import HTTPTypes
import Logging
import Synchronization
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

    @Test func aPathWhoseRoutesTakeOtherMethodsNamesItsIDsAndAnyOtherNone() throws {
        let routes = Gateway.routes
        let events = try #require(routes.routes(onPath: "/v1/workspaces/ws_1/runs/run_é/events"))
        #expect(events.workspace == "ws_1" && events.run == "run_é")
        #expect(Set(events.routes.map(\.method)) == [.get, .post])
        let list = try #require(routes.routes(onPath: "/v1/workspaces/ws_1/runs"))
        #expect(list.workspace == "ws_1" && list.run == nil)
        #expect(try #require(routes.routes(onPath: "/metrics")).routes.map(\.method) == [.get])
        #expect(routes.routes(onPath: "/v1/workspaces/ws_1/other/x") == nil)
        #expect(routes.routes(onPath: "/v2/workspaces/ws_1/runs/run_1") == nil)
        #expect(routes.routes(onPath: "/v1/workspaces/ws_1/runs/run_1/events/more") == nil)
    }

    @Test func logLinesAreOneJSONObjectWhateverTheFieldsHold() throws {
        let lines = Mutex<[String]>([])
        var handler = JSONLogHandler(label: "test", version: "1", output: .init { line in lines.withLock { $0.append(line) } })
        handler.metadata["request_id"] = "plain"
        let hostile = "quote \" backslash \\ newline \n tab \t bell \u{7} é 😀"
        handler.log(event: LogEvent(level: .info, message: "\(hostile)", metadata: ["path": "\(hostile)"], source: "t", file: "f", function: "g", line: 1))
        let line = try #require(lines.withLock { $0.first })
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == hostile)
        #expect(object["path"] as? String == hostile)
        #expect(object["request_id"] as? String == "plain")
        #expect(line.contains(#""request_id":"plain""#))
    }

    @Test func theIDsComeFirstInAFixedOrderAndTheOtherFieldsByName() throws {
        let fields: Logger.Metadata = [
            "zeta": "1", "run_id": "r", "alpha": "2", "trace_id": "t", "event_type": "http.request", "workspace_id": "w", "request_id": "q", "mid": "3",
        ]
        let line = String(decoding: JSONLogHandler.line(level: .info, message: "m", fields: fields, label: "l", service: "s", version: "v"), as: UTF8.self)
        let keys = line.split(separator: ",").map { $0.drop { $0 == "{" }.split(separator: ":")[0] }
        #expect(
            keys == [
                #""timestamp""#, #""level""#, #""service""#, #""version""#, #""event_type""#, #""message""#, #""request_id""#, #""trace_id""#,
                #""workspace_id""#, #""run_id""#, #""alpha""#, #""mid""#, #""zeta""#, #""logger""#,
            ]
        )
        #expect(line.contains(#""event_type":"http.request""#))
    }
}
