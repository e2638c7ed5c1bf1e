#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A thin, blocking wrapper over a POSIX file descriptor.
///
/// Every method blocks: call them from the store's I/O thread pool, never from an event loop.
/// The descriptor closes when the object goes away.
final class PosixFile {
    let descriptor: Int32
    let path: String
    private var isLocked = false
    /// The test tap that sees this file's changes, and its token for the file.
    private let tap: (tap: any FileTap, token: Int)?

    /// Opens `path` with `flags` (and `mode` when creating).
    init(path: String, flags: Int32, mode: mode_t = 0o644) throws(SystemError) {
        let observer = FileTaps.tap(for: path)
        let existed = observer != nil && (flags & O_CREAT) != 0 && access(path, F_OK) == 0
        let fd = Self.retryingInterrupts { open(path, flags | O_CLOEXEC, mode) }
        guard fd >= 0 else { throw SystemError("open", path: path, errno: errno) }
        self.descriptor = fd
        self.path = path
        self.tap = observer.map { observer in
            (observer, observer.opened(path, created: (flags & O_CREAT) != 0 && !existed, truncated: (flags & O_TRUNC) != 0))
        }
    }

    deinit {
        // Unlocked before it is closed: a process spawned meanwhile holds a copy of the
        // descriptor until it execs, and the lock would last as long as that copy.
        if isLocked { flock(descriptor, LOCK_UN) }
        close(descriptor)
    }

    /// Opens `path`, or returns nil when it does not exist.
    static func openIfExists(path: String, flags: Int32) throws(SystemError) -> PosixFile? {
        do {
            return try PosixFile(path: path, flags: flags)
        } catch where error.errno == ENOENT {
            return nil
        }
    }

    /// Writes all of `bytes`, continuing after short writes and interrupts.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let written = Self.retryingInterrupts {
                write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            }
            guard written > 0 else {
                throw SystemError("write", path: path, errno: written == 0 ? EIO : errno)
            }
            tap?.tap.wrote(tap!.token, UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + written)]))
            offset += written
        }
    }

    /// Reads up to `count` bytes at `offset` into `buffer`; returns how many were read (0 at end of file).
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64? = nil) throws(SystemError) -> Int {
        let count: Int
        if let offset {
            count = Self.retryingInterrupts { pread(descriptor, buffer.baseAddress!, buffer.count, off_t(offset)) }
        } else {
            count = Self.retryingInterrupts { Glibc.read(descriptor, buffer.baseAddress!, buffer.count) }
        }
        guard count >= 0 else { throw SystemError("read", path: path, errno: errno) }
        return count
    }

    /// Makes written data durable (fdatasync: data and the size, not every timestamp).
    func synchronizeData() throws(SystemError) {
        guard Self.retryingInterrupts({ fdatasync(descriptor) }) == 0 else {
            throw SystemError("fdatasync", path: path, errno: errno)
        }
        tap?.tap.synchronized(tap!.token)
    }

    /// Makes data and metadata durable.
    func synchronize() throws(SystemError) {
        guard Self.retryingInterrupts({ fsync(descriptor) }) == 0 else {
            throw SystemError("fsync", path: path, errno: errno)
        }
        tap?.tap.synchronized(tap!.token)
    }

    func truncate(to length: Int64) throws(SystemError) {
        guard Self.retryingInterrupts({ ftruncate(descriptor, off_t(length)) }) == 0 else {
            throw SystemError("ftruncate", path: path, errno: errno)
        }
        tap?.tap.truncated(tap!.token, to: length)
    }

    /// Size and inode of the open file.
    func status() throws(SystemError) -> (size: Int64, inode: UInt64) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw SystemError("fstat", path: path, errno: errno) }
        return (Int64(info.st_size), UInt64(info.st_ino))
    }

    /// Takes an exclusive advisory lock without waiting; false when another holder has it.
    func tryLockExclusively() throws(SystemError) -> Bool {
        if Self.retryingInterrupts({ flock(descriptor, LOCK_EX | LOCK_NB) }) == 0 {
            isLocked = true
            return true
        }
        if errno == EWOULDBLOCK { return false }
        throw SystemError("flock", path: path, errno: errno)
    }

    static func retryingInterrupts<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result < 0 && errno == EINTR { continue }
            return result
        }
    }
}

/// Directory and path operations the engine needs, all blocking.
enum FileSystem {
    /// Creates `path` and any missing parents; with `durably`, fsyncs each parent that gained an entry.
    static func createDirectories(_ path: String, durably: Bool) throws(SystemError) {
        var created: [String] = []
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if mkdir(prefix, 0o755) == 0 {
                FileTaps.tap(for: prefix)?.madeDirectory(prefix)
                created.append(prefix)
            } else if errno != EEXIST {
                throw SystemError("mkdir", path: prefix, errno: errno)
            }
        }
        if durably {
            for directory in created {
                try synchronizeDirectory(parent(of: directory))
            }
        }
    }

    /// fsyncs a directory so that entries created, renamed or removed in it survive a power loss.
    static func synchronizeDirectory(_ path: String) throws(SystemError) {
        let directory = try PosixFile(path: path, flags: O_RDONLY | O_DIRECTORY)
        try directory.synchronize()
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Names in a directory (without `.` and `..`); nil when the directory does not exist.
    static func contentsOfDirectory(_ path: String) throws(SystemError) -> [String]? {
        guard let directory = opendir(path) else {
            if errno == ENOENT { return nil }
            throw SystemError("opendir", path: path, errno: errno)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func rename(_ source: String, to destination: String) throws(SystemError) {
        guard Glibc.rename(source, destination) == 0 else {
            throw SystemError("rename", path: "\(source) -> \(destination)", errno: errno)
        }
        FileTaps.tap(for: source)?.renamed(source, to: destination)
    }

    /// Removes a file; true when it existed.
    @discardableResult
    static func removeFile(_ path: String) throws(SystemError) -> Bool {
        if unlink(path) == 0 {
            FileTaps.tap(for: path)?.removed(path)
            return true
        }
        if errno == ENOENT { return false }
        throw SystemError("unlink", path: path, errno: errno)
    }

    /// Size of a file, or nil when it does not exist.
    static func size(of path: String) throws(SystemError) -> Int64? {
        var info = stat()
        if stat(path, &info) == 0 { return Int64(info.st_size) }
        if errno == ENOENT { return nil }
        throw SystemError("stat", path: path, errno: errno)
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// Removes `path` and everything under it (without following symbolic links); returns the
    /// bytes of the files removed, 0 when nothing was there.
    @discardableResult
    static func removeTree(_ path: String) throws(SystemError) -> Int64 {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return 0 }
            throw SystemError("lstat", path: path, errno: errno)
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            try removeFile(path)
            return Int64(info.st_size)
        }
        var removed: Int64 = 0
        for name in try contentsOfDirectory(path) ?? [] {
            removed += try removeTree(path + "/" + name)
        }
        if rmdir(path) == 0 {
            FileTaps.tap(for: path)?.removed(path)
        } else if errno != ENOENT {
            throw SystemError("rmdir", path: path, errno: errno)
        }
        return removed
    }

    /// The bytes of the files under `path` (0 when it does not exist).
    static func treeSize(_ path: String) throws(SystemError) -> Int64 {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return 0 }
            throw SystemError("lstat", path: path, errno: errno)
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return Int64(info.st_size) }
        var total: Int64 = 0
        for name in try contentsOfDirectory(path) ?? [] {
            total += try treeSize(path + "/" + name)
        }
        return total
    }
}
