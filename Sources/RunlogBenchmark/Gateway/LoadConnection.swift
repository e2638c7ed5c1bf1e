import Foundation
import NIOCore
import NIOPosix

/// A bare HTTP/1.1 client connection for load generation: it sends prepared request bytes
/// and parses only what it must (status, Content-Length), so that on a 2-core machine the
/// load generator takes as little CPU from the server as it can.
struct LoadConnection {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connect(port: Int, group: any EventLoopGroup) async throws -> LoadConnection {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return LoadConnection(channel: channel)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends each request from `next` and waits for its response, until `next` returns nil.
    /// Fails on any status but 2xx.
    func exchange(_ next: () -> ByteBuffer?) async throws {
        try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var pending = ByteBuffer()
            while let request = next() {
                try await outbound.write(request)
                var response = ResponseParser()
                while !response.parse(&pending) {
                    guard var more = try await iterator.next() else { throw Failure(description: "the server closed the connection") }
                    pending.writeBuffer(&more)
                }
                guard (200..<300).contains(response.status) else {
                    throw Failure(description: "status \(response.status)")
                }
            }
        }
    }

    /// Sends one request, waits for its response, and closes. Fails on any status but 2xx.
    func send(_ request: ByteBuffer) async throws {
        var sent = false
        try await exchange {
            defer { sent = true }
            return sent ? nil : request
        }
    }

    /// Sends one request and counts the bytes that come back until the server closes the
    /// connection (send `Connection: close`).
    func download(_ request: ByteBuffer) async throws -> Int {
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(request)
            var total = 0
            for try await chunk in inbound { total += chunk.readableBytes }
            return total
        }
    }
}

/// Finds the end of one HTTP/1.1 response with a Content-Length body.
struct ResponseParser {
    var status = 0
    private var bodyRemaining: Int?

    /// Consumes from `buffer`; true once the whole response has been consumed.
    mutating func parse(_ buffer: inout ByteBuffer) -> Bool {
        if bodyRemaining == nil {
            let view = buffer.readableBytesView
            guard let end = Self.headerEnd(view) else { return false }
            let header = String(decoding: view[view.startIndex..<end], as: UTF8.self)
            status = Int(header.dropFirst(9).prefix(3)) ?? 0
            var length = 0
            for line in header.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            bodyRemaining = length
            buffer.moveReaderIndex(to: end + 4)
        }
        let take = min(bodyRemaining!, buffer.readableBytes)
        buffer.moveReaderIndex(forwardBy: take)
        bodyRemaining! -= take
        if buffer.readableBytes == 0 { buffer.discardReadBytes() }
        return bodyRemaining == 0
    }

    private static func headerEnd(_ view: ByteBufferView) -> Int? {
        var index = view.startIndex
        while index + 3 < view.endIndex {
            if view[index] == 13, view[index + 1] == 10, view[index + 2] == 13, view[index + 3] == 10 { return index }
            index += 1
        }
        return nil
    }
}

/// Request bytes, prepared once.
enum LoadRequest {
    static func post(_ path: String, body: [UInt8], contentType: String = "application/x-ndjson") -> ByteBuffer {
        var buffer = ByteBuffer(string: "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n")
        buffer.writeBytes(body)
        return buffer
    }

    static func get(_ path: String, accept: String, close: Bool = true) -> ByteBuffer {
        ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: \(accept)\r\n\(close ? "Connection: close\r\n" : "")\r\n")
    }
}
