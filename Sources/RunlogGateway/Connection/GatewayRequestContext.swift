package import Hummingbird
import NIOCore

/// The context of the gateway's requests: Hummingbird's basics plus the connection, on which
/// live streams park and to which whole-log downloads hand their files.
package struct GatewayRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    /// The connection the request arrived on.
    let connection: ResponseConnection

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.connection = ResponseConnection(channel: source.channel)
    }
}
