import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import RunlogStorage

/// Writes a caught-up live stream's new events from its connection's event loop, and tells the
/// stream when its client has gone or the server is shutting down. In every connection's
/// pipeline just after the HTTP/1 codec.
///
/// A stream that has caught up *parks* here: no task runs for it, and its run's ``LiveFeed`` hands
/// each batch of new events, encoded once, to every parked reader on this event loop. A
/// delivery is then a write on the loop, with no task to wake and nothing encoded per reader.
/// A task takes the stream up again (``unpark()``) when a heartbeat or expiry is due, when the
/// stream stops, or when this sender hands it back: the client stopped draining, the reader
/// would miss events, or the run completed.
final class LiveSender: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Where a parked stream stands when a task takes it up again.
    struct Handoff: Sendable {
        var position: Int64
        var sawCompletion: Bool
        /// When the sender last wrote (``StreamAlarms/now()``), or nil if it never did.
        var lastWrite: Int64?
    }

    private struct Parked {
        var subscription: LiveSubscription
        let feed: LiveFeed
        let feeds: LiveFeeds
        let loop: any EventLoop
        let signal: StreamSignal
        /// A write puts the stream's next heartbeat this far off (never past `endsAt`).
        let heartbeat: Int64
        let endsAt: Int64
        var lastWrite: Int64?
    }

    private var context: ChannelHandlerContext?
    /// The live stream on this connection: stopped when the client goes.
    private var signal: StreamSignal?
    private var parked: Parked?
    private var handedBack: Handoff?
    /// Whether the request being answered is a GET, whose body NIO's encoder sends.
    private var answeringGet = false
    /// While the response's body goes out as HTTP/1.1 chunks: the context of NIO's encoder,
    /// below which a batch's ready-made chunk goes straight to the socket.
    private var chunkedWire: ChannelHandlerContext?

    init() {}

    /// Watches `signal` for the connection's stream (stopped at once if the client has gone).
    func watch(_ signal: StreamSignal) {
        guard let context, context.channel.isActive else {
            signal.stop()
            return
        }
        self.signal = signal
    }

    /// Parks the stream at `subscription`'s position in its run's feed; false if the feed has
    /// passed that position (read on from the store first) or the connection is gone. While
    /// the feed writes, the stream's alarm stays a `heartbeat` after the last write.
    func park(_ subscription: LiveSubscription, in feeds: LiveFeeds, key: LiveFeed.Key, signal: StreamSignal, heartbeat: Int64, endsAt: Int64) -> Bool {
        guard let context, context.channel.isActive, parked == nil else { return false }
        handedBack = nil
        guard let feed = feeds.join(key, sender: self, on: context.eventLoop, at: subscription.position) else { return false }
        parked = Parked(subscription: subscription, feed: feed, feeds: feeds, loop: context.eventLoop, signal: signal, heartbeat: heartbeat, endsAt: endsAt)
        return true
    }

    /// Takes the stream off the feed (if still on it) and says where it stands; nil if it
    /// was not parked.
    func unpark() -> Handoff? {
        leave()
        defer { handedBack = nil }
        return handedBack
    }

    /// Writes what `batches` (consecutive, oldest first) hold for the parked stream that it
    /// has not had, in one flush; or hands the stream back.
    func deliver(_ batches: [LiveFrames], from feed: LiveFeed, now: Int64) {
        // In place, not a copy: a copy retains the feed, registry and signal that every
        // reader on every loop shares, once per reader and batch.
        guard parked?.feed === feed, let context else { return }
        var wrote = false
        var wroteThroughPipeline = false
        var staysLive = true
        for frames in batches where frames.last > parked!.subscription.position {
            let step = parked!.subscription.take(frames, writable: context.channel.isWritable)
            if let bytes = step.bytes, bytes.readableBytes > 0 {
                // Bytes as long as the batch's are the whole batch (a reader only ever drops
                // events from it), so the batch's chunk carries them.
                if let chunkedWire, bytes.readableBytes == frames.bytes.readableBytes {
                    chunkedWire.write(NIOAny(frames.chunk), promise: nil)
                } else {
                    context.write(wrapOutboundOut(.body(bytes)), promise: nil)
                    wroteThroughPipeline = true
                }
                wrote = true
            }
            if step.fellBehind { parked!.feeds.metrics.slowReaderFellBack() }
            staysLive = step.staysLive
            if !staysLive { break }
        }
        if wrote {
            // Ready-made chunks alone are flushed where they went in; a flush from this handler
            // passes through the encoder and reaches the same socket.
            if !wroteThroughPipeline, let chunkedWire { chunkedWire.flush() } else { context.flush() }
            parked!.lastWrite = now
            // Events went out, so no heartbeat is due: the stream stays parked.
            parked!.signal.wake(at: min(now + parked!.heartbeat, parked!.endsAt))
        }
        if !staysLive { handBack() }
    }

    /// The feed cannot go on (its run's log failed to read): the stream reads on by itself.
    func feedEnded(_ feed: LiveFeed) {
        guard parked?.feed === feed else { return }
        handBack()
    }

    private func handBack() {
        let signal = parked?.signal
        leave()
        signal?.wakeup.ring()
    }

    private func leave() {
        guard let parked else { return }
        self.parked = nil
        handedBack = Handoff(position: parked.subscription.position, sawCompletion: parked.subscription.sawCompletion, lastWrite: parked.lastWrite)
        parked.feeds.leave(parked.feed, sender: self, on: parked.loop)
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let request) = unwrapInboundIn(data) { answeringGet = request.method == .get }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            chunkedWire = Self.isChunked(response, answeringGet: answeringGet) ? Self.encoder(of: context) : nil
        case .end:
            chunkedWire = nil
        case .body:
            break
        }
        context.write(data, promise: promise)
    }

    /// Whether NIO's encoder (framing headers set automatically, as Hummingbird has it) sends
    /// this response's body as chunks: a GET's 200 without a length or a transfer coding of its own.
    static func isChunked(_ response: HTTPResponse, answeringGet: Bool) -> Bool {
        answeringGet && response.status == .ok
            && response.headerFields[.contentLength] == nil && response.headerFields[.transferEncoding] == nil
    }

    /// The encoder's context; nil in a pipeline without NIO's encoder, whose streams then
    /// write every batch through the pipeline.
    private static func encoder(of context: ChannelHandlerContext) -> ChannelHandlerContext? {
        try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        clientLeft()
        chunkedWire = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        clientLeft()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side: it will send no more requests and a live stream ends.
        if let event = event as? ChannelEvent, event == .inputClosed { clientLeft() }
        // The server is shutting down: a live stream ends, and its connection closes after it.
        if event is ChannelShouldQuiesceEvent { signal?.stop() }
        context.fireUserInboundEventTriggered(event)
    }

    private func clientLeft() {
        leave()
        signal?.stop()
        signal = nil
    }
}
