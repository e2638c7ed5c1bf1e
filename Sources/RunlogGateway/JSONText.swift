import Foundation
import RunlogCatalog
import RunlogStorage

/// Small JSON writing helpers: the gateway embeds stored JSON (lines, summaries, metadata) as is.
enum JSONText {
    static func string(_ value: String) -> String {
        var bytes: [UInt8] = []
        append(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `value` to `output` as a JSON string. Most values need no escaping: those are
    /// copied whole (this runs for every field of every operational log line). UTF-8 bytes of
    /// characters beyond ASCII never need it, so the escaping goes byte by byte.
    static func append(_ value: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { bytes in
            guard bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                output.append(contentsOf: bytes)
                return
            }
            let hex = Array("0123456789abcdef".utf8)
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), byte]
                case UInt8(ascii: "\n"): output += Array(#"\n"#.utf8)
                case UInt8(ascii: "\r"): output += Array(#"\r"#.utf8)
                case UInt8(ascii: "\t"): output += Array(#"\t"#.utf8)
                case ..<0x20: output += Array(#"\u00"#.utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
                default: output.append(byte)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
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
