#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A batch of producer events, validated and ready to append.
///
/// Parsing checks every event (a JSON object, valid UTF-8, a well-formed `type`, only known
/// fields, within the size limit) and remembers where each field's bytes are. Appending then
/// copies those bytes into the stored line: payloads are never decoded and re-encoded.
public struct EventBatch: Sendable {
    /// Where one event's fields sit in ``body``.
    struct Event: Sendable {
        /// The type string's characters (inside the quotes).
        var type: Range<Int>
        /// The producer's event id characters (inside the quotes), if it sent one.
        var eventID: Range<Int>?
        /// The raw `source` value (a JSON string with its quotes), if present and not null.
        var source: Range<Int>?
        /// The raw `payload` value, if present.
        var payload: Range<Int>?
        /// The payload spans several lines (pretty-printed JSON) and must be compacted when stored.
        var payloadHasLineBreaks: Bool
        /// 1-based position in the body: the NDJSON line, or the JSON array element.
        var line: Int
    }

    /// Per-event limits applied while parsing.
    public struct Limits: Sendable {
        /// The largest event accepted, in bytes of the producer's JSON.
        public var maxEventBytes: Int = 1 << 20
        /// The deepest nesting accepted in a payload.
        public var maxDepth: Int = 128
        /// The longest `source` accepted, in characters (Unicode code points of the decoded
        /// string, as JSON Schema's `maxLength` counts them: the OpenAPI document can say it exactly).
        public var maxSourceCharacters: Int = 256

        public init() {}
    }

    let body: [UInt8]
    let events: [Event]
    /// Whether any event carries its producer's `event_id` (which must be checked for duplicates).
    let hasProducerEventIDs: Bool

    /// How many events the batch holds.
    public var count: Int { events.count }

    public var isEmpty: Bool { events.isEmpty }

    /// The type of the event at `index` in the batch.
    public func type(at index: Int) -> String {
        String(decoding: body[events[index].type], as: UTF8.self)
    }

    /// The 1-based position of the event at `index` in the body (its NDJSON line, or array element).
    public func line(at index: Int) -> Int {
        events[index].line
    }

    /// The raw payload JSON of the event at `index`, if it has one.
    public func payload(at index: Int) -> ArraySlice<UInt8>? {
        events[index].payload.map { body[$0] }
    }

    /// The producer's `event_id` of the event at `index`, if it sent one.
    public func producerEventID(at index: Int) -> String? {
        events[index].eventID.map { String(decoding: body[$0], as: UTF8.self) }
    }

    /// Parses an NDJSON body: one event object per line; blank lines are skipped and
    /// rejections name the physical 1-based line.
    public init(ndjson body: [UInt8], limits: Limits = Limits()) throws(StorageError) {
        var events: [Event] = []
        let result: EventRejection? = body.withUnsafeBufferPointer { buffer in
            var lineStart = 0
            var lineNumber = 0
            while lineStart < buffer.count {
                lineNumber += 1
                let lineEnd = Self.endOfLine(in: buffer, from: lineStart)
                let next = lineEnd + 1
                var scanner = JSONScanner(buffer, from: lineStart, to: lineEnd, maxDepth: limits.maxDepth)
                scanner.skipWhitespace()
                if !scanner.isAtEnd {
                    do throws(JSONScanner.Failure) {
                        let event = try Self.parseEvent(&scanner, line: lineNumber, limits: limits)
                        scanner.skipWhitespace()
                        guard scanner.isAtEnd else {
                            throw JSONScanner.Failure(reason: "unexpected data after the event object at offset \(scanner.index - lineStart)")
                        }
                        events.append(event)
                    } catch {
                        return EventRejection(line: lineNumber, reason: error.reason)
                    }
                }
                lineStart = next
            }
            return nil
        }
        if let result { throw .invalidEvent(result) }
        self.body = body
        self.events = events
        self.hasProducerEventIDs = events.contains { $0.eventID != nil }
    }

    /// The offset of the first newline at or after `start`, or the end of `buffer`.
    private static func endOfLine(in buffer: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        guard let base = buffer.baseAddress, let found = memchr(base + start, Int32(UInt8(ascii: "\n")), buffer.count - start) else {
            return buffer.count
        }
        return UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
    }

