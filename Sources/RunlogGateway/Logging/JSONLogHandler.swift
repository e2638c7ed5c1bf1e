import Foundation
package import Logging
import RunlogStorage
import Synchronization

/// The server's operational logs as JSON lines on stdout, for operators and log shippers:
/// `timestamp`, `level`, `service`, `version`, `event_type`, `message`, then `request_id`,
/// `trace_id`, `workspace_id`, `run_id` when known, and any other metadata. Never mixed with a
/// run's events, which live in the logs on disk.
package struct JSONLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    let label: String
    let service: String
    let version: String
    private let output: Output

    /// Where lines go.
    package final class Output: Sendable {
        private let write: @Sendable ([UInt8]) -> Void
        private let flushing: @Sendable () -> Void
        private let dropped: @Sendable () -> Int

        /// Lines to a closure, called with one whole line at a time under a lock.
        package init(_ write: @escaping @Sendable (String) -> Void) {
            let locked = Mutex(write)
            self.write = { line in locked.withLock { $0(String(decoding: line, as: UTF8.self)) } }
            self.flushing = {}
            self.dropped = { 0 }
        }

        private init(write: @escaping @Sendable ([UInt8]) -> Void, flush: @escaping @Sendable () -> Void, dropped: @escaping @Sendable () -> Int) {
            self.write = write
            self.flushing = flush
            self.dropped = dropped
        }

        /// Lines to stdout, written by a thread of their own (``LogLineWriter``): logging never
        /// waits for stdout, and a stdout that stalls costs dropped lines, reported in a line
        /// of `event_type` `log.dropped`, not a stalled server.
        package static func standardOutput(service: String = "runlog", version: String) -> Output {
            let writer = LogLineWriter(descriptor: STDOUT_FILENO) { dropped in
                JSONLogHandler.droppedLinesNote(dropped, service: service, version: version)
            }
            return Output(write: writer.write, flush: writer.flush, dropped: { writer.droppedLines })
        }

        /// Lines dropped so far because the output did not keep up.
        package var droppedLines: Int { dropped() }

        func emit(_ line: [UInt8]) {
            write(line)
        }

        /// Returns once the lines emitted so far are written: before the process exits.
        package func flush() {
            flushing()
        }
    }

    package init(label: String, service: String = "runlog", version: String, output: Output) {
        self.label = label
        self.service = service
        self.version = version
        self.output = output
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var fields = event.metadata ?? [:]
        if !metadata.isEmpty { fields.merge(metadata) { event, _ in event } }
        output.emit(Self.line(level: event.level, message: "\(event.message)", fields: fields, label: label, service: service, version: version))
    }

    /// The line saying that `count` lines were dropped because stdout did not keep up.
    static func droppedLinesNote(_ count: Int, service: String, version: String) -> [UInt8] {
        line(
            level: .warning, message: "\(count) log lines dropped: stdout did not keep up",
            fields: ["event_type": "log.dropped", "dropped": "\(count)"], label: "runlog.log", service: service, version: version
        )
    }

    /// One log line, built as bytes and reading `fields` without copying them: this runs once
    /// per request.
    static func line(level: Logger.Level, message: String, fields: Logger.Metadata, label: String, service: String, version: String) -> [UInt8] {
        var line: [UInt8] = [UInt8(ascii: "{")]
        line.reserveCapacity(512)
        func add(_ key: String, _ value: String) {
            if line.count > 1 { line.append(UInt8(ascii: ",")) }
            JSONText.append(key, to: &line)
            line.append(UInt8(ascii: ":"))
            JSONText.append(value, to: &line)
        }
        // One pass sorts the fields out: the ids an operator searches by first, in a fixed
        // order, then the rest by name.
        var eventType = "log"
        var ids: (request: String?, trace: String?, workspace: String?, run: String?)
        var others: [(key: String, value: Logger.MetadataValue)] = []
        others.reserveCapacity(fields.count)
        for (key, value) in fields {
            switch key {
            case "event_type": eventType = text(value)
            case "request_id": ids.request = text(value)
            case "trace_id": ids.trace = text(value)
            case "workspace_id": ids.workspace = text(value)
            case "run_id": ids.run = text(value)
            default: others.append((key, value))
            }
        }
        others.sort { $0.key < $1.key }
        add("timestamp", Timestamp.now().rfc3339)
        add("level", level.rawValue)
        add("service", service)
        add("version", version)
        add("event_type", eventType)
        add("message", message)
        if let id = ids.request { add("request_id", id) }
        if let id = ids.trace { add("trace_id", id) }
        if let id = ids.workspace { add("workspace_id", id) }
        if let id = ids.run { add("run_id", id) }
        for (key, value) in others { add(key, text(value)) }
        add("logger", label)
        line.append(UInt8(ascii: "}"))
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// A metadata value as text; a string as it is, without interpolating it into a new one.
    private static func text(_ value: Logger.MetadataValue) -> String {
        if case .string(let string) = value { return string }
        return value.description
    }
}
