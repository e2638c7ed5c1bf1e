import NIOCore
import NIOHTTP1
import NIOPosix

/// Each event loop's SSE readers, by path, touched on that loop only.
///
/// A loop writes to its readers in passes: what was published while a pass ran goes out in
/// the next one, as one write per reader, and a pass lets the loop read its sockets every 64
/// readers. The simplest fan-out that makes no more writes than passes; unlike runlog's, an
/// event published during a pass waits for the next one even for readers not yet reached.
final class ReaderRegistry: Sendable {
    /// One loop's readers of one path.
    final class Readers {
        var channels: [ObjectIdentifier: any Channel] = [:]
        /// Frames published since the current pass took its bytes.
        var pending = ByteBuffer()
        var passing = false
    }

    private let loops: [NIOLoopBoundBox<[String: Readers]>]

    init(group: MultiThreadedEventLoopGroup) {
        loops = group.makeIterator().map { NIOLoopBoundBox.makeBoxSendingValue([:], eventLoop: $0) }
    }

    /// Adds a reader of `path`, on its channel's loop, until the channel closes.
    func add(_ channel: any Channel, reading path: String) {
        let box = loops.first { $0.eventLoop === channel.eventLoop }!
        let readers = box.value[path] ?? Readers()
        box.value[path] = readers
        let id = ObjectIdentifier(channel)
        readers.channels[id] = channel
        channel.closeFuture.whenComplete { _ in
            box.value[path]?.channels[id] = nil
        }
    }

    /// Sends `frame` to every reader of `path`, each loop to its own.
    func publish(_ frame: ByteBuffer, to path: String) {
        for box in loops {
            box.eventLoop.execute {
                guard let readers = box.value[path], !readers.channels.isEmpty else { return }
                var frame = frame
                readers.pending.writeBuffer(&frame)
                if !readers.passing { Self.pass(readers, on: box.eventLoop) }
            }
        }
    }

    private static func pass(_ readers: Readers, on loop: any EventLoop) {
        guard readers.pending.readableBytes > 0 else {
            readers.passing = false
            return
        }
        let bytes = readers.pending
        readers.pending = ByteBuffer()
        readers.passing = true
        write(bytes, to: Array(readers.channels.values)[...], of: readers, on: loop)
    }

    private static func write(_ bytes: ByteBuffer, to channels: ArraySlice<any Channel>, of readers: Readers, on loop: any EventLoop) {
        for channel in channels.prefix(64) {
            channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(bytes)), promise: nil)
        }
        let rest = channels.dropFirst(64)
        let readers = NIOLoopBound(readers, eventLoop: loop)
        // A task due a little later, as runlog's passes do: the loop runs every task that is
        // due before it reads its sockets again, so `execute` (or a task due now) would hold
        // back the appends' requests until the whole pass is done.
        loop.scheduleTask(in: .microseconds(20)) {
            if rest.isEmpty {
                pass(readers.value, on: loop)
            } else {
                write(bytes, to: rest, of: readers.value, on: loop)
            }
        }
    }
}
