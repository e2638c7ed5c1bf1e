/// Why a retention pass did not run, or stopped. Failures on single runs do not stop a pass:
/// they are listed in its report.
package enum RetentionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another pass holds the lock on this storage root.
    case alreadyRunning(pid: Int32?, lockPath: String)
    /// The catalog could not be read or written.
    case catalog(String)
    /// A file operation outside any single run failed (the lock, the trash).
    case io(String)

    package var description: String {
        switch self {
        case .alreadyRunning(let pid, let path):
            let holder = pid.map { "process \($0)" } ?? "another process"
            return "another retention pass is running (\(holder) holds \(path)); this one did nothing"
        case .catalog(let reason): return "catalog: \(reason)"
        case .io(let reason): return reason
        }
    }
}
