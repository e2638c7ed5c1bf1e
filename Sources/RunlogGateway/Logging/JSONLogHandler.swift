import Foundation
import Logging
import RunlogStorage
import Synchronization

/// The server's operational logs as JSON lines on stdout, for operators and log shippers:
/// `timestamp`, `level`, `service`, `version`, `event_type`, `message`, then `request_id`,
/// `trace_id`, `workspace_id`, `run_id` when known, and any other metadata. Never mixed with a
/// run's events, which live in the logs on disk.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let service: String
    let version: String
    private let output: Output

    /// Where lines go: stdout by default; one line is written whole under a lock.
    public final class Output: Sendable {
        private let write: Mutex<@Sendable (String) -> Void>

        public init(_ write: @escaping @Sendable (String) -> Void) {
            self.write = Mutex(write)
        }

        public static let standardOutput = Output { line in
            FileHandle.standardOutput.write(Data(line.utf8))
        }

        func emit(_ line: String) {
            write.withLock { $0(line) }
        }
    }

    public init(label: String, service: String = "runlog", version: String, output: Output = .standardOutput) {
        self.label = label
        self.service = service
        self.version = version
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let leadingKeys = ["request_id", "trace_id", "workspace_id", "run_id"]

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        // Built in one string: this runs once per request.
        var line = "{"
        line.reserveCapacity(512)
        func add(_ key: String, _ value: String) {
            if line.utf8.count > 1 { line += "," }
            JSONText.append(key, to: &line)
            line += ":"
            JSONText.append(value, to: &line)
        }
        add("timestamp", Timestamp.now().rfc3339)
        add("level", event.level.rawValue)
        add("service", service)
        add("version", version)
        add("event_type", fields.removeValue(forKey: "event_type").map { "\($0)" } ?? "log")
        add("message", "\(event.message)")
        for key in Self.leadingKeys {
            if let value = fields.removeValue(forKey: key) { add(key, "\(value)") }
        }
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) { add(key, "\(value)") }
        add("logger", label)
        line += "}\n"
        output.emit(line)
    }
}