    /// Parses a JSON body: one event object, or an array of them. Rejections name the
    /// 1-based position of the event in the array (1 for a single object).
    public init(json body: [UInt8], limits: Limits = Limits()) throws(StorageError) {
        var events: [Event] = []
        let result: StorageError? = body.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer, maxDepth: limits.maxDepth)
            scanner.skipWhitespace()
            switch scanner.current {
            case UInt8(ascii: "{"):
                do throws(JSONScanner.Failure) {
                    events.append(try Self.parseEvent(&scanner, line: 1, limits: limits))
                    scanner.skipWhitespace()
                    guard scanner.isAtEnd else { throw scanner.failure("expected the end of the body") }
                } catch {
                    return .invalidEvent(EventRejection(line: 1, reason: error.reason))
                }
            case UInt8(ascii: "["):
                scanner.index += 1
                scanner.skipWhitespace()
                if scanner.current == UInt8(ascii: "]") {
                    scanner.index += 1
                } else {
                    var position = 0
                    while true {
                        position += 1
                        do throws(JSONScanner.Failure) {
                            guard scanner.current == UInt8(ascii: "{") else { throw scanner.failure("expected an event object") }
                            events.append(try Self.parseEvent(&scanner, line: position, limits: limits))
                            scanner.skipWhitespace()
                            guard let separator = scanner.current,
                                separator == UInt8(ascii: ",") || separator == UInt8(ascii: "]")
                            else { throw scanner.failure("expected ',' or ']'") }
                            scanner.index += 1
                            if separator == UInt8(ascii: "]") { break }
                            scanner.skipWhitespace()
                        } catch {
                            return .invalidEvent(EventRejection(line: position, reason: error.reason))
                        }
                    }
                }
                scanner.skipWhitespace()
                guard scanner.isAtEnd else { return .invalidBody("unexpected data after the array") }
            case nil:
                return .invalidBody("the body is empty")
            default:
                return .invalidBody("expected a JSON object or an array of objects")
            }
            return nil
        }
        if let result { throw result }
        self.body = body
        self.events = events
        self.hasProducerEventIDs = events.contains { $0.eventID != nil }
    }

    /// Parses one event object at the scanner's position and leaves the scanner after it.
    private static func parseEvent(_ scanner: inout JSONScanner, line: Int, limits: Limits) throws(JSONScanner.Failure) -> Event {
        let start = scanner.index
        guard scanner.current == UInt8(ascii: "{") else { throw scanner.failure("expected an event object") }
        scanner.index += 1
        scanner.skipWhitespace()
        var type: Range<Int>?
        var eventID: Range<Int>?
        var source: Range<Int>?
        var payload: Range<Int>?
        var sourceSeen = false
        if scanner.current == UInt8(ascii: "}") {
            scanner.index += 1
        } else {
            while true {
                guard scanner.current == UInt8(ascii: "\"") else { throw scanner.failure("expected a field name") }
                let nameStart = scanner.index + 1
                _ = try scanner.scanString()
                let name = FieldName(scanner.bytes, nameStart..<(scanner.index - 1))
                scanner.skipWhitespace()
                try scanner.expect(UInt8(ascii: ":"), "':'")
                scanner.skipWhitespace()
                let valueStart = scanner.index
                switch name {
                case .type:
                    guard type == nil else { throw .init(reason: "duplicate field 'type'") }
                    guard scanner.current == UInt8(ascii: "\"") else { throw .init(reason: "'type' must be a string") }
                    _ = try scanner.scanString()
                    type = (valueStart + 1)..<(scanner.index - 1)
                case .eventID:
                    guard eventID == nil else { throw .init(reason: "duplicate field 'event_id'") }
                    guard scanner.current == UInt8(ascii: "\"") else { throw .init(reason: "'event_id' must be a string") }
                    _ = try scanner.scanString()
                    eventID = (valueStart + 1)..<(scanner.index - 1)
                case .source:
                    guard !sourceSeen else { throw .init(reason: "duplicate field 'source'") }
                    sourceSeen = true
                    if scanner.current == UInt8(ascii: "\"") {
                        _ = try scanner.scanString()
                        source = valueStart..<scanner.index
                        // Raw bytes bound the count from above: most sources need no decoding.
                        guard source!.count - 2 <= limits.maxSourceCharacters
                            || Self.characterCount(of: scanner.bytes, in: (source!.lowerBound + 1)..<(source!.upperBound - 1)) <= limits.maxSourceCharacters
                        else {
                            throw .init(reason: "'source' is longer than \(limits.maxSourceCharacters) characters")
                        }
                    } else if scanner.current == UInt8(ascii: "n") {
                        try scanner.scanValue()
                        guard scanner.bytes[valueStart] == UInt8(ascii: "n") else { throw .init(reason: "'source' must be a string") }
                    } else {
                        throw .init(reason: "'source' must be a string")
                    }
                case .payload:
                    guard payload == nil else { throw .init(reason: "duplicate field 'payload'") }
                    try scanner.scanValue()
                    payload = valueStart..<scanner.index
                case .serverOwned(let field):
                    throw .init(reason: "'\(field)' is set by the server; a producer value belongs in payload")
                case .unknown(let field):
                    throw .init(reason: "unknown field '\(field)'; producer data belongs in payload")
                }
                scanner.skipWhitespace()
                guard let separator = scanner.current else { throw scanner.failure("expected ',' or '}'") }
                scanner.index += 1
                if separator == UInt8(ascii: "}") { break }
                guard separator == UInt8(ascii: ",") else {
                    scanner.index -= 1
                    throw scanner.failure("expected ',' or '}'")
                }
                scanner.skipWhitespace()
            }
        }
        guard scanner.index - start <= limits.maxEventBytes else {
            throw .init(reason: "the event is \(scanner.index - start) bytes, more than the limit of \(limits.maxEventBytes)")
        }
        guard let type else { throw .init(reason: "missing field 'type'") }
        try EventType.validate(scanner.bytes, type)
        if let eventID { try EventIdentifier.validateProducerID(scanner.bytes, eventID) }
        var hasLineBreaks = false
        if let payload, let base = scanner.bytes.baseAddress {
            // Whitespace between tokens only (strings cannot hold raw line breaks), so rare.
            hasLineBreaks = memchr(base + payload.lowerBound, 0x0A, payload.count) != nil || memchr(base + payload.lowerBound, 0x0D, payload.count) != nil
        }
        return Event(type: type, eventID: eventID, source: source, payload: payload, payloadHasLineBreaks: hasLineBreaks, line: line)
    }
}

