/// How durable an appended batch is before its append is acknowledged.
public enum Durability: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Acknowledged once buffered; the flush hands bytes to the OS later. A crash of the process
    /// or the machine loses at most the unflushed window (see the flush settings).
    case none
    /// Acknowledged once written to the OS: survives a killed process, not a power loss.
    case flush
    /// Acknowledged once written and fdatasync'ed: survives a killed process and a power loss.
    /// Concurrent appenders share one fsync (group commit).
    case fsync

    public var description: String { rawValue }

    /// Whether an appender waits for the write of its lines.
    var acknowledgesAfterWrite: Bool { self != .none }
}
