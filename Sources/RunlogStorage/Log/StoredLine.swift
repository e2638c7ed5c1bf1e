/// Reads the server-owned fields of a stored line without decoding it.
///
/// Stored lines always start `{"sequence":N,"type":"T","event_id":"I",` (the server writes
/// them), and types and ids never contain quotes or escapes, so fixed offsets suffice.
enum StoredLine {
    private static let sequencePrefix = Array("{\"sequence\":".utf8)
    private static let typePrefix = Array(",\"type\":\"".utf8)
    private static let eventIDPrefix = Array("\",\"event_id\":\"".utf8)
    private static let createdAtPrefix = Array("\",\"created_at\":\"".utf8)

    /// The sequence of a stored line, or nil when the line does not start like one.
    static func sequence(of line: UnsafeRawBufferPointer) -> Int64? {
        sequenceField(of: line)?.value
    }

    /// The type of a stored line.
    static func type(of line: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let end = sequenceField(of: line)?.end else { return nil }
        return quoted(in: line, after: end, prefix: typePrefix)
    }

    /// The event id of a stored line.
    static func eventID(of line: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let type = type(of: line) else { return nil }
        return quoted(in: line, after: type.upperBound, prefix: eventIDPrefix)
    }

    /// The server's `created_at` of a stored line.
    static func createdAt(of line: UnsafeRawBufferPointer) -> Timestamp? {
        guard let eventID = eventID(of: line), let range = quoted(in: line, after: eventID.upperBound, prefix: createdAtPrefix) else {
            return nil
        }
        return Timestamp(rfc3339: line[range])
    }

    /// The sequence of the last line in `lines` (whole lines, each ending with a newline).
    static func lastSequence(inLines lines: UnsafeRawBufferPointer) -> Int64 {
        let body = UnsafeRawBufferPointer(rebasing: lines[0..<(lines.count - 1)])
        let start = body.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
        return sequence(of: UnsafeRawBufferPointer(rebasing: lines[start...])) ?? 0
    }

    /// Whether `line` (without its newline) is a complete, valid stored event line.
    static func isValid(_ line: UnsafeRawBufferPointer) -> Bool {
        guard sequence(of: line) != nil, eventID(of: line) != nil else { return false }
        let bytes = line.bindMemory(to: UInt8.self)
        var scanner = JSONScanner(bytes)
        guard scanner.current == UInt8(ascii: "{") else { return false }
        do {
            try scanner.scanValue()
        } catch {
            return false
        }
        return scanner.isAtEnd
    }

    private static func sequenceField(of line: UnsafeRawBufferPointer) -> (value: Int64, end: Int)? {
        guard line.count > sequencePrefix.count, line.starts(with: sequencePrefix) else { return nil }
        var index = sequencePrefix.count
        var value: Int64 = 0
        while index < line.count, line[index].isDigit, index - sequencePrefix.count < 19 {
            // Nineteen nines do not fit an Int64: damage, never a line the engine wrote.
            let (tens, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowedAgain) = tens.addingReportingOverflow(Int64(line[index] - UInt8(ascii: "0")))
            guard !overflowed, !overflowedAgain else { return nil }
            value = sum
            index += 1
        }
        guard index > sequencePrefix.count else { return nil }
        return (value, index)
    }

    private static func quoted(in line: UnsafeRawBufferPointer, after start: Int, prefix: [UInt8]) -> Range<Int>? {
        guard line.count >= start + prefix.count, line[start..<(start + prefix.count)].elementsEqual(prefix) else { return nil }
        let contentStart = start + prefix.count
        var index = contentStart
        while index < line.count, line[index] != UInt8(ascii: "\"") { index += 1 }
        guard index < line.count else { return nil }
        return contentStart..<index
    }
}
