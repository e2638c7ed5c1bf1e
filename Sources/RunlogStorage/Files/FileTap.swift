import Synchronization

/// Sees every change the engine makes to files under one storage root, after the system call
/// succeeded: for tests that model what a power cut would keep (a page cache, synced or not).
/// Production code registers none; then each operation costs one atomic load.
package protocol FileTap: AnyObject, Sendable {
    /// A file or directory was opened; the returned token names it in later calls (it
    /// follows the file through renames). `created` and `truncated` say what the flags did.
    func opened(_ path: String, created: Bool, truncated: Bool) -> Int
    /// Bytes were appended to an open file.
    func wrote(_ token: Int, _ bytes: UnsafeRawBufferPointer)
    func truncated(_ token: Int, to length: Int64)
    /// `fsync` or `fdatasync` returned: the file's data, or the directory's entries, are durable.
    func synchronized(_ token: Int)
    func madeDirectory(_ path: String)
    func renamed(_ source: String, to destination: String)
    /// A file was unlinked or a directory removed.
    func removed(_ path: String)
}

/// The registered taps, by storage root.
package enum FileTaps {
    private static let taps = Mutex<[(root: String, tap: any FileTap)]>([])
    private static let isActive = Atomic<Bool>(false)

    /// Routes operations on paths under `root` to `tap` until ``unregister(root:)``.
    package static func register(_ tap: any FileTap, root: String) {
        taps.withLock { $0.append((root + "/", tap)) }
        isActive.store(true, ordering: .releasing)
    }

    package static func unregister(root: String) {
        let remaining = taps.withLock { taps in
            taps.removeAll { $0.root == root + "/" }
            return taps.count
        }
        if remaining == 0 { isActive.store(false, ordering: .releasing) }
    }

    /// The tap for `path`, if any.
    static func tap(for path: String) -> (any FileTap)? {
        guard isActive.load(ordering: .acquiring) else { return nil }
        return taps.withLock { taps in taps.first { path.hasPrefix($0.root) || path + "/" == $0.root }?.tap }
    }
}
