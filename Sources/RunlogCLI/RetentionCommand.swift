import ArgumentParser
import Foundation
import Logging
import RunlogCatalog
import RunlogRetention
import RunlogStorage

/// The retention policy's flags, shared by `runlog retention` and `runlog serve`.
struct RetentionPolicyOptions: ParsableArguments {
    @Option(help: "Gzip the logs of runs completed longer ago than this (env RUNLOG_COMPRESS_AFTER).")
    var compressAfter: HumanDuration = environment("COMPRESS_AFTER", as: HumanDuration.init(argument:)) ?? HumanDuration(.seconds(7 * 86_400))

    @Option(help: "Delete the logs of runs completed longer ago than this (env RUNLOG_DELETE_AFTER).")
    var deleteAfter: HumanDuration = environment("DELETE_AFTER", as: HumanDuration.init(argument:)) ?? HumanDuration(.seconds(90 * 86_400))

    @Flag(help: "Delete those runs' rows too, not only their logs (env RUNLOG_DELETE_ROWS=1).")
    var deleteRows = false

    mutating func validate() throws {
        // Read here rather than as the flag's default: a flag that defaults to true could not be turned off.
        if !deleteRows { deleteRows = environment("DELETE_ROWS", as: Bool.init(switch:)) ?? false }
        try EnvironmentDefaults.check()
    }

    var policy: RetentionPolicy {
        RetentionPolicy(compressAfter: compressAfter.duration, deleteAfter: deleteAfter.duration, deleteRows: deleteRows)
    }
}

struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Run one pass of the retention policy: gzip old logs, delete expired ones.",
        discussion: """
            Safe from cron while `runlog serve` runs. The catalog's completed_at decides what is due. \
            Exit status 1 only when something failed; a pass finding another one running says so on \
            stderr and exits 0.
            """
    )

    @OptionGroup var policy: RetentionPolicyOptions

    @Flag(help: "Report what would be done; change nothing.")
    var dryRun = false

    @Option(help: "Evaluate the policy as of this moment (RFC 3339), for previews and tests.")
    var asOf: String?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Flag(help: "List every action on stderr as it happens.")
    var verbose = false

    @OptionGroup var options: StorageOptions

    func run() async throws {
        let moment = try asOf.map(Self.parseTime) ?? Timestamp.now()
        try await options.withCatalog(mustExist: true) { catalog in
            var logger = Logger(label: "runlog.retention") { label in StreamLogHandler.standardError(label: label) }
            logger.logLevel = verbose ? .info : .critical  // failures are in the report
            var pass = RetentionPass(catalog: catalog, maintenance: LogMaintenance(configuration: options.storeConfiguration, logger: logger), logger: logger)
            if verbose {
                let dryRun = self.dryRun
                pass.onAction = { action in Self.printToStandardError(Self.describe(action, dryRun: dryRun)) }
            } else if isatty(STDERR_FILENO) == 1 {
                pass.onProgress = { progress in
                    FileHandle.standardError.write(Data("\rretention: \(progress.done)/\(progress.total) runs".utf8))
                }
            }
            let report: RetentionReport
            do {
                report = try await pass.run(policy: policy.policy, asOf: moment, dryRun: dryRun)
            } catch RetentionError.alreadyRunning(let pid, let path) {
                Self.printToStandardError("runlog: \(RetentionError.alreadyRunning(pid: pid, lockPath: path))")
                return
            } catch {
                throw CommandFailure(description: "\(error)")
            }
            if pass.onProgress != nil { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(report.text, terminator: "")
            }
            if !report.errors.isEmpty { throw ExitCode(1) }
        }
    }

    static func describe(_ action: RetentionReport.Action, dryRun: Bool) -> String {
        let run = "\(action.workspaceID)/\(action.runID)"
        let verb = dryRun ? "would " : ""
        switch action.action {
        case .compress, .compressClosedSegments:
            let sizes = dryRun ? "\(action.bytesBefore) bytes" : "\(action.bytesBefore) -> \(action.bytesAfter) bytes"
            let what = action.action == .compress ? "" : " closed segments of live run"
            return "\(verb)compress\(what) \(run): \(action.segments) segments, \(sizes)"
        case .deleteLogs:
            return "\(verb)delete logs of \(run): \(action.bytesBefore) bytes"
        case .deleteRow:
            return "\(verb)delete row of \(run)"
        }
    }

    static func printToStandardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// RFC 3339, with or without fractional seconds, any offset.
    static func parseTime(_ text: String) throws -> Timestamp {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = fractional.date(from: text) ?? ISO8601DateFormatter().date(from: text) else {
            throw CommandFailure(description: "--as-of must be an RFC 3339 time like 2026-11-22T10:00:00Z, not '\(text)'")
        }
        return Timestamp(millisecondsSinceEpoch: Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }
}
