import HummingbirdCore
import Logging

/// The HTTP/1.1 server below the gateway's router: Hummingbird's pipeline and codec, plus the
/// handlers the streaming code talks to through ``ResponseConnection``.
enum ConnectionLayer {
    /// Connections as Hummingbird serves them, except that a response may take its connection
    /// over (``HandoverHTTP1Channel``); each starts with a small receive buffer, and carries a
    /// sender for files (``FileRegionSender``) and one for parked live streams (``LiveSender``).
    static func http1(logger: Logger, metrics: GatewayMetrics) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            HandoverHTTP1Channel(
                base: HTTP1Channel(
                    responder: responder,
                    configuration: .init(additionalChannelHandlers: [ReceiveBufferSizing(logger: logger), FileRegionSender(logger: logger), LiveSender()])
                ),
                metrics: metrics
            )
        }
    }
}
