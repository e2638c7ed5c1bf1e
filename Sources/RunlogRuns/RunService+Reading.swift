import NIOCore
package import RunlogCatalog
package import RunlogStorage

/// What readers of runs need, so that they go through the service rather than around it.
extension RunService {
    // MARK: Rows

    /// A page of a workspace's runs, newest first (see ``RunCatalog/list(workspace:filter:limit:cursor:)``).
    package func list(workspace: String, filter: RunFilter = RunFilter(), limit: Int, cursor: String? = nil) async throws(RunError) -> RunPage {
        do {
            return try await catalog.list(workspace: workspace, filter: filter, limit: limit, cursor: cursor)
        } catch RunCatalogError.invalidCursor {
            throw .invalidCursor
        } catch {
            throw RunError(error)
        }
    }

    /// Checks that appends can be stored (a log can be created and read under the storage root,
    /// and the volume has space) and that the catalog answers; throws what failed.
    package func checkHealth() async throws(RunError) {
        guard await store.hasSpace() else { throw .outOfSpace("the storage volume is full: a probe file cannot be written") }
        let probe = try key(workspace: "_health", run: "probe")
        do {
            _ = try await store.lastSequenceOrCreate(probe)
        } catch {
            throw .storage(error)
        }
        _ = try await list(workspace: "_health", limit: 1)
    }

    /// Runs with an open log, and log files open for writing (gauges for `/metrics`).
    package var openLogs: (runs: Int, files: Int) { (store.openRunCount, store.openFileCount) }

    // MARK: Events

    /// The lines after `sequence`, as they are now, in chunks of whole lines.
    package func events(of key: RunKey, after sequence: Int64 = 0) -> EventLogReader {
        store.events(of: key, after: sequence)
    }

    /// The lines after `sequence` as one gzip stream (archived segments sent as stored).
    package func gzippedEvents(of key: RunKey, after sequence: Int64 = 0) -> GzipLogReader {
        store.gzippedEvents(of: key, after: sequence)
    }

    /// The whole log as open plain files, or nil when it must be read with ``events(of:after:)``.
    package func plainFiles(of key: RunKey) async throws(RunError) -> [PlainLogFile]? {
        do {
            return try await store.plainFiles(of: key)
        } catch {
            throw .storage(error)
        }
    }

    /// The last sequence readers can see.
    package func lastSequence(of key: RunKey) async throws(RunError) -> Int64 {
        do {
            return try await store.lastSequence(of: key)
        } catch {
            throw .storage(error)
        }
    }

    /// Waits until the log has lines after `sequence`, or `wakeup` rings; the last readable sequence.
    package func waitForEvents(of key: RunKey, after sequence: Int64, orUntil wakeup: Wakeup) async throws(RunError) -> Int64 {
        do {
            return try await store.waitForEvents(of: key, after: sequence, orUntil: wakeup)
        } catch {
            throw .storage(error)
        }
    }

    /// The lines after `sequence` from memory, or nil when the files must be read.
    package func recentEvents(of key: RunKey, after sequence: Int64) async throws(RunError) -> [EventChunk]? {
        do {
            return try await store.recentEvents(of: key, after: sequence)
        } catch {
            throw .storage(error)
        }
    }
}
