import CZlib
import NIOCore

/// Pieces of one gzip member (RFC 1952) written in parts: a header, raw deflate data from
/// anywhere, and a trailer over all of it.
///
/// Deflate data is a sequence of blocks, and a block may come from any compressor as long as
/// each part ends byte-aligned and none of them is marked final. Segments archived by
/// ``GzipCompressor`` end exactly that way (a sync flush, then an empty final block), so their
/// deflate data can be sent as stored, and the CRC and length in their trailer combined into
/// the stream's own.
enum GzipMember {
    /// A minimal header: deflate, no name, no time, Unix.
    static let header: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]

    /// An empty final block (fixed Huffman), as zlib writes after a sync flush.
    static let finalBlock: [UInt8] = [0x03, 0x00]

    /// Where a stored member's spliceable deflate data lies, with its CRC and length.
    struct Spliceable: Equatable {
        var deflateRange: Range<Int64>
        var crc: UInt32
        var length: UInt32
    }

    /// Reads a stored gzip file's first and last bytes: nil unless it is one member in the
    /// layout ``GzipCompressor`` writes (older archives are then recompressed instead).
    static func spliceable(_ file: PosixFile, size: Int64) throws -> Spliceable? {
        guard size >= 24 else { return nil }
        var head = [UInt8](repeating: 0, count: 10)
        var tail = [UInt8](repeating: 0, count: 14)
        try head.withUnsafeMutableBytes { _ = try file.read(into: $0, at: 0) }
        try tail.withUnsafeMutableBytes { _ = try file.read(into: $0, at: size - 14) }
        guard head[0] == 0x1F, head[1] == 0x8B, head[2] == 0x08, head[3] == 0x00,
            tail[0..<6].elementsEqual([0x00, 0x00, 0xFF, 0xFF, 0x03, 0x00])
        else { return nil }
        let crc = tail[6..<10].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let length = tail[10..<14].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return Spliceable(deflateRange: 10..<(size - 10), crc: crc, length: length)
    }

    /// The CRC-32 of `bytes` continuing `crc`.
    static func crc(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return UInt32(crc32(uLong(crc), base.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
    }

    /// The CRC-32 of two parts from each one's CRC-32 and the second one's length.
    static func combine(_ first: UInt32, _ second: UInt32, secondLength: Int64) -> UInt32 {
        UInt32(crc32_combine(uLong(first), uLong(second), off_t(secondLength)))
    }

    /// The trailer: CRC-32 and length (mod 2^32), little-endian.
    static func trailer(crc: UInt32, length: UInt64) -> [UInt8] {
        let size = UInt32(truncatingIfNeeded: length)
        return [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: crc >> $0) } + [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: size >> $0) }
    }
}

/// Raw deflate of a part of a gzip member: everything written, then a sync flush that ends the
/// part byte-aligned and not final.
final class RawDeflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private var output = [UInt8](repeating: 0, count: 64 * 1024)

    init(level: Int32) throws {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = deflateInit2_(stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            throw GzipError(operation: "deflateInit2", code: status)
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    /// Compresses `bytes` (with a sync flush when `ending`), appending the output to `into`.
    func compress(_ bytes: UnsafeRawBufferPointer, ending: Bool, into buffer: inout ByteBuffer) throws {
        stream.pointee.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(bytes.count)
        let flush = ending ? Z_SYNC_FLUSH : Z_NO_FLUSH
        let capacity = output.count
        try output.withUnsafeMutableBytes { output in
            repeat {
                stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(capacity)
                let result = deflate(stream, flush)
                guard result == Z_OK || result == Z_BUF_ERROR else { throw GzipError(operation: "deflate", code: result) }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: output[0..<(capacity - Int(stream.pointee.avail_out))]))
            } while stream.pointee.avail_out == 0
        }
    }
}
