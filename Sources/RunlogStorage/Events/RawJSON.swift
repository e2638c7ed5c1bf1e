/// Reads top-level members of a JSON object from raw bytes without building values, for
/// hot paths that need one field of a payload (like its `level`).
public enum RawJSON {
    /// The value of top-level member `key` if the bytes are an object holding it as a string
    /// without escapes; nil otherwise.
    public static func string(forKey key: String, in bytes: some Collection<UInt8>) -> String? {
        let array = Array(bytes)
        let name = Array(key.utf8)
        return array.withUnsafeBufferPointer { buffer -> String? in
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
    }
}
