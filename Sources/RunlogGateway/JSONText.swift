import Foundation
import RunlogCatalog
import RunlogStorage

/// Small JSON writing helpers: the gateway embeds stored JSON (lines, summaries, metadata) as is.
enum JSONText {
    static func string(_ value: String) -> String {
        var result = ""
        append(value, to: &result)
        return result
    }

    /// Appends `value` to `output` as a JSON string. Most values need no escaping: those are
    /// copied whole (this runs for every field of every operational log line).
    static func append(_ value: String, to output: inout String) {
        var value = value
        let plain = value.withUTF8 { bytes in !bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") } }
        output += "\""
        guard !plain else {
            output += value
            output += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20: output += String(format: "\\u%04x", scalar.value)
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    static func optional(_ value: String?) -> String { value.map(string) ?? "null" }

    static func time(_ milliseconds: Int64?) -> String {
        milliseconds.map { string(Timestamp(millisecondsSinceEpoch: $0).rfc3339) } ?? "null"
    }

    /// The contract's run object.
    static func run(_ record: RunRecord) -> String {
        let base = "/v1/workspaces/\(record.workspaceID)/runs/\(record.id)"
        let fields = [
            "\"id\":\(string(record.id))",
            "\"workspace_id\":\(string(record.workspaceID))",
            "\"configuration_id\":\(optional(record.configurationID))",
            "\"status\":\(string(record.status.rawValue))",
            "\"exit_code\":\(record.exitCode.map(String.init) ?? "null")",
            "\"created_at\":\(time(record.createdAt))",
            "\"started_at\":\(time(record.startedAt))",
            "\"completed_at\":\(time(record.completedAt))",
            "\"last_sequence\":\(record.lastSequence)",
            "\"event_count\":\(record.eventCount)",
            "\"events_path\":\(optional(record.eventsPath))",
            "\"summary\":\(record.summary ?? "null")",
            "\"metadata\":\(record.metadata ?? "{}")",
            "\"links\":{\"self\":\(string(base)),\"events\":\(string(base + "/events")),\"summary\":\(string(base + "/summary"))}",
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }
}
