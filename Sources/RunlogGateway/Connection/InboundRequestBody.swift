import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// A request's body parts, read from its connection's inbound parts up to the request's end.
///
/// The iterator is a copy of the connection's own: both read the same stream, so what the body
/// leaves unread the connection skips before the next request.
struct InboundRequestBody: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer
    // Unchecked: the connection's task and the request's handler take turns with the stream,
    // never at once, as in Hummingbird's own request body.
    let parts: NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator

    struct AsyncIterator: AsyncIteratorProtocol {
        var parts: NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator
        var done = false

        mutating func next() async throws -> ByteBuffer? {
            guard !done, let part = try await parts.next() else { return nil }
            switch part {
            case .body(let buffer):
                return buffer
            case .end:
                done = true
                return nil
            case .head:
                throw HandoverHTTP1Channel.UnexpectedPart()
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(parts: parts)
    }
}
