import HTTPTypes
import Hummingbird
import NIOCore
import Testing

@testable import RunlogGateway

/// Which requests are handled in a task of their own (see ``ShallowStackResponder``).
@Suite struct LiveStreamRequestTests {
    func request(_ path: String, accept: String? = nil) -> Request {
        var head = HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: path)
        if let accept { head.headerFields[.accept] = accept }
        return Request(head: head, body: .init(buffer: ByteBuffer()))
    }

    @Test func liveStreamsAreToldApartFromPagesAndDownloads() {
        #expect(EventQuery.isLiveStream(request("/e?format=sse")))
        #expect(EventQuery.isLiveStream(request("/e", accept: "text/event-stream")))
        #expect(EventQuery.isLiveStream(request("/e?format=ndjson&follow=true")))
        #expect(EventQuery.isLiveStream(request("/runs?stream=true")))
        #expect(!EventQuery.isLiveStream(request("/e?format=ndjson")))
        #expect(!EventQuery.isLiveStream(request("/e", accept: "application/json")))
        #expect(!EventQuery.isLiveStream(request("/e?format=json&follow=true")))
    }
}
