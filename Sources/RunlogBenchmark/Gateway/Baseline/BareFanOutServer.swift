import NIOCore
import NIOHTTP1
import NIOPosix

/// The gateway benchmark's requests on bare SwiftNIO, storing nothing: `POST .../runs`
/// answers 201, `POST .../events` sends its body as one SSE frame to every reader of that
/// path and answers 200, and `GET .../events` becomes such a reader. Each event loop writes
/// to its own readers (``ReaderRegistry``).
struct BareFanOutServer {
    let port: Int

    func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let readers = ReaderRegistry(group: group)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(BareRequestHandler(readers: readers))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        try await channel.closeFuture.get()
    }
}

/// One connection's requests (see ``BareFanOutServer``).
final class BareRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let readers: ReaderRegistry
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var sequence = 0

    init(readers: ReaderRegistry) {
        self.readers = readers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = String(head.uri.prefix { $0 != "?" })
        switch (head.method, path.hasSuffix("/events")) {
        case (.GET, true):
            var headers = HTTPHeaders([("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
            headers.add(name: "Transfer-Encoding", value: "chunked")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "retry: 1000\n: baseline event stream\n\n")))), promise: nil)
            readers.add(context.channel, reading: path)
        case (.POST, true):
            sequence += 1
            var frame = ByteBuffer(string: "id: \(sequence)\nevent: bench.tick\ndata: ")
            frame.writeBuffer(&body)
            frame.writeString("\n\n")
            readers.publish(frame, to: path)
            answer(.ok, BaselineServer.appendedAnswer, version: head.version, context: context)
        case (.POST, false) where path.hasSuffix("/runs"):
            answer(.created, "{}", version: head.version, context: context)
        default:
            answer(.notFound, "{}", version: head.version, context: context)
        }
    }

    private func answer(_ status: HTTPResponseStatus, _ text: String, version: HTTPVersion, context: ChannelHandlerContext) {
        let headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", String(text.utf8.count))])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
