import Foundation
import HTTPTypes
import Hummingbird
import Logging
import RunlogCatalog
import RunlogGateway
import RunlogStorage

/// What the fuzzers feed arbitrary bytes to: the event batch parser, the request query and
/// `Last-Event-ID` parsers, and log recovery over arbitrary file tails. Each checks the
/// properties that must hold for any input and traps (`precondition`) when one does not, which
/// libFuzzer reports as a crash. The corpus and regression tests replay inputs through the
/// same functions.
package enum FuzzTarget: String, CaseIterable, Sendable {
    case batch
    case query
    case recovery

    /// Runs one input.
    package func run(_ bytes: [UInt8]) {
        switch self {
        case .batch: Self.batch(bytes)
        case .query: Self.query(bytes)
        case .recovery: Self.recovery(bytes)
        }
    }

    // MARK: Targets

    /// A body parsed as NDJSON and as JSON, under small limits: refused with an error, or
    /// parsed into no more events than the limit, each with a valid type.
    static func batch(_ bytes: [UInt8]) {
        var limits = EventBatch.Limits()
        limits.maxEventBytes = 4096
        for parse in [{ try EventBatch(ndjson: $0, limits: limits) }, { try EventBatch(json: $0, limits: limits) }] as [([UInt8]) throws -> EventBatch] {
            guard let batch = try? parse(bytes) else { continue }
            precondition(batch.count <= bytes.count / 10, "more events than the body can hold")
            for index in 0..<batch.count {
                precondition(EventType.isValid(batch.type(at: index)), "an invalid type was accepted")
            }
        }
    }

    /// The bytes as a request's query string (and, after a newline, its `Last-Event-ID`),
    /// read the way the event routes read them; then as a list cursor and a types filter.
    static func query(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let (query, lastEventID) = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).map(String.init).splitFirst()
        var fields = HTTPFields()
        if let lastEventID, let field = HTTPField.Name("Last-Event-ID") { fields[field] = lastEventID }
        let head = HTTPRequest(method: .get, scheme: "http", authority: "fuzz", path: "/events?" + query, headerFields: fields)
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
        if let parsed = try? EventQuery(request, maxPageSize: 1000) {
            precondition(parsed.after >= 0, "a negative position was accepted")
            precondition((parsed.limit ?? 1) >= 1, "a limit below 1 was accepted")
            precondition(parsed.format != .json || (parsed.limit ?? 0) <= 1000, "a JSON page over the largest")
        }
        if let cursor = try? ListCursor(text) {
            precondition((try? ListCursor(cursor.text)) == cursor, "a cursor does not read back as itself")
        }
        // The server takes a `types` value exactly when the OpenAPI document's pattern does.
        let accepted = (try? TypeFilter(text)) != nil
        let documented = text.utf8.count <= TypeFilter.maxLength && text.wholeMatch(of: Self.typesPattern) != nil
        precondition(accepted == documented, "types '\(text)': the server says \(accepted), the document \(documented)")
    }

    /// A log whose active segment holds three valid lines and then the bytes: recovery keeps
    /// the three lines, leaves the segment ending at a line end, and a second recovery changes
    /// nothing.
    static func recovery(_ bytes: [UInt8]) {
        let root = NSTemporaryDirectory() + "runlog-fuzz-\(getpid())"
        let key = try! RunKey(workspace: "ws", run: "run")
        let directory = EventStoreConfiguration(root: root).logDirectory(for: key)
        let active = directory + "/events.ndjson"
        // Best effort: the next input overwrites the same files whether or not this removal
        // worked, and a failure here is no finding.
        defer { try? FileManager.default.removeItem(atPath: root) }
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var content = Array(Self.validLines.utf8)
        content += bytes
        FileManager.default.createFile(atPath: active, contents: Data(content))
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        let first: RecoveredLog
        do {
            first = try LogRecovery.recover(key, directory: directory, logger: logger)
        } catch {
            return  // refusing a damaged log with an error is allowed; crashing is not
        }
        precondition(first.lastSequence >= 3, "recovery lost whole lines before a damaged tail")
        let recovered = FileManager.default.contents(atPath: active).map(Array.init) ?? []
        precondition(recovered.isEmpty || recovered.last == UInt8(ascii: "\n"), "the active segment does not end at a line end")
        let second = try? LogRecovery.recover(key, directory: directory, logger: logger)
        precondition(second?.lastSequence == first.lastSequence, "a second recovery found another end")
        precondition(FileManager.default.contents(atPath: active).map(Array.init) == recovered, "a second recovery changed the segment")
    }

    nonisolated(unsafe) static let typesPattern = try! Regex(TypeFilter.pattern)

    static let validLines = (1...3).map {
        #"{"sequence":\#($0),"type":"test.event","event_id":"evt_\#($0)","created_at":"2026-12-07T00:00:00.000Z","workspace_id":"ws","run_id":"run","source":null,"payload":{"n":\#($0)}}"# + "\n"
    }.joined()
}

private extension Array where Element == String {
    func splitFirst() -> (String, String?) { (first ?? "", count > 1 ? self[1] : nil) }
}
