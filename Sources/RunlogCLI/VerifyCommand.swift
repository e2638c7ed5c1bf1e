import ArgumentParser
import Foundation
import Logging
import RunlogCatalog
import RunlogRuns
import RunlogStorage

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every run's files against its catalog row; exit status 1 if anything is wrong.",
        discussion: "With --repair, fixes what can be fixed: torn tails, counts, summaries, pointers, runs whose log ends with run.completed. Gaps and missing logs are reported, not repaired."
    )

    @OptionGroup var options: StorageOptions

    @Flag(help: "Fix what can be fixed.")
    var repair = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        // Checking reads; repairing writes, which only one process may do at a time.
        let lock = try repair ? options.lockForWriting(instead: "stop it before repairing, or verify without --repair") : nil
        defer { withExtendedLifetime(lock) {} }
        let report = try await options.withCatalog { catalog in
            var logger = Logger(label: "runlog")
            logger.logLevel = .warning
            let store = EventStore(configuration: options.storeConfiguration, logger: logger)
            let service = RunService(store: store, catalog: catalog, logger: logger)
            let report: VerificationReport
            do {
                report = try await service.verify(repair: repair)
            } catch {
                await store.shutdown()
                throw CommandFailure(description: "\(error)")
            }
            await store.shutdown()
            return report
        }

        if json {
            let findings = report.findings.map {
                ["workspace_id": $0.workspaceID, "run_id": $0.runID, "problem": $0.problem, "repaired": $0.repaired] as [String: Any]
            }
            let object: [String: Any] = ["runs_checked": report.runsChecked, "findings": findings, "unresolved": report.unresolved.count]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for finding in report.findings {
                print("\(finding.workspaceID)/\(finding.runID): \(finding.problem)\(finding.repaired ? " (repaired)" : "")")
            }
            print("checked \(report.runsChecked) runs: \(report.findings.count) problems, \(report.unresolved.count) unresolved")
        }
        if !report.unresolved.isEmpty { throw ExitCode(1) }
    }
}
