import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import RunlogStorage
import Synchronization

/// Sends whole files with `sendfile`, in every connection's pipeline just after the
/// HTTP/1 codec.
///
/// Hummingbird's response writer takes only `ByteBuffer`s, so a download copies every byte
/// through user space twice. Instead, a stream offers this connection's sender its open files
/// and writes a small *ticket* for each: the sender swaps the ticket for the file as a
/// `FileRegion`, written below the codec in the ticket's place, so order and backpressure are
/// the writer's own. A ticket begins with a per-process random prefix nobody else can write.
final class FileRegionSender: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private static let prefix: (UInt64, UInt64) = (.random(in: .min ... .max), .random(in: .min ... .max))
    private static let ticketLength = 24
    /// The most one `sendfile` sends (as nginx's `sendfile_max_chunk`).
    static let regionSize = 1 << 20
    private static let lastID = Atomic<UInt64>(0)

    private let logger: Logger
    private var offered: [UInt64: PlainLogFile] = [:]
    private var removed = false

    init(logger: Logger) {
        self.logger = logger
    }

    /// A fresh ticket id.
    static func nextID() -> UInt64 {
        lastID.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// The body part that stands for the file offered as `id`.
    static func ticket(_ id: UInt64) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeMultipleIntegers(prefix.0, prefix.1, id)
        return buffer
    }

    private static func id(ofTicket buffer: ByteBuffer) -> UInt64? {
        guard buffer.readableBytes == ticketLength,
            let (first, second, id) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt64, UInt64, UInt64).self),
            first == prefix.0, second == prefix.1
        else { return nil }
        return id
    }

    /// Offers `file` for the ticket `id` (on the event loop). A connection already gone drops
    /// it, which closes it.
    func offer(_ file: PlainLogFile, id: UInt64) {
        guard !removed else { return }
        offered[id] = file
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .body(let buffer) = unwrapOutboundIn(data), let id = Self.id(ofTicket: buffer) else {
            context.write(data, promise: promise)
            return
        }
        do {
            guard let file = offered.removeValue(forKey: id), let descriptor = file.takeDescriptor() else {
                throw ChannelError.inappropriateOperationForState
            }
            let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
            let written = context.eventLoop.makePromise(of: Void.self)
            let logger = self.logger
            written.futureResult.whenComplete { _ in
                do {
                    try handle.close()
                } catch {
                    logger.warning("closing a sent file failed", metadata: ["error": "\(error)"])
                }
            }
            written.futureResult.cascade(to: promise)
            // Below the codec, which takes only ByteBuffers: the HTTP/1 encoder frames each region.
            let codec = try context.pipeline.syncOperations.context(handlerType: HTTP1ToHTTPServerCodec.self)
            // In regions of a bounded size: the event loop makes one `sendfile` per region, and
            // one for a whole file would hold the loop (and every connection on it) for as long
            // as a fast client takes the file.
            let length = Int(file.length)
            var start = 0
            while start < length {
                let end = min(start + Self.regionSize, length)
                let region = FileRegion(fileHandle: handle, readerIndex: start, endIndex: end)
                codec.write(NIOAny(HTTPServerResponsePart.body(.fileRegion(region))), promise: end == length ? written : nil)
                start = end
            }
        } catch {
            // A ticket without its file: the body cannot be completed, so the connection goes.
            logger.error("a download's file was not there to send", metadata: ["error": "\(error)"])
            promise?.fail(error)
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        offered.removeAll()  // closes the files never sent
    }
}
