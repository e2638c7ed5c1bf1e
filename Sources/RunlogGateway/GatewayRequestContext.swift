import Hummingbird
import NIOCore

/// The context of the gateway's requests: Hummingbird's basics plus the connection, to which
/// a whole-log download hands its files (see ``FileRegionSender``).
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection the request arrived on.
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
