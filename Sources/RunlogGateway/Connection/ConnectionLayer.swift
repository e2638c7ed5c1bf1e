import HummingbirdCore
import Logging

/// The HTTP/1.1 server below the gateway's router: Hummingbird's pipeline and codec, plus the
/// handlers the streaming code talks to through ``ResponseConnection``.
enum ConnectionLayer {
    /// Connections as Hummingbird serves them, except that a response may take its connection
    /// over (``HandoverHTTP1Channel``); each starts with a small receive buffer, and carries a
    /// sender for files (``FileRegionSender``) and one for parked live streams (``LiveSender``).
    /// A request head over `maxHeaderBytes` (its fields, or any one of them) gets 431.
    static func http1(logger: Logger, metrics: GatewayMetrics, maxHeaderBytes: Int = GatewayConfiguration().maxHeaderBytes) -> HTTPServerBuilder {
        var configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ReceiveBufferSizing(logger: logger), FileRegionSender(logger: logger), LiveSender()]
        )
        configuration.httpDecoder = .init(maxHeaderFieldSize: maxHeaderBytes, maxHeaderListSize: maxHeaderBytes)
        return HTTPServerBuilder { [configuration] responder in
            HandoverHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration), metrics: metrics, maxHeaderBytes: maxHeaderBytes)
        }
    }
}
