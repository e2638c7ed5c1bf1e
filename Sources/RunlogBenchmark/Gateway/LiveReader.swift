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

/// One event reaching one reader: when the appender stamped it, and how long after.
struct Delivery {
    let stamp: Int64
    let latency: Int64
}

/// Append-to-delivery latencies of every event every reader got, kept per event loop so that
/// a reader records without taking a lock: the readers share the server's 2 cores, and a lock
/// both loops take on every read is load-generator cost in the figures.
final class LatencyRecorder: Sendable {
    private let loops: [NIOLoopBoundBox<[Delivery]>]
    private let recorded = Atomic<Int>(0)

    init(group: MultiThreadedEventLoopGroup) {
        loops = group.makeIterator().map { NIOLoopBoundBox.makeBoxSendingValue([Delivery](), eventLoop: $0) }
    }

    /// The samples of the readers on `loop`, to be touched on that loop only.
    func samples(on loop: any EventLoop) -> NIOLoopBoundBox<[Delivery]> {
        loops.first { $0.eventLoop === loop }!
    }

    /// Counts samples recorded on a loop, so a waiter can tell when all have arrived.
    func counted(_ count: Int) {
        recorded.add(count, ordering: .relaxed)
    }

    /// How many samples the readers have recorded so far.
    var count: Int { recorded.load(ordering: .relaxed) }

    /// Every sample recorded so far, gathered from each loop on the loop.
    func all() async throws -> [Delivery] {
        var all: [Delivery] = []
        for box in loops {
            all += try await box.eventLoop.submit { box.value }.get()
        }
        return all
    }
}

/// One SSE subscriber as a channel handler (no task per reader): it sends its GET, then
/// finds each event's `"t":<nanoseconds>` stamp in the stream and records how long ago the
/// appender stamped it. It scans each read in place, carrying only the scanner's state across
/// reads, so it allocates nothing per read.
final class LiveReader: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let request: ByteBuffer
    private let recorder: LatencyRecorder
    private let samples: NIOLoopBoundBox<[Delivery]>
    private let connected: EventLoopPromise<Void>
    private var received = 0
    /// How many bytes of `"t":` the scan has matched, and the stamp's digits so far once it has.
    private var matched = 0
    private var stamp: Int64?

    init(request: ByteBuffer, recorder: LatencyRecorder, loop: any EventLoop, connected: EventLoopPromise<Void>) {
        self.request = request
        self.recorder = recorder
        self.samples = recorder.samples(on: loop)
        self.connected = connected
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(request), promise: nil)
        context.fireChannelActive()
    }

    private static let marker: (UInt8, UInt8, UInt8, UInt8) = (UInt8(ascii: "\""), UInt8(ascii: "t"), UInt8(ascii: "\""), UInt8(ascii: ":"))

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let now = wallNanoseconds()
        if received < 12 {
            received += buffer.readableBytes
            if received >= 12 { connected.succeed(()) }
        }
        var found = 0
        buffer.withUnsafeReadableBytes { bytes in
            for byte in bytes {
                if let value = stamp {
                    if byte >= 48, byte <= 57 {
                        stamp = value * 10 + Int64(byte - 48)
                        continue
                    }
                    samples.value.append(Delivery(stamp: value, latency: now - value))
                    found += 1
                    stamp = nil
                }
                // `"t":` repeats no prefix of itself but its opening quote.
                let expected = matched == 0 ? Self.marker.0 : matched == 1 ? Self.marker.1 : matched == 2 ? Self.marker.2 : Self.marker.3
                if byte == expected {
                    matched += 1
                    if matched == 4 {
                        matched = 0
                        stamp = 0
                    }
                } else {
                    matched = byte == Self.marker.0 ? 1 : 0
                }
            }
        }
        if found > 0 { recorder.counted(found) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connected.fail(error)
        context.close(promise: nil)
    }

    /// Opens `count` readers of `path`; returns their channels once each has its response head.
    static func open(_ count: Int, path: String, port: Int, group: MultiThreadedEventLoopGroup, recorder: LatencyRecorder) async throws -> [any Channel] {
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
                                    try channel.pipeline.syncOperations.addHandler(LiveReader(request: request, recorder: recorder, loop: loop, connected: connected))
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
