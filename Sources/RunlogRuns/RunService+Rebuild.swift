package import RunlogCatalog
import RunlogStorage

/// The catalog rebuilt from the files, which are the source of truth for what happened in a run.
extension RunService {
    /// What ``restoreMissingRows()`` found and did.
    package struct RestoreReport: Sendable, Equatable {
        /// Runs with a log directory under the storage root.
        package var runsFound = 0
        /// Rows created from a run's files.
        package var rowsCreated = 0
        /// Runs that had a row already (left as they are: `runlog verify --repair` corrects them).
        package var rowsPresent = 0
    }

    /// Creates a catalog row for every run whose log directory has none, from its files alone:
    /// status, times, counts and summary as its events say. What only the catalog held (the
    /// run's `configuration_id` and `metadata`) cannot be restored; `created_at` becomes the
    /// time of its first event. Safe to run again: rows that exist are left alone.
    package func restoreMissingRows() async throws(RunError) -> RestoreReport {
        var report = RestoreReport()
        let keys: [RunKey]
        do {
            keys = try await store.storedRuns()
        } catch {
            throw .storage(error)
        }
        for key in keys {
            report.runsFound += 1
            if try await fetch(key) != nil {
                report.rowsPresent += 1
                continue
            }
            let builder = try await rebuild(key)
            let createdAt = builder.firstEventAt ?? 0
            var record = RunRecord(
                workspaceID: key.workspaceID, id: key.runID, createdAt: createdAt, eventsPath: EventStoreConfiguration.relativeLogDirectory(for: key)
            )
            if let completion = builder.completion {
                record.complete(completion, from: builder)
            } else {
                record.takeProgress(builder.startedAt == nil ? .queued : .running, from: builder)
            }
            do {
                try await catalog.create(record)
            } catch RunCatalogError.runExists {
                // Created meanwhile (by a server that is not supposed to run): it stands.
                report.rowsPresent += 1
                continue
            } catch {
                throw RunError(error)
            }
            report.rowsCreated += 1
        }
        return report
    }
}
