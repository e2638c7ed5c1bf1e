import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// HTTP/1.1 connections as Hummingbird's `HTTP1Channel` serves them, except that a response
/// may take its connection over (``ConnectionHandover``), and the connection's task then ends
/// while the response goes on.
///
/// The pipeline is Hummingbird's; the request loop follows Hummingbird's `handleHTTP`, which
/// cannot let a connection outlive its task.
struct HandoverHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    let metrics: GatewayMetrics
    /// The largest request head NIO's decoder takes (set in its configuration too): what is
    /// over it gets 431, named here since the decoder only says it overflowed.
    let maxHeaderBytes: Int

    /// A request part out of order: a head inside a body, or a body where a head was due.
    struct UnexpectedPart: Error {}

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value connection: Value, logger: Logger) async {
        await metrics.counting(.connection) {
            do {
                try await withTaskCancellationHandler {
                    try await serve(connection)
                } onCancel: {
                    connection.channel.close(mode: .input, promise: nil)
                }
            } catch {
                // As Hummingbird: a connection that failed to read or write is closed, and the
                // client sees that; the server carries on.
                logger.trace("a connection ended on an error", metadata: ["error": "\(error)"])
            }
        }
    }

    private func serve(_ connection: Value) async throws {
        // Unscoped access: `executeThenClose` would close the connection when this task ends,
        // which is the very thing a handover must avoid. Finished and closed below instead,
        // or by the response that takes the connection over.
        let (inbound, outbound) = (connection.inbound, connection.outbound)
        var parts = inbound.makeAsyncIterator()
        let handover = ConnectionHandover(channel: connection.channel, inbound: parts, outbound: outbound)
        do {
            try await answerRequests(&parts, outbound: outbound, channel: connection.channel, handover: handover)
        } catch {
            if !handover.isTaken { handover.close() }
            throw error
        }
        guard !handover.isTaken else { return }
        // Wait for the client to close, then close: as `executeThenClose` does.
        outbound.finish()
        try await connection.channel.closeFuture.get()
        connection.channel.close(promise: nil)
    }

    /// Answers the connection's requests in turn, until one takes the connection over, asks to
    /// close, or the client stops sending.
    private func answerRequests(
        _ parts: inout NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPResponsePart>,
        channel: any Channel,
        handover: ConnectionHandover
    ) async throws {
        do {
            guard let first = try await parts.next() else { return }
            guard case .head(var head) = first else { throw UnexpectedPart() }
            while true {
                let request = Request(head: head, body: RequestBody(asyncSequence: InboundRequestBody(parts: parts)))
                try await ConnectionHandover.$current.withValue(handover) {
                    try await base.responder(request, ResponseWriter(outbound: outbound), channel)
                }
                if handover.isTaken || request.headers[.connection] == "close" { return }
                // Skip what the handler left of the body, then read the next head.
                var part: HTTPRequestPart?
                repeat { part = try await parts.next() } while part?.isBody == true
                if case .end = part { part = try await parts.next() }
                guard let part else { return }
                guard case .head(let next) = part else { throw UnexpectedPart() }
                head = next
            }
        } catch HTTPParserError.headerOverflow {
            // Not in Hummingbird: a head over the limit is told apart from garbage, as 431.
            let problem = #"{"type":"/problems/headers-too-large","title":"Request headers too large","status":431,"detail":"the request head is larger than \#(maxHeaderBytes) bytes"}"#
            var headers: HTTPFields = [.connection: "close", .contentType: "application/problem+json"]
            headers[.contentLength] = String(problem.utf8.count)
            try await outbound.write(.head(.init(status: .requestHeaderFieldsTooLarge, headerFields: headers)))
            try await outbound.write(.body(ByteBuffer(string: problem)))
            try await outbound.write(.end(nil))
        } catch is HTTPParserError {
            // As Hummingbird: a request that cannot be parsed gets a 400, and the connection closes.
            try await outbound.write(.head(.init(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])))
            try await outbound.write(.end(nil))
        }
    }
}

extension HTTPRequestPart {
    fileprivate var isBody: Bool {
        if case .body = self { return true }
        return false
    }
}
