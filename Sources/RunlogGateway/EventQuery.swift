import Foundation
import HTTPTypes
package import Hummingbird
import RunlogStorage

/// How a reader asked for events: where to start, how many, which types, in which format.
package struct EventQuery: Sendable {
    package enum Format: Sendable { case sse, ndjson, json }

    package var format: Format
    /// Deliver events with a greater sequence.
    package var after: Int64
    package var limit: Int?
    var types: TypeFilter?
    /// NDJSON: stay open and live.
    var follow: Bool

    /// SSE and followed NDJSON go on as events come; a plain download ends with the log.
    var isLive: Bool { format == .sse || follow }

    /// The whole log as NDJSON, unfiltered and unlimited: it may go out gzipped as stored, or
    /// as its files.
    var isWholeDownload: Bool { format == .ndjson && !follow && types == nil && limit == nil }

    init(format: Format, after: Int64, limit: Int?, types: TypeFilter?, follow: Bool) {
        self.format = format
        self.after = after
        self.limit = limit
        self.types = types
        self.follow = follow
    }

    /// The format `request` asks for: its `format` parameter, else its `Accept` header.
    static func format(of request: Request) throws -> Format {
        let query = request.uri.queryParameters
        switch query.get("format") {
        case "sse"?: return .sse
        case "ndjson"?: return .ndjson
        case "json"?: return .json
        case let other?: throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "format must be sse, ndjson or json, not \(other)")
        case nil:
            let accept = request.headers[.accept] ?? ""
            if try flag(query.get("stream"), "stream") || accept.contains("text/event-stream") { return .sse }
            if accept.contains("application/json") && !accept.contains("ndjson") { return .json }
            return .ndjson
        }
    }

    package init(_ request: Request, maxPageSize: Int) throws {
        let query = request.uri.queryParameters
        format = try Self.format(of: request)
        follow = try Self.flag(query.get("follow"), "follow")
        let afterSequence = try Self.integer(query.get("after_sequence"), "after_sequence")
        let fromSequence = try Self.integer(query.get("from_sequence"), "from_sequence")
        // Both are lower bounds: given together, the later one holds.
        after = max(afterSequence ?? 0, fromSequence.map { max(0, $0 - 1) } ?? 0)
        if let lastEventID = request.headers[.lastEventID], !lastEventID.isEmpty {
            // Sequences stay far below 10^18: more digits are refused rather than parsed into a
            // range check the document cannot state. Checked whatever the format, used by SSE.
            guard lastEventID.utf8.count <= 18, let resume = try Self.integer(lastEventID, "Last-Event-ID") else {
                throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "Last-Event-ID must be a sequence number of at most 18 digits")
            }
            // EventSource's own resume point wins.
            if format == .sse { after = resume }
        }
        limit = try Self.integer(query.get("limit"), "limit").map(Int.init)
        if let limit, limit < 1 {
            throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "limit must be at least 1")
        }
        // A JSON page holds at most `maxPageSize`; asking for more gets a full page (and its
        // `next_after_sequence`), not an error.
        if format == .json, let requested = limit { limit = min(requested, maxPageSize) }
        types = try query.get("types").map(TypeFilter.init)
    }

    /// A boolean parameter: `true` or `false`, false when absent; anything else is refused, so
    /// a misspelt `follow=yes` does not quietly mean no.
    static func flag(_ text: String?, _ name: String) throws -> Bool {
        switch text {
        case nil, "false"?: return false
        case "true"?: return true
        case let other?: throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "\(name) must be true or false, not '\(other)'")
        }
    }

    static func integer(_ text: String?, _ name: String) throws -> Int64? {
        guard let text else { return nil }
        // Digits only: `Int64.init` would also take a sign.
        guard text.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }), let value = Int64(text) else {
            throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "\(name) must be a non-negative integer")
        }
        return value
    }
}

/// `types=run.*,console.line`: exact types, or prefixes ending in `*`.
package struct TypeFilter: Sendable {
    var exact: Set<String> = []
    var prefixes: [String] = []

    /// What a `types` value looks like: comma-separated items, no blanks, each an event type or
    /// the start of one followed by `*` (ECMA and Swift regex syntax alike). The OpenAPI
    /// document states the same, so that a schema-valid value is always accepted.
    package static let pattern = #"^([a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+|([a-z][a-z0-9_-]*\.)*([a-z][a-z0-9_-]*)?\*)(,([a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+|([a-z][a-z0-9_-]*\.)*([a-z][a-z0-9_-]*)?\*))*$"#
    /// The longest `types` value.
    package static let maxLength = 2048

    package init(_ text: String) throws {
        guard text.utf8.count <= Self.maxLength else {
            throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "types is longer than \(Self.maxLength) characters")
        }
        guard !text.isEmpty else {
            throw Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "types must list at least one type")
        }
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            // Each item must be able to match: an event type, or the start of one and `*`.
            if item.hasSuffix("*") {
                let prefix = item.dropLast()
                let segments = prefix.hasSuffix(".") ? prefix.dropLast() : prefix
                guard prefix.isEmpty || Self.isDotted(segments, minimumSegments: 1) else { throw Self.invalid(item) }
                prefixes.append(String(prefix))
            } else {
                guard Self.isDotted(item[...], minimumSegments: 2) else { throw Self.invalid(item) }
                exact.insert(item)
            }
        }
    }

    /// Segments of `[a-z][a-z0-9_-]*` joined by dots, at least `minimumSegments` of them. No
    /// length limit: a longer type than any stored simply matches nothing.
    static func isDotted(_ text: Substring, minimumSegments: Int) -> Bool {
        var segments = 0
        for segment in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard let first = segment.utf8.first, first &- UInt8(ascii: "a") < 26 else { return false }
            let rest = segment.utf8.dropFirst()
            guard rest.allSatisfy({ $0 &- UInt8(ascii: "a") < 26 || $0 &- UInt8(ascii: "0") < 10 || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }) else {
                return false
            }
            segments += 1
        }
        return segments >= minimumSegments
    }

    static func invalid(_ item: String) -> Problem {
        Problem(.badRequest, "invalid-parameter", "Invalid parameter", detail: "types: '\(item)' is neither an event type (like run.started) nor the start of one followed by '*'")
    }

    func matches(_ type: String) -> Bool {
        exact.contains(type) || prefixes.contains { type.hasPrefix($0) }
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
    static let xAccelBuffering = Self("X-Accel-Buffering")!

}

extension EventQuery {
    /// Whether an `Accept-Encoding` value accepts gzip (`gzip` or `*`, without `q=0`).
    static func acceptsGzip(_ header: String?) -> Bool {
        guard let header else { return false }
        var gzip: Bool?
        var any: Bool?
        for item in header.split(separator: ",") {
            let parts = item.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let name = parts.first else { continue }
            let refused = parts.dropFirst().contains { $0.replacingOccurrences(of: " ", with: "").range(of: #"^q=0(\.0*)?$"#, options: .regularExpression) != nil }
            if name == "gzip" || name == "x-gzip" { gzip = !refused } else if name == "*" { any = !refused }
        }
        return gzip ?? any ?? false
    }
}
