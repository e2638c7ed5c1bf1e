import NIOCore
import NIOHTTPTypes
import Synchronization

/// Lets a response take its connection over from the connection's task, which then ends.
///
/// Hummingbird serves a connection in one task for as long as the connection lasts, and a Swift
/// task holds the deepest async stack it has grown until it ends: for a request through the
/// router and its middlewares, about 10 KB. A live stream that takes its connection over lets
/// that task go; it writes and ends its response itself and then closes the connection.
final class ConnectionHandover: Sendable {
    /// The handover for the request being answered, set by ``HandoverHTTP1Channel``.
    @TaskLocal static var current: ConnectionHandover?

    private let channel: any Channel
    /// The connection's inbound parts: they must outlive the connection's task, or the channel
    /// would stop reading, and so stop noticing the client leave.
    private let inbound: UncheckedInbound
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPResponsePart>
    private let taken = Atomic<Bool>(false)

    private struct UncheckedInbound: @unchecked Sendable {
        // Held, never read: nothing iterates it once the connection is taken over.
        let parts: NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator
    }

    init(channel: any Channel, inbound: NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<HTTPResponsePart>) {
        self.channel = channel
        self.inbound = UncheckedInbound(parts: inbound)
        self.outbound = outbound
    }

    /// Takes the connection over: from now on the caller ends the response and closes the
    /// connection. True for the first caller only.
    func take() -> Bool {
        taken.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    var isTaken: Bool { taken.load(ordering: .acquiring) }

    /// Closes the connection once its response has ended (or cannot).
    func close() {
        outbound.finish()
        channel.close(promise: nil)
    }
}
