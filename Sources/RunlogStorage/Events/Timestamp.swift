#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Milliseconds since the Unix epoch, and their RFC 3339 UTC form (`2026-11-22T10:00:00.123Z`).
public struct Timestamp: Sendable, Hashable, Comparable {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    /// The wall clock now.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(millisecondsSinceEpoch: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    /// The length of ``rfc3339`` in bytes.
    static let formattedLength = 24

    /// RFC 3339 in UTC with milliseconds.
    public var rfc3339: String {
        var bytes = [UInt8](repeating: 0, count: Self.formattedLength)
        bytes.withUnsafeMutableBytes { write(to: $0.baseAddress!) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes ``rfc3339`` (``formattedLength`` bytes) at `destination`.
    func write(to destination: UnsafeMutableRawPointer) {
        let output = destination.assumingMemoryBound(to: UInt8.self)
        let milliseconds = millisecondsSinceEpoch
        var days = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds - 86_399_999) / 86_400_000
        let millisecondOfDay = milliseconds - days * 86_400_000
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)

        func digits(_ value: Int64, _ count: Int, at offset: Int) {
            var value = value
            for index in stride(from: offset + count - 1, through: offset, by: -1) {
                output[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
        }
        digits(year, 4, at: 0)
        output[4] = UInt8(ascii: "-")
        digits(month, 2, at: 5)
        output[7] = UInt8(ascii: "-")
        digits(day, 2, at: 8)
        output[10] = UInt8(ascii: "T")
        digits(millisecondOfDay / 3_600_000, 2, at: 11)
        output[13] = UInt8(ascii: ":")
        digits(millisecondOfDay / 60_000 % 60, 2, at: 14)
        output[16] = UInt8(ascii: ":")
        digits(millisecondOfDay / 1000 % 60, 2, at: 17)
        output[19] = UInt8(ascii: ".")
        digits(millisecondOfDay % 1000, 3, at: 20)
        output[23] = UInt8(ascii: "Z")
    }
}

extension Timestamp {
    /// Parses exactly the form the server writes (`2026-11-22T10:00:00.123Z`); nil otherwise.
    public init?(rfc3339 text: String) {
        self.init(rfc3339: Array(text.utf8))
    }

    /// Parses exactly the form the server writes, from its UTF-8 bytes.
    public init?(rfc3339 bytes: some Collection<UInt8>) {
        let bytes = Array(bytes)
        guard bytes.count == Self.formattedLength, bytes[23] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for index in range {
                let digit = Int64(bytes[index]) - 48
                guard (0...9).contains(digit) else { return nil }
                value = value * 10 + digit
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), let millisecond = number(20..<23)
        else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        self.init(millisecondsSinceEpoch: ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millisecond)
    }
}
