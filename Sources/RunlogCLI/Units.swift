import ArgumentParser

/// A duration written like `250ms`, `30s`, `15m`, `12h` or `7d`.
struct HumanDuration: ExpressibleByArgument, Equatable, CustomStringConvertible {
    var duration: Duration

    init(_ duration: Duration) {
        self.duration = duration
    }

    init?(argument: String) {
        let units: [(String, Duration)] = [
            ("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)), ("h", .seconds(3600)), ("d", .seconds(86400)),
        ]
        for (suffix, unit) in units where argument.hasSuffix(suffix) {
            guard let value = Int64(argument.dropLast(suffix.count)), value >= 0 else { return nil }
            duration = unit * value
            return
        }
        return nil
    }

    /// The largest unit that divides it: `7d`, `90m`, `250ms`.
    var description: String {
        let (seconds, attoseconds) = duration.components
        if attoseconds == 0 {
            for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 {
                return "\(seconds / size)\(unit)"
            }
            return "\(seconds)s"
        }
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms"
    }
}

/// A size written like `512`, `64KiB`, `64MiB` or `1GiB` (also `KB`, `MB`, `GB` as powers of 1000).
struct ByteSize: ExpressibleByArgument, Equatable, CustomStringConvertible {
    var bytes: Int64

    init(bytes: Int64) {
        self.bytes = bytes
    }

    init?(argument: String) {
        let units: [(String, Int64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1),
        ]
        for (suffix, unit) in units where argument.hasSuffix(suffix) {
            guard let value = Int64(argument.dropLast(suffix.count)), value > 0 else { return nil }
            bytes = value * unit
            return
        }
        guard let value = Int64(argument), value > 0 else { return nil }
        bytes = value
    }

    var description: String { "\(bytes) bytes" }
}
