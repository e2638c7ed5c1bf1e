#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads top-level members of a JSON object from raw bytes without building values, for
/// hot paths that need one field of a payload (like its `level`).
package enum RawJSON {
    /// The value of top-level member `key` if the bytes are an object holding it as a string
    /// without escapes; nil otherwise.
    package static func string(forKey key: String, in bytes: some Collection<UInt8>) -> String? {
        var key = key
        return key.withUTF8 { name in
            bytes.withContiguousStorageIfAvailable { string(forKey: name, in: $0) } ?? Array(bytes).withUnsafeBufferPointer { string(forKey: name, in: $0) }
        }
    }

    private static func string(forKey name: UnsafeBufferPointer<UInt8>, in buffer: UnsafeBufferPointer<UInt8>) -> String? {
        // Most payloads lack the key: a byte search rules them out without scanning the JSON.
        // Names are matched as raw bytes, so one that is there appears exactly like this.
        guard contains(quoted: name, in: buffer) else { return nil }
        var scanner = JSONScanner(buffer)
        scanner.skipWhitespace()
        guard scanner.current == UInt8(ascii: "{") else { return nil }
        scanner.index += 1
        do {
            while true {
                scanner.skipWhitespace()
                guard scanner.current == UInt8(ascii: "\"") else { return nil }
                let nameStart = scanner.index + 1
                _ = try scanner.scanString()
                let matches = buffer[nameStart..<(scanner.index - 1)].elementsEqual(name)
                scanner.skipWhitespace()
                try scanner.expect(UInt8(ascii: ":"), "':'")
                scanner.skipWhitespace()
                let valueStart = scanner.index
                if matches {
                    guard scanner.current == UInt8(ascii: "\"") else { return nil }
                    let escaped = try scanner.scanString()
                    return escaped ? nil : String(decoding: buffer[(valueStart + 1)..<(scanner.index - 1)], as: UTF8.self)
                }
                try scanner.scanValue()
                scanner.skipWhitespace()
                guard scanner.current == UInt8(ascii: ",") else { return nil }
                scanner.index += 1
            }
        } catch {
            return nil  // not a valid object: no such member
        }
    }

    /// Whether `"name"` occurs in `buffer`: `memchr` for each quote, then a look at the bytes
    /// after it, cheapest test first.
    private static func contains(quoted name: UnsafeBufferPointer<UInt8>, in buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        let quote = UInt8(ascii: "\"")
        let length = name.count + 2
        guard let base = buffer.baseAddress, buffer.count >= length else { return false }
        let last = buffer.count - length
        var index = 0
        while index <= last, let found = memchr(base + index, Int32(quote), last - index + 1) {
            let at = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(found))
            if buffer[at + length - 1] == quote, UnsafeBufferPointer(rebasing: buffer[(at + 1)..<(at + length - 1)]).elementsEqual(name) { return true }
            index = at + 1
        }
        return false
    }
}
