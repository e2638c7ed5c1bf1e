import HummingbirdCore
import Logging
import NIOCore

/// The HTTP/1.1 server below the gateway's router: Hummingbird's pipeline and codec, plus the
/// handlers the streaming code talks to through ``ResponseConnection``.
enum ConnectionLayer {
    /// Connections as Hummingbird serves them, except that a response may take its connection
    /// over (``HandoverHTTP1Channel``); each starts with a small receive buffer, and carries a
    /// sender for files (``FileRegionSender``) and one for parked live streams (``LiveSender``).
    /// A request head over `maxHeaderBytes` (its fields, or any one of them) gets 431.
    ///
    /// A connection waiting longer than `requestTimeout` for the next request part is closed:
    /// Hummingbird's idle timeout counts from the connection's start or its last response and
    /// is reset only by whole parts, so a head that trickles in byte by byte (slowloris) is cut
    /// off as surely as a silent connection. A response being written, a parked live stream
    /// among them, is never timed out.
    static func http1(
        logger: Logger, metrics: GatewayMetrics, maxHeaderBytes: Int = GatewayConfiguration().maxHeaderBytes,
        requestTimeout: Duration = GatewayConfiguration().requestTimeout
    ) -> HTTPServerBuilder {
        var configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ReceiveBufferSizing(logger: logger), FileRegionSender(logger: logger), LiveSender()],
            idleTimeout: .nanoseconds(Int64(requestTimeout / .nanoseconds(1)))
        )
        configuration.httpDecoder = .init(maxHeaderFieldSize: maxHeaderBytes, maxHeaderListSize: maxHeaderBytes)
        return HTTPServerBuilder { [configuration] responder in
            HandoverHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration), metrics: metrics, maxHeaderBytes: maxHeaderBytes)
        }
    }
}
