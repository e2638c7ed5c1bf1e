import Synchronization

/// Ids for requests that arrive without an `X-Request-Id`.
enum RequestID {
    /// A fresh id of 16 hex digits: unique within the process (a bijective mix of a counter),
    /// unlikely to repeat across processes (a random seed). Drawing 16 random digits instead cost
    /// 16 `getrandom` system calls per request.
    static func next() -> String {
        var mixed = seed &+ issued.wrappingAdd(1, ordering: .relaxed).newValue &* 0x9E37_79B9_7F4A_7C15
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        mixed ^= mixed >> 31
        let digits = String(mixed, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    private static let seed = UInt64.random(in: .min ... .max)
    private static let issued = Atomic<UInt64>(0)
}
