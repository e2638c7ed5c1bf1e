#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit: every SSE reader holds a socket and every open log a file, so
/// the server (and the load tools that open as many sockets) raise their soft limit to the hard
/// limit at start-up (an unprivileged process may, up to the hard one).
package struct OpenFileLimit: Sendable {
    package var soft: UInt64
    package var hard: UInt64

    package static var current: OpenFileLimit? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return OpenFileLimit(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
    }

    /// Raises the soft limit to the hard one; returns the limits before and after (nil when
    /// they cannot be read).
    @discardableResult
    package static func raiseToHardLimit() -> (before: OpenFileLimit, after: OpenFileLimit)? {
        guard let before = current else { return nil }
        guard before.soft < before.hard else { return (before, before) }
        var limit = rlimit(rlim_cur: rlim_t(before.hard), rlim_max: rlim_t(before.hard))
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            // Some systems (macOS) cap the soft limit below an unlimited hard one.
            limit.rlim_cur = rlim_t(min(before.hard, 65536))
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return current.map { (before, $0) }
    }
}
