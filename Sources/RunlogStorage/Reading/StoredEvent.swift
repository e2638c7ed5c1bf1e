public import NIOCore

/// The fields of one stored line, read without decoding the payload: the engine writes the
/// server-owned fields first in a fixed order, so only `source` needs scanning.
public struct StoredEvent: Sendable {
    public var sequence: Int64
    public var type: String
    public var eventID: String
    /// RFC 3339 as stored.
    public var createdAt: String
    /// The raw payload JSON (`null` when the producer sent none).
    public var payload: ArraySlice<UInt8>

    /// Parses a stored line (with or without its newline); nil when it is not one.
    public init?(line: ByteBuffer) {
        let bytes = Array(line.readableBytesView)
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        let parsed: StoredEvent? = bytes.withUnsafeBufferPointer { buffer in
            let raw = UnsafeRawBufferPointer(buffer)
            guard let sequence = StoredLine.sequence(of: raw), let type = StoredLine.type(of: raw), let id = StoredLine.eventID(of: raw) else {
                return nil
            }
            let createdPrefix = Array("\",\"created_at\":\"".utf8)
            let createdStart = id.upperBound + createdPrefix.count
            guard createdStart + Timestamp.formattedLength <= end else { return nil }
            // After created_at: ","workspace_id":"…","run_id":"…","source":<value>,"payload":<value>}
            guard let sourceKey = Self.find(Array("\"source\":".utf8), in: buffer, from: createdStart, to: end) else { return nil }
            var scanner = JSONScanner(buffer, from: sourceKey, to: end)
            do {
                try scanner.scanValue()
            } catch {
                return nil
            }
            let payloadPrefix = Array(",\"payload\":".utf8)
            guard scanner.index + payloadPrefix.count < end,
                buffer[scanner.index..<(scanner.index + payloadPrefix.count)].elementsEqual(payloadPrefix),
                buffer[end - 1] == UInt8(ascii: "}")
            else { return nil }
            return StoredEvent(
                sequence: sequence,
                type: String(decoding: raw[type], as: UTF8.self),
                eventID: String(decoding: raw[id], as: UTF8.self),
                createdAt: String(decoding: raw[createdStart..<(createdStart + Timestamp.formattedLength)], as: UTF8.self),
                payload: bytes[(scanner.index + payloadPrefix.count)..<(end - 1)]
            )
        }
        guard let parsed else { return nil }
        self = parsed
    }

    private init(sequence: Int64, type: String, eventID: String, createdAt: String, payload: ArraySlice<UInt8>) {
        self.sequence = sequence
        self.type = type
        self.eventID = eventID
        self.createdAt = createdAt
        self.payload = payload
    }

    /// The index just after `needle`'s first occurrence in `buffer[from..<to]`.
    private static func find(_ needle: [UInt8], in buffer: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        var index = from
        while index + needle.count <= to {
            if buffer[index] == needle[0], buffer[index..<(index + needle.count)].elementsEqual(needle) { return index + needle.count }
            index += 1
        }
        return nil
    }
}
