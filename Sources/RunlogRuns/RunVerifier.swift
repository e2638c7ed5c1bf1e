import RunlogCatalog
import RunlogStorage

/// What `runlog verify` found: one finding per problem, and whether it was repaired.
package struct VerificationReport: Sendable, Equatable {
    package struct Finding: Sendable, Equatable {
        package var workspaceID: String
        package var runID: String
        package var problem: String
        package var repaired: Bool
    }

    package var runsChecked = 0
    package var findings: [Finding] = []

    /// Problems left after the pass (all of them without `--repair`).
    package var unresolved: [Finding] { findings.filter { !$0.repaired } }
}

extension RunService {
    /// Checks every run's files against its row: lines whole and valid, sequences contiguous,
    /// counts, status and the `events_path` pointer. With `repair`, truncates torn tails (by
    /// recovering the log), rewrites counts, summary and pointer from the files, and completes
    /// runs whose log ends with `run.completed`. Gaps and missing logs cannot be repaired.
    package func verify(repair: Bool) async throws(RunError) -> VerificationReport {
        var report = VerificationReport()
        var last: (workspace: String, id: String)?
        while true {
            let rows: [RunRecord]
            do {
                rows = try await catalog.allRuns(after: last, size: 500)
            } catch {
                throw RunError(error)
            }
            guard let final = rows.last else { break }
            last = (final.workspaceID, final.id)
            for row in rows {
                report.runsChecked += 1
                report.findings += try await verify(row, repair: repair)
            }
        }
        return report
    }

    private func verify(_ row: RunRecord, repair: Bool) async throws(RunError) -> [VerificationReport.Finding] {
        func finding(_ problem: String, repaired: Bool = false) -> VerificationReport.Finding {
            .init(workspaceID: row.workspaceID, runID: row.id, problem: problem, repaired: repaired)
        }
        guard let key = try? RunKey(workspace: row.workspaceID, run: row.id) else {
            return [finding("the row's ids are not valid run ids")]
        }
        if row.logsDeletedAt != nil { return [] }  // retention removed the logs on purpose
        let inspection: LogInspector.Report
        do {
            inspection = try await store.inspect(key)
        } catch {
            throw .storage(error)
        }
        guard inspection.exists else { return [finding("the run has no log directory")] }

        var findings: [VerificationReport.Finding] = []
        let expectedPath = EventStoreConfiguration.relativeLogDirectory(for: key)
        if row.eventsPath != expectedPath {
            findings.append(finding("events_path is \(row.eventsPath ?? "null"), expected \(expectedPath)"))
        }
        findings += inspection.problems.map { finding($0) }
        let endsCompleted = inspection.lastEventType == LifecycleEvent.completed
        if inspection.lastSequence != row.lastSequence || inspection.eventCount != row.eventCount || inspection.storedBytes != row.byteSize {
            findings.append(finding(
                "the row says \(row.lastSequence) last / \(row.eventCount) events / \(row.byteSize) bytes, the log has "
                    + "\(inspection.lastSequence) / \(inspection.eventCount) / \(inspection.storedBytes)"
            ))
        }
        if endsCompleted && !row.status.isTerminal {
            findings.append(finding("the log ends with run.completed but the run is \(row.status.rawValue)"))
        } else if !endsCompleted && row.status.isTerminal {
            findings.append(finding("the run is \(row.status.rawValue) but its log does not end with run.completed"))
        }
        guard repair, !findings.isEmpty else { return findings }

        // Repair: recovery truncates a damaged tail and cleans leftovers; the row is rebuilt from the files.
        do {
            _ = try await store.lastSequence(of: key)
        } catch {
            throw .storage(error)
        }
        let after: LogInspector.Report
        do {
            after = try await store.inspect(key)
        } catch {
            throw .storage(error)
        }
        if after.problems.isEmpty {
            try await rewriteRow(key, pointer: expectedPath)
        }
        // Either the run now checks clean and everything was repaired, or nothing counts as repaired.
        let remaining = try await self.verify(try await run(key), repair: false)
        return findings.map { original in
            var result = original
            result.repaired = remaining.isEmpty
            return result
        }
    }

    /// Rewrites a row's counts, summary, pointer and (from `run.completed`) status from its log.
    private func rewriteRow(_ key: RunKey, pointer: String) async throws(RunError) {
        let builder = try await rebuild(key)
        let completion = builder.completion
        do {
            try await catalog.update(workspace: key.workspaceID, id: key.runID) { row in
                row.eventsPath = pointer
                if let completion, !row.status.isTerminal {
                    row.complete(completion, from: builder)
                } else {
                    row.takeProgress(row.status, from: builder)
                }
            }
        } catch {
            throw RunError(error)
        }
        forgetLiveState(of: key)
    }
}
