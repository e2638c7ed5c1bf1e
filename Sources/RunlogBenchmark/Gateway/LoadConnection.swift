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
    func exchange(_ next: () async throws -> ByteBuffer?) async throws {
        try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var pending = ByteBuffer()
            while let request = try await next() {
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

/// Finds the end of one HTTP/1.1 response with a Content-Length body, reading bytes only (no
/// strings), since the load generator shares the server's cores.
struct ResponseParser {
    var status = 0
    private var bodyRemaining: Int?

    /// Consumes from `buffer`; true once the whole response has been consumed.
    mutating func parse(_ buffer: inout ByteBuffer) -> Bool {
        if bodyRemaining == nil {
            guard let head = buffer.withUnsafeReadableBytes({ Self.head(in: $0) }) else { return false }
            status = head.status
            bodyRemaining = head.contentLength
            buffer.moveReaderIndex(forwardBy: head.length)
        }
        let take = min(bodyRemaining!, buffer.readableBytes)
        buffer.moveReaderIndex(forwardBy: take)
        bodyRemaining! -= take
        if buffer.readableBytes == 0 { buffer.discardReadBytes() }
        return bodyRemaining == 0
    }

    private static let contentLength = Array("content-length:".utf8)

    /// The status, the Content-Length (0 without one) and the length of the response head at
    /// the start of `bytes`; nil until the head is whole.
    private static func head(in bytes: UnsafeRawBufferPointer) -> (status: Int, contentLength: Int, length: Int)? {
        guard bytes.count >= 16 else { return nil }
        var end = 0
        while end + 3 < bytes.count, !(bytes[end] == 13 && bytes[end + 1] == 10 && bytes[end + 2] == 13 && bytes[end + 3] == 10) { end += 1 }
        guard end + 3 < bytes.count else { return nil }
        // "HTTP/1.1 200 ..."
        let status = (9..<12).reduce(0) { $0 * 10 + Int(bytes[$1]) - 48 }
        var length = 0
        var index = 0
        while index < end {
            // At the start of a header line, compare its name ignoring case.
            if bytes[index] == 10, index + 1 + contentLength.count <= end,
                contentLength.indices.allSatisfy({ bytes[index + 1 + $0] | 0x20 == contentLength[$0] | 0x20 })
            {
                var digit = index + 1 + contentLength.count
                while bytes[digit] == 32 { digit += 1 }
                while digit < end, (48...57).contains(bytes[digit]) {
                    length = length * 10 + Int(bytes[digit]) - 48
                    digit += 1
                }
                break
            }
            index += 1
        }
        return (status, length, end + 4)
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
