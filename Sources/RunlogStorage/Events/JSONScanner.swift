/// A validating JSON scanner over raw bytes (RFC 8259, UTF-8 only).
///
/// It checks syntax and UTF-8 and reports where values start and end, without building any
/// values: the append path copies producer bytes as they are instead of decoding and
/// re-encoding them.
struct JSONScanner {
    struct Failure: Error {
        var reason: String
    }

    let bytes: UnsafeBufferPointer<UInt8>
    var index: Int
    let end: Int
    let maxDepth: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int = 0, to end: Int? = nil, maxDepth: Int = 128) {
        self.bytes = bytes
        self.index = start
        self.end = end ?? bytes.count
        self.maxDepth = maxDepth
    }

    var isAtEnd: Bool { index >= end }

    var current: UInt8? { index < end ? bytes[index] : nil }

    mutating func skipWhitespace() {
        while index < end {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// Fails with a message that names what was expected and where.
    func failure(_ expectation: String) -> Failure {
        if index >= end { return Failure(reason: "invalid JSON: \(expectation), found the end of the event") }
        let byte = bytes[index]
        let found = (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        return Failure(reason: "invalid JSON: \(expectation), found \(found) at offset \(index)")
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(Failure) {
        guard index < end, bytes[index] == byte else { throw failure("expected \(what)") }
        index += 1
    }

    /// Scans any JSON value starting at `index` (no leading whitespace).
    mutating func scanValue(depth: Int = 0) throws(Failure) {
        guard index < end else { throw failure("expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "\""): _ = try scanString()
        case UInt8(ascii: "{"): try scanObject(depth: depth + 1)
        case UInt8(ascii: "["): try scanArray(depth: depth + 1)
        case UInt8(ascii: "t"): try scanLiteral("true")
        case UInt8(ascii: "f"): try scanLiteral("false")
        case UInt8(ascii: "n"): try scanLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try scanNumber()
        default: throw failure("expected a value")
        }
    }

    mutating func scanObject(depth: Int) throws(Failure) {
        guard depth <= maxDepth else { throw Failure(reason: "invalid JSON: nested deeper than \(maxDepth) levels") }
        index += 1  // {
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            guard current == UInt8(ascii: "\"") else { throw failure("expected a member name") }
            _ = try scanString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':'")
            skipWhitespace()
            try scanValue(depth: depth)
            skipWhitespace()
            guard index < end else { throw failure("expected ',' or '}'") }
            switch bytes[index] {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "}"):
                index += 1
                return
            default:
                throw failure("expected ',' or '}'")
            }
        }
    }

    mutating func scanArray(depth: Int) throws(Failure) {
        guard depth <= maxDepth else { throw Failure(reason: "invalid JSON: nested deeper than \(maxDepth) levels") }
        index += 1  // [
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            try scanValue(depth: depth)
            skipWhitespace()
            guard index < end else { throw failure("expected ',' or ']'") }
            switch bytes[index] {
            case UInt8(ascii: ","):
                index += 1
                skipWhitespace()
            case UInt8(ascii: "]"):
                index += 1
                return
            default:
                throw failure("expected ',' or ']'")
            }
        }
    }

    /// Scans a string starting at its opening quote; returns whether it contains escapes.
    mutating func scanString() throws(Failure) -> Bool {
        index += 1  // opening quote
        var escaped = false
        while index < end {
            skipPlainASCII()
            guard index < end else { break }
            let byte = bytes[index]
            if byte < 0x80 {
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return escaped
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                    try scanEscape()
                } else if byte < 0x20 {
                    throw Failure(reason: "invalid JSON: unescaped control character 0x\(String(byte, radix: 16)) in a string at offset \(index)")
                } else {
                    index += 1
                }
            } else {
                try scanMultiByteScalar()
            }
        }
        throw failure("expected the end of a string")
    }

    /// Skips string bytes that need no look, eight at a time: printable ASCII other than a
    /// quote or a backslash. Producer strings are mostly that, and this is the append path's
    /// inner loop.
    private mutating func skipPlainASCII() {
        guard let base = bytes.baseAddress else { return }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while index + 8 <= end {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            // A high bit set: a multi-byte scalar. Below 0x20: a control character. Then
            // the bytes equal to a quote or a backslash (the classic zero-byte tests).
            let control = (word &- ones &* 0x20) & ~word
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let special = word | control | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
            guard special & highs == 0 else { return }
            index += 8
        }
    }

    private mutating func scanEscape() throws(Failure) {
        index += 1  // backslash
        guard index < end else { throw failure("expected an escape") }
        switch bytes[index] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
            UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 1
        case UInt8(ascii: "u"):
            index += 1
            for _ in 0..<4 {
                guard index < end, bytes[index].isHexDigit else { throw failure("expected four hex digits after \\u") }
                index += 1
            }
        default:
            throw failure("expected a valid escape")
        }
    }

    /// Validates one UTF-8 scalar of 2-4 bytes (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
    private mutating func scanMultiByteScalar() throws(Failure) {
        let lead = bytes[index]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: throw Failure(reason: "invalid UTF-8 at offset \(index)")
        }
        guard index + length <= end else { throw Failure(reason: "invalid UTF-8 at offset \(index): truncated sequence") }
        let second = bytes[index + 1]
        guard second >= low && second <= high else { throw Failure(reason: "invalid UTF-8 at offset \(index)") }
        for offset in 2..<length {
            guard bytes[index + offset] & 0xC0 == 0x80 else { throw Failure(reason: "invalid UTF-8 at offset \(index)") }
        }
        index += length
    }

    private mutating func scanNumber() throws(Failure) {
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < end, bytes[index].isDigit else { throw failure("expected a digit") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < end, bytes[index].isDigit { index += 1 }
        }
        if index < end, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < end, bytes[index].isDigit else { throw failure("expected a digit after '.'") }
            while index < end, bytes[index].isDigit { index += 1 }
        }
        if index < end, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < end, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < end, bytes[index].isDigit else { throw failure("expected an exponent") }
            while index < end, bytes[index].isDigit { index += 1 }
        }
    }

    private mutating func scanLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= end else { throw failure("expected '\(literal)'") }
        let pointer = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != pointer[offset] {
            throw failure("expected '\(literal)'")
        }
        index += count
    }
}

extension UInt8 {
    @inline(__always) var isDigit: Bool { self &- UInt8(ascii: "0") < 10 }

    @inline(__always) var isHexDigit: Bool {
        isDigit || (self | 0x20) &- UInt8(ascii: "a") < 6
    }
}
