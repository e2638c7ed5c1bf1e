import RunlogStorage

/// Keeps two retention passes over one storage root from overlapping (two cron jobs, or cron
/// and a server running its own passes): the ``RootLock`` on `<root>/.retention.lock`.
package final class RetentionLock: Sendable {
    private let lock: RootLock

    package var path: String { lock.path }

    private init(_ lock: RootLock) {
        self.lock = lock
    }

    /// Takes the lock without waiting. Throws ``RetentionError/alreadyRunning(pid:lockPath:)``
    /// when another pass holds it.
    package static func acquire(root: String) throws(RetentionError) -> RetentionLock {
        let path = root + "/.retention.lock"
        do {
            return RetentionLock(try RootLock.acquire(path))
        } catch {
            switch error {
            case .held(let pid, _): throw .alreadyRunning(pid: pid, lockPath: path)
            case .io(let reason): throw .io(reason)
            }
        }
    }
}
