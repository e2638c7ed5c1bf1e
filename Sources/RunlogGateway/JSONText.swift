import Foundation
import RunlogCatalog
import RunlogStorage

/// Small JSON writing helpers: the gateway embeds stored JSON (lines, summaries, metadata) as is.
enum JSONText {
    static func string(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
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
