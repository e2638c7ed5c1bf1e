import NIOCore
import NIOPosix

/// Sends one prepared request after another on one connection, each as soon as the response to
/// the previous one has arrived, all on the connection's event loop.
///
/// No task wakes per request (as with `NIOAsyncChannel`), so the load generator takes less of
/// the cores it shares with the server: a closed loop like `wrk`'s.
final class ClosedLoopClient: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Starts the requests once every connection of a measurement is open.
    struct Start {}

    private let request: ByteBuffer
    private var remaining: Int
    private var received = ByteBuffer()
    private var response = ResponseParser()
    private let done: EventLoopPromise<Void>

    private init(request: ByteBuffer, count: Int, done: EventLoopPromise<Void>) {
        self.request = request
        self.remaining = count
        self.done = done
    }

    /// A connection ready to send `request` `count` times once started.
    struct Connection {
        let channel: any Channel
        let done: EventLoopFuture<Void>

        func start() {
            channel.pipeline.fireUserInboundEventTriggered(Start())
        }

        /// Waits for the last response, then closes.
        func finish() async throws {
            defer { channel.close(promise: nil) }
            try await done.get()
        }
    }

    static func connect(sending request: ByteBuffer, times count: Int, port: Int, group: any EventLoopGroup) async throws -> Connection {
        let done = group.next().makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ClosedLoopClient(request: request, count: count, done: done))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return Connection(channel: channel, done: done.futureResult)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is Start else { return context.fireUserInboundEventTriggered(event) }
        sendNext(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        while response.parse(&received) {
            guard (200..<300).contains(response.status) else {
                return fail(LoadConnection.Failure(description: "status \(response.status)"), context: context)
            }
            response = ResponseParser()
            remaining -= 1
            sendNext(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(LoadConnection.Failure(description: "the server closed the connection with \(remaining) requests to go"), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    private func sendNext(context: ChannelHandlerContext) {
        guard remaining > 0 else { return done.succeed() }
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        guard remaining > 0 else { return }
        remaining = 0
        done.fail(error)
        context.close(promise: nil)
    }
}
