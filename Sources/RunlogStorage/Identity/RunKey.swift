/// Identifies one run's log: the workspace it belongs to and its own id.
///
/// Both ids are 1-128 characters of `[A-Za-z0-9_.-]` and neither `.` nor `..`, so a key
/// can become a path component without any escaping. Anything else is refused before it
/// touches the filesystem.
public struct RunKey: Hashable, Sendable, CustomStringConvertible {
    public let workspaceID: String
    public let runID: String

    /// Validates both ids; throws ``StorageError/invalidIdentifier(_:_:)`` when either is unusable.
    public init(workspace workspaceID: String, run runID: String) throws(StorageError) {
        try Self.validate(workspaceID, field: "workspace_id")
        try Self.validate(runID, field: "run_id")
        self.workspaceID = workspaceID
        self.runID = runID
    }

    public var description: String { "\(workspaceID)/\(runID)" }

    /// Checks one id against the contract's rule.
    public static func validate(_ id: String, field: String) throws(StorageError) {
        guard isValid(id) else {
            throw .invalidIdentifier(field, "must be 1-128 characters of [A-Za-z0-9_.-] and not '.' or '..'")
        }
    }

    /// Whether `id` satisfies the contract's rule for workspace and run ids.
    public static func isValid(_ id: String) -> Bool {
        let bytes = id.utf8
        guard (1...128).contains(bytes.count), id != ".", id != ".." else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }
}