/// The fields an event object may carry, recognised from their raw name bytes.
private enum FieldName {
    case type, eventID, source, payload
    case serverOwned(String)
    case unknown(String)

    init(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        let name = UnsafeBufferPointer(rebasing: bytes[range])
        if Self.name(name, is: "type") { self = .type }
        else if Self.name(name, is: "payload") { self = .payload }
        else if Self.name(name, is: "event_id") { self = .eventID }
        else if Self.name(name, is: "source") { self = .source }
        else {
            let text = String(decoding: name.prefix(64), as: UTF8.self)
            switch text {
            case "sequence", "created_at", "workspace_id", "run_id": self = .serverOwned(text)
            default: self = .unknown(text)
            }
        }
    }

    /// Whether `name` is `literal`: a length check and a `memcmp`, as this runs for every
    /// field of every event appended.
    private static func name(_ name: UnsafeBufferPointer<UInt8>, is literal: StaticString) -> Bool {
        name.count == literal.utf8CodeUnitCount && (name.isEmpty || memcmp(name.baseAddress!, literal.utf8Start, name.count) == 0)
    }
}

/// The rule for event types: dot-namespaced lowercase, like `run.started` or `console.line`.
package enum EventType {
    /// The longest type accepted.
    package static let maxLength = 128

    /// Whether `type` is well-formed: at least two dot-separated segments, each a lowercase
    /// letter followed by lowercase letters, digits, `_` or `-`.
    package static func isValid(_ type: String) -> Bool {
        Array(type.utf8).withUnsafeBufferPointer { buffer in
            (try? validate(buffer, 0..<buffer.count)) != nil
        }
    }

    /// Built once: interpolated on every call, it cost more than the check (this runs per event).
    private static let reason = "'type' must be dot-namespaced lowercase like 'run.started' (segments of [a-z][a-z0-9_-]*, at most \(maxLength) characters)"

    static func validate(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(JSONScanner.Failure) {
        guard !range.isEmpty, range.count <= maxLength else { throw .init(reason: reason) }
        var segments = 1
        var atSegmentStart = true
        for offset in range {
            let byte = bytes[offset]
            if atSegmentStart {
                guard byte &- UInt8(ascii: "a") < 26 else { throw .init(reason: reason) }
                atSegmentStart = false
            } else if byte == UInt8(ascii: ".") {
                segments += 1
                atSegmentStart = true
            } else {
                guard byte &- UInt8(ascii: "a") < 26 || byte.isDigit || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") else {
                    throw .init(reason: reason)
                }
            }
        }
        guard segments >= 2, !atSegmentStart else { throw .init(reason: reason) }
    }
}

extension EventBatch {
    /// The characters (Unicode code points) of a scanned JSON string's contents, as a decoder
    /// would count them: an escape is one, a surrogate pair written as two `\\u` escapes one,
    /// a UTF-8 sequence one. The scanner has already checked the string.
    static func characterCount(of bytes: UnsafeBufferPointer<UInt8>, in range: Range<Int>) -> Int {
        var count = 0
        var index = range.lowerBound
        while index < range.upperBound {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                if bytes[index + 1] == UInt8(ascii: "u") {
                    let unit = hexValue(bytes, at: index + 2)
                    let pairs = (0xD800...0xDBFF).contains(unit) && index + 12 <= range.upperBound
                        && bytes[index + 6] == UInt8(ascii: "\\") && bytes[index + 7] == UInt8(ascii: "u")
                        && (0xDC00...0xDFFF).contains(hexValue(bytes, at: index + 8))
                    index += pairs ? 12 : 6
                } else {
                    index += 2
                }
                count += 1
            } else {
                if byte & 0xC0 != 0x80 { count += 1 }
                index += 1
            }
        }
        return count
    }

    private static func hexValue(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Int {
        var value = 0
        for offset in 0..<4 {
            let byte = bytes[start + offset]
            let digit: UInt8 = switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            default: byte - UInt8(ascii: "A") + 10
            }
            value = value << 4 | Int(digit)
        }
        return value
    }
}
