import Foundation
package import NIOCore
import RunlogCatalog
import RunlogStorage

/// A run's summary, folded from its events. Schema `runlog.run_summary/v1`, documented in
/// `docs/summary.md`; fields are only ever added.
package struct RunSummary: Codable, Sendable, Equatable {
    package struct ErrorEvent: Codable, Sendable, Equatable {
        package var sequence: Int64
        package var type: String
        package var message: String?
    }

    package var schema = "runlog.run_summary/v1"
    package var status: String
    package var exitCode: Int?
    /// Why the run ended, when `run.completed` says (`payload.reason`): `timed_out` when the
    /// server completed an abandoned run.
    package var reason: String?
    package var eventCount: Int64
    package var countsByType: [String: Int64]
    package var firstSequence: Int64?
    package var lastSequence: Int64?
    package var firstEventAt: String?
    package var lastEventAt: String?
    package var startedAt: String?
    package var completedAt: String?
    /// From `run.started` to `run.completed` (or to the last event while live); else first to last event.
    package var durationMs: Int64?
    package var errorCount: Int64
    package var lastError: ErrorEvent?
    /// The producer's own `run.completed` `payload.summary` object, whole.
    package var producerSummary: JSONValue?

    enum CodingKeys: String, CodingKey {
        case schema, status
        case exitCode = "exit_code"
        case reason
        case eventCount = "event_count"
        case countsByType = "counts_by_type"
        case firstSequence = "first_sequence"
        case lastSequence = "last_sequence"
        case firstEventAt = "first_event_at"
        case lastEventAt = "last_event_at"
        case startedAt = "started_at"
        case completedAt = "completed_at"
        case durationMs = "duration_ms"
        case errorCount = "error_count"
        case lastError = "last_error"
        case producerSummary = "producer_summary"
    }

    /// Compact JSON with sorted keys (stable bytes for the same summary).
    package var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// Folds events into a summary, in any order (appends of one run may finish out of order),
/// so it can run incrementally while a run is live and from the files after a restart.
package struct SummaryBuilder: Sendable {
    package private(set) var eventCount: Int64 = 0
    package private(set) var storedBytes: Int64 = 0
    package private(set) var errorCount: Int64 = 0
    private var countsByType: [String: Int64] = [:]
    private var firstSequence: Int64?
    private var lastSequence: Int64?
    package private(set) var firstEventAt: Int64?
    private var lastEventAt: Int64?
    package private(set) var startedAt: Int64?
    package private(set) var completion: Completion?
    private var lastError: RunSummary.ErrorEvent?

    /// What `run.completed` said.
    package struct Completion: Sendable, Equatable {
        package var status: String
        package var exitCode: Int?
        package var reason: String?
        package var at: Int64
        package var producerSummary: JSONValue?
    }

    package init() {}

    package var lastSequenceSeen: Int64 { lastSequence ?? 0 }

    /// Adds one event. `payload` is its raw JSON (nil when absent); it is decoded only for
    /// lifecycle and error events.
    package mutating func fold(sequence: Int64, type: String, createdAt: Int64, payload: ArraySlice<UInt8>?) {
        eventCount += 1
        countsByType[type, default: 0] += 1
        firstSequence = min(firstSequence ?? sequence, sequence)
        lastSequence = max(lastSequence ?? sequence, sequence)
        firstEventAt = min(firstEventAt ?? createdAt, createdAt)
        lastEventAt = max(lastEventAt ?? createdAt, createdAt)

        let lifecycle = type == LifecycleEvent.started || type == LifecycleEvent.completed
        let isError = type.hasSuffix(".error") || type.hasSuffix(".failed")
            || (payload.map { RawJSON.string(forKey: "level", in: $0) == "error" } ?? false)
        guard isError || lifecycle else { return }
        let value = payload.flatMap { JSONValue(parsing: $0) }

        if type == LifecycleEvent.started { startedAt = min(startedAt ?? createdAt, createdAt) }
        if type == LifecycleEvent.completed {
            var exitCode: Int?
            if case .number(let number)? = value?["exit_code"] { exitCode = Int(number) }
            completion = Completion(
                status: value?["status"]?.string ?? "succeeded", exitCode: exitCode, reason: value?["reason"]?.string, at: createdAt,
                producerSummary: value?["summary"]
            )
        }
        if isError {
            errorCount += 1
            if sequence >= (lastError?.sequence ?? 0) {
                let message = value?["message"]?.string ?? value?["error"]?.string ?? value?["line"]?.string ?? value?.string
                lastError = .init(sequence: sequence, type: type, message: message)
            }
        }
    }

    /// Counts bytes the run's events take in the log.
    package mutating func add(storedBytes bytes: Int) {
        storedBytes += Int64(bytes)
    }

    /// Adds one stored line (as read from the log).
    package mutating func fold(line: ByteBuffer) {
        guard let event = StoredEvent(line: line) else { return }
        let payload = event.payload.elementsEqual("null".utf8) ? nil : event.payload
        fold(sequence: event.sequence, type: event.type, createdAt: Timestamp(rfc3339: event.createdAt)?.millisecondsSinceEpoch ?? 0, payload: payload)
        add(storedBytes: line.readableBytes + 1)
    }

    /// The summary as of now, for a run in `status`.
    package func summary(status: String, exitCode: Int?) -> RunSummary {
        let completedAt = completion?.at
        var duration: Int64?
        if let startedAt {
            duration = (completedAt ?? lastEventAt ?? startedAt) - startedAt
        } else if let firstEventAt, let lastEventAt {
            duration = lastEventAt - firstEventAt
        }
        return RunSummary(
            status: status, exitCode: exitCode, reason: completion?.reason, eventCount: eventCount, countsByType: countsByType,
            firstSequence: firstSequence, lastSequence: lastSequence,
            firstEventAt: firstEventAt.map(format), lastEventAt: lastEventAt.map(format),
            startedAt: startedAt.map(format), completedAt: completedAt.map(format),
            durationMs: duration, errorCount: errorCount, lastError: lastError,
            producerSummary: completion?.producerSummary
        )
    }
}

extension RunRecord {
    /// Takes a run's counts (last sequence, events, bytes, errors) and start time from its folded events.
    mutating func takeCounts(from builder: SummaryBuilder) {
        lastSequence = builder.lastSequenceSeen
        eventCount = builder.eventCount
        byteSize = builder.storedBytes
        errorCount = builder.errorCount
        startedAt = startedAt ?? builder.startedAt
    }

    /// Takes `status`, the counts and the summary of `builder`'s events (the row's exit code,
    /// which a live run does not have yet, goes into the summary).
    mutating func takeProgress(_ status: RunStatus, from builder: SummaryBuilder) {
        self.status = status
        takeCounts(from: builder)
        summary = builder.summary(status: status.rawValue, exitCode: exitCode).json
    }

    /// Makes the row terminal as `completion` (the run's `run.completed`) says, with the exact
    /// final counts and summary of `builder`'s events.
    mutating func complete(_ completion: SummaryBuilder.Completion, from builder: SummaryBuilder) {
        exitCode = completion.exitCode
        completedAt = completion.at
        takeProgress(RunStatus(rawValue: completion.status) ?? .succeeded, from: builder)
    }
}

func format(_ milliseconds: Int64) -> String {
    Timestamp(millisecondsSinceEpoch: milliseconds).rfc3339
}
