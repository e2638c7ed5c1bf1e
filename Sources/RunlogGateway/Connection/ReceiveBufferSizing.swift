import Logging
import NIOCore

/// Starts every connection with a small receive buffer, then leaves its pipeline.
///
/// NIO keeps a connection's receive buffer between reads, 2 KiB by default. Most of a
/// server's connections are idle live readers whose only input was one request head, so that
/// buffer was a large share of what each of them holds. The allocator still grows the buffer
/// after full reads, so uploads read in large pieces after the first few.
final class ReceiveBufferSizing: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    /// What a connection's receive buffer starts at and may shrink to, and its largest size (NIO's default).
    static let allocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 65_536)

    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        do {
            try context.channel.syncOptions?.setOption(.recvAllocator, value: Self.allocator)
        } catch {
            // The connection works as well with NIO's default buffer; it only holds more.
            logger.warning("could not size a connection's receive buffer", metadata: ["error": "\(error)"])
        }
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
