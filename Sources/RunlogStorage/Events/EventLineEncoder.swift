import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes stored event lines: the server-owned fields first, in the contract's order, then the
/// producer's `source` and `payload` bytes copied as they came.
///
/// `{"sequence":N,"type":..,"event_id":..,"created_at":..,"workspace_id":..,"run_id":..,"source":..,"payload":..}\n`
struct EventLineEncoder {
    private let workspaceID: [UInt8]
    private let runID: [UInt8]

    init(key: RunKey) {
        self.workspaceID = Array(key.workspaceID.utf8)
        self.runID = Array(key.runID.utf8)
    }

    /// What goes into the `event_id` field.
    enum EventID {
        case producer(Range<Int>)
        case generated
    }

    /// Appends the line for `batch.events[index]` to `buffer`.
    func encode(
        _ batch: EventBatch,
        at index: Int,
        sequence: Int64,
        eventID: EventID,
        createdAt: UnsafeRawBufferPointer,
        generator: inout EventIdentifier.Generator,
        millisecond: UInt64,
        into buffer: inout ByteBuffer
    ) {
        let event = batch.events[index]
        let idLength: Int
        switch eventID {
        case .producer(let range): idLength = range.count
        case .generated: idLength = EventIdentifier.generatedLength
        }
        let maximumLength = 12 + 20 + 9 + event.type.count + 14 + idLength + 16 + createdAt.count + 18 + workspaceID.count
            + 12 + runID.count + 11 + (event.source?.count ?? 4) + 11 + (event.payload?.count ?? 4) + 2
        batch.body.withUnsafeBytes { body in
            _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maximumLength) { output in
                var line = LineCursor(output.baseAddress!, body: body.baseAddress!)
                line.put("{\"sequence\":")
                line.advance(by: Self.writeDecimal(sequence, to: line.position))
                line.put(",\"type\":\"")
                line.put(event.type)
                line.put("\",\"event_id\":\"")
                switch eventID {
                case .producer(let range):
                    line.put(range)
                case .generated:
                    generator.write(millisecond: millisecond, to: line.position)
                    line.advance(by: EventIdentifier.generatedLength)
                }
                line.put("\",\"created_at\":\"")
                line.put(createdAt)
                line.put("\",\"workspace_id\":\"")
                workspaceID.withUnsafeBytes { line.put($0) }
                line.put("\",\"run_id\":\"")
                runID.withUnsafeBytes { line.put($0) }
                line.put("\",\"source\":")
                if let source = event.source { line.put(source) } else { line.put("null") }
                line.put(",\"payload\":")
                if let payload = event.payload {
                    if event.payloadHasLineBreaks {
                        line.advance(by: Self.compact(UnsafeRawBufferPointer(rebasing: body[payload]), to: line.position))
                    } else {
                        line.put(payload)
                    }
                } else {
                    line.put("null")
                }
                line.put("}\n")
                return line.position - output.baseAddress!
            }
        }
    }

    /// Copies pieces of a line into place.
    private struct LineCursor {
        private(set) var position: UnsafeMutableRawPointer
        let body: UnsafeRawPointer

        init(_ start: UnsafeMutableRawPointer, body: UnsafeRawPointer) {
            self.position = start
            self.body = body
        }

        mutating func advance(by count: Int) {
            position += count
        }

        mutating func put(_ literal: StaticString) {
            position.copyMemory(from: literal.utf8Start, byteCount: literal.utf8CodeUnitCount)
            position += literal.utf8CodeUnitCount
        }

        /// Copies a range of the batch body.
        mutating func put(_ range: Range<Int>) {
            position.copyMemory(from: body + range.lowerBound, byteCount: range.count)
            position += range.count
        }

        mutating func put(_ bytes: UnsafeRawBufferPointer) {
            position.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            position += bytes.count
        }
    }

    /// Writes a non-negative integer in decimal; returns the number of bytes written.
    static func writeDecimal(_ value: Int64, to destination: UnsafeMutableRawPointer) -> Int {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        return withUnsafeMutableBytes(of: &digits) { scratch in
            var value = UInt64(value)
            var index = scratch.count
            repeat {
                index -= 1
                scratch[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            } while value > 0
            let count = scratch.count - index
            memcpy(destination, scratch.baseAddress! + index, count)
            return count
        }
    }

    /// Copies a valid JSON value without the whitespace outside its strings; returns the length written.
    static func compact(_ value: UnsafeRawBufferPointer, to destination: UnsafeMutableRawPointer) -> Int {
        var written = 0
        var inString = false
        var escaping = false
        for byte in value {
            if inString {
                if escaping {
                    escaping = false
                } else if byte == UInt8(ascii: "\\") {
                    escaping = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                continue
            }
            destination.storeBytes(of: byte, toByteOffset: written, as: UInt8.self)
            written += 1
        }
        return written
    }
}
