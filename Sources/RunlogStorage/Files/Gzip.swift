import CZlib

/// A zlib failure while compressing or decompressing.
struct GzipError: Error, CustomStringConvertible {
    var operation: String
    var code: Int32
    var message: String?

    var description: String { "\(operation) failed (zlib \(code)\(message.map { ": \($0)" } ?? ""))" }
}

/// Streams a file into a gzip file (one member, RFC 1952), spliceable by ``GzipMember``.
enum GzipCompressor {
    /// Compresses everything readable from `source` into `destination`; returns the compressed size.
    static func compress(_ source: PosixFile, into destination: PosixFile, level: Int32 = 6) throws -> Int64 {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        let status = deflateInit2_(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw GzipError(operation: "deflateInit2", code: status) }
        defer { deflateEnd(stream) }

        let chunk = 256 * 1024
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer {
            input.deallocate()
            output.deallocate()
        }
        var written: Int64 = 0
        var finished = false
        var synced = false
        while !finished {
            let count = try source.read(into: input)
            // At the end, a sync flush before finishing: the member then ends in a byte-aligned
            // empty final block, so downloads can splice its deflate data into one gzip stream
            // without decompressing it (see ``GzipMember``).
            let flush = count > 0 ? Z_NO_FLUSH : (synced ? Z_FINISH : Z_SYNC_FLUSH)
            if count == 0 { synced = true }
            stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_in = uInt(count)
            repeat {
                stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(chunk)
                let result = deflate(stream, flush)
                guard result == Z_OK || result == Z_STREAM_END || result == Z_BUF_ERROR else {
                    throw GzipError(operation: "deflate", code: result)
                }
                let produced = chunk - Int(stream.pointee.avail_out)
                if produced > 0 {
                    try destination.writeAll(UnsafeRawBufferPointer(rebasing: output[0..<produced]))
                    written += Int64(produced)
                }
                if result == Z_STREAM_END { finished = true }
            } while stream.pointee.avail_out == 0
        }
        return written
    }
}

/// Streams the decompressed bytes of a gzip file, across concatenated members, holding only
/// fixed-size buffers in memory.
final class GzipFileReader {
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawBufferPointer
    private var sourceExhausted = false
    private var memberEnded = false
    private var readAnyInput = false

    init() throws {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        input = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 * 1024, alignment: 16)
        let status = inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            input.deallocate()
            throw GzipError(operation: "inflateInit2", code: status)
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
    }

    /// Fills `output` with decompressed bytes from `file`; returns how many (0 at the end).
    func read(from file: PosixFile, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(output.count)
        while stream.pointee.avail_out > 0 {
            if stream.pointee.avail_in == 0 {
                if sourceExhausted { break }
                let count = try file.read(into: input)
                if count == 0 {
                    sourceExhausted = true
                    break
                }
                readAnyInput = true
                stream.pointee.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_in = uInt(count)
            }
            if memberEnded {
                // Another member follows the one that ended.
                let status = inflateReset(stream)
                guard status == Z_OK else { throw GzipError(operation: "inflateReset", code: status) }
                memberEnded = false
            }
            let result = inflate(stream, Z_NO_FLUSH)
            switch result {
            case Z_STREAM_END:
                memberEnded = true
            case Z_OK, Z_BUF_ERROR:
                continue
            default:
                let message = stream.pointee.msg.map { String(cString: $0) }
                throw GzipError(operation: "inflate \(file.path)", code: result, message: message)
            }
        }
        let produced = output.count - Int(stream.pointee.avail_out)
        if produced == 0, sourceExhausted, readAnyInput, !memberEnded {
            throw GzipError(operation: "inflate \(file.path)", code: Z_DATA_ERROR, message: "truncated gzip stream")
        }
        return produced
    }
}
