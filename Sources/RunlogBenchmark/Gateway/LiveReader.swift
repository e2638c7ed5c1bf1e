import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Wall-clock nanoseconds, comparable across the appender and the readers.
func wallNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Append-to-delivery latencies of every event every reader got.
final class LatencyRecorder: Sendable {
    private let samples = Mutex<[Int64]>([])

    func record(_ batch: [Int64]) {
        samples.withLock { $0.append(contentsOf: batch) }
    }

    func reset() {
        samples.withLock { $0.removeAll(keepingCapacity: true) }
    }

    var all: [Int64] { samples.withLock { $0 } }
}

/// One SSE subscriber as a channel handler (no task per reader): it sends its GET, then
/// finds each event's `"t":<nanoseconds>` stamp in the stream and records how long ago the
/// appender stamped it.
final class LiveReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let request: ByteBuffer
    private let recorder: LatencyRecorder
    private let connected: EventLoopPromise<Void>
    private var carry: [UInt8] = []
    private var headerSeen = false
    private var pending: [Int64] = []

    init(request: ByteBuffer, recorder: LatencyRecorder, connected: EventLoopPromise<Void>) {
        self.request = request
        self.recorder = recorder
        self.connected = connected
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(request), promise: nil)
        context.fireChannelActive()
    }

    private static let stamp = Array(#""t":"#.utf8)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let now = wallNanoseconds()
        var bytes = carry
        bytes.append(contentsOf: buffer.readableBytesView)
        if !headerSeen, bytes.count >= 12 {
            headerSeen = true
            connected.succeed(())
        }
        var index = 0
        var lastComplete = 0
        let stamp = Self.stamp
        while index + stamp.count < bytes.count {
            if bytes[index] == stamp[0], bytes[index + 1] == stamp[1], bytes[index + 2] == stamp[2], bytes[index + 3] == stamp[3] {
                var cursor = index + 4
                var value: Int64 = 0
                while cursor < bytes.count, bytes[cursor] >= 48, bytes[cursor] <= 57 {
                    value = value * 10 + Int64(bytes[cursor] - 48)
                    cursor += 1
                }
                guard cursor < bytes.count else { break }  // the number may go on in the next read
                pending.append(now - value)
                index = cursor
                lastComplete = cursor
                continue
            }
            index += 1
        }
        // Keep the unscanned end, which may hold the start of a stamp.
        let keepFrom = max(lastComplete, bytes.count - 24)
        carry = Array(bytes[keepFrom...])
        if pending.count >= 64 {
            recorder.record(pending)
            pending.removeAll(keepingCapacity: true)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !pending.isEmpty {
            recorder.record(pending)
            pending.removeAll(keepingCapacity: true)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connected.fail(error)
        context.close(promise: nil)
    }

    /// Opens `count` readers of `path`; returns their channels once each has its response head.
    static func open(_ count: Int, path: String, port: Int, group: any EventLoopGroup, recorder: LatencyRecorder) async throws -> [any Channel] {
        var channels: [any Channel] = []
        channels.reserveCapacity(count)
        let request = LoadRequest.get(path, accept: "text/event-stream", close: false)
        // Open in waves, so the listen backlog never overflows.
        var index = 0
        while index < count {
            let wave = min(200, count - index)
            try await withThrowingTaskGroup(of: (any Channel).self) { group2 in
                for _ in 0..<wave {
                    group2.addTask {
                        let loop = group.next()
                        let connected = loop.makePromise(of: Void.self)
                        let channel = try await ClientBootstrap(group: loop)
                            .channelInitializer { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    try channel.pipeline.syncOperations.addHandler(LiveReader(request: request, recorder: recorder, connected: connected))
                                }
                            }
                            .connect(host: "127.0.0.1", port: port).get()
                        try await connected.futureResult.get()
                        return channel
                    }
                }
                for try await channel in group2 { channels.append(channel) }
            }
            index += wave
        }
        return channels
    }
}
