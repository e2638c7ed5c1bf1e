#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// One plain segment of a run's log, open for reading as a whole file: what a server sends
/// with `sendfile` (no copy through user space). Its descriptor stays valid whatever happens
/// to the file's name afterwards (rotation, archiving, deletion), so the bytes sent are the
/// snapshot's. It closes when the object goes, unless ``takeDescriptor()`` handed it on.
package final class PlainLogFile: Sendable {
    /// Bytes to send, from offset 0: whole lines only.
    package let length: Int64
    private let descriptor: Mutex<Int32?>

    init(duplicating file: PosixFile, length: Int64) throws(SystemError) {
        let fd = dup(file.descriptor)
        guard fd >= 0 else { throw SystemError("dup", path: file.path, errno: errno) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        self.length = length
        self.descriptor = Mutex(fd)
    }

    /// The open descriptor, once: whoever takes it closes it.
    package func takeDescriptor() -> Int32? {
        descriptor.withLock { descriptor in
            defer { descriptor = nil }
            return descriptor
        }
    }

    deinit {
        if let fd = descriptor.withLock({ $0 }) { close(fd) }
    }
}
