#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on a file under a storage root, held for as long as the holder keeps
/// this value, and released by the kernel when the holder exits, however it exits. The file
/// names its holder (`<pid> <host>`), for the message whoever is refused prints.
package final class RootLock: Sendable {
    /// Why the lock was not taken.
    package enum Failure: Error, Sendable, Equatable {
        /// Another process holds it: its pid and host, as it wrote them (nil if unreadable).
        case held(pid: Int32?, host: String?)
        case io(String)
    }

    package let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        // Unlocked before it is closed: a process spawned meanwhile holds a copy of the
        // descriptor until it execs, and the lock would last as long as that copy.
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// Takes the lock on `path` (created if missing) without waiting.
    package static func acquire(_ path: String) throws(Failure) -> RootLock {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .io("open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let failure = errno
            let holder = readHolder(descriptor)
            close(descriptor)
            if failure == EWOULDBLOCK { throw .held(pid: holder.pid, host: holder.host) }
            throw .io("flock \(path): \(String(cString: strerror(failure)))")
        }
        let text = Array("\(getpid()) \(hostName())\n".utf8)
        if ftruncate(descriptor, 0) == 0 {
            _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        }
        return RootLock(path: path, descriptor: descriptor)
    }

    private static func readHolder(_ descriptor: Int32) -> (pid: Int32?, host: String?) {
        var bytes = [UInt8](repeating: 0, count: 300)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return (nil, nil) }
        let fields = String(decoding: bytes[0..<count], as: UTF8.self).split(whereSeparator: \.isWhitespace)
        return (fields.first.flatMap { Int32($0) }, fields.dropFirst().first.map(String.init))
    }

    private static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "unknown" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
