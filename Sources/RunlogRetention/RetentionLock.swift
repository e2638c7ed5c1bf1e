#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps two retention passes over one storage root from overlapping (two cron jobs, or cron
/// and a server running its own passes): an exclusive `flock` on `<root>/.retention.lock`,
/// released when the holder exits, however it exits.
package final class RetentionLock: Sendable {
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

    /// Takes the lock without waiting. Throws ``RetentionError/alreadyRunning(pid:lockPath:)``
    /// when another pass holds it.
    package static func acquire(root: String) throws(RetentionError) -> RetentionLock {
        let path = root + "/.retention.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .io("open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let failure = errno
            let holder = readPID(descriptor)
            close(descriptor)
            if failure == EWOULDBLOCK { throw .alreadyRunning(pid: holder, lockPath: path) }
            throw .io("flock \(path): \(String(cString: strerror(failure)))")
        }
        // The holder's pid, for the message a second pass prints.
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(descriptor, 0) == 0 {
            _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        }
        return RetentionLock(path: path, descriptor: descriptor)
    }

    private static func readPID(_ descriptor: Int32) -> Int32? {
        var bytes = [UInt8](repeating: 0, count: 16)
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: bytes[0..<count].filter { (48...57).contains($0) }, as: UTF8.self))
    }
}
