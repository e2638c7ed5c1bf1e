import CoreMetrics
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether the storage volume has room for appends, as the writes themselves find out.
///
/// A write that fails with `ENOSPC` or `EDQUOT` marks the store out of space; the next write
/// that succeeds clears it. Between the two nothing may be writing (every append is refused),
/// so ``hasSpace(probe:)`` also tries a small probe file, at most once a second: that is how
/// `/healthz` sees space return before any producer retries.
final class SpaceMonitor: Sendable {
    private struct State {
        var outOfSpaceSince: ContinuousClock.Instant?
        var lastProbe: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let logger: Logger
    private let outOfSpaceGauge: Gauge
    private let outOfSpaceFailures: Counter
    private let ioFailures: Counter

    /// How long a probe's answer stands.
    static let probeInterval: Duration = .seconds(1)
    /// How much a probe writes: enough that a volume with only crumbs left does not pass.
    static let probeBytes = 64 * 1024

    init(logger: Logger, factory: any MetricsFactory) {
        self.logger = logger
        outOfSpaceGauge = Gauge(label: Self.outOfSpaceLabel, factory: factory)
        outOfSpaceFailures = Counter(label: Self.failuresLabel, dimensions: [("reason", "out_of_space")], factory: factory)
        ioFailures = Counter(label: Self.failuresLabel, dimensions: [("reason", "io")], factory: factory)
        outOfSpaceGauge.record(0)
    }

    /// 1 while appends cannot be stored for want of space: the metric to alert on.
    static let outOfSpaceLabel = "runlog_storage_out_of_space"
    /// Failed log writes by reason (`out_of_space`, `io`).
    static let failuresLabel = "runlog_storage_write_failures_total"

    var isOutOfSpace: Bool { state.withLock { $0.outOfSpaceSince != nil } }

    /// Notes what a write to a log did: nil when it succeeded.
    func noteWrite(failure: StorageError?) {
        switch failure {
        case nil:
            let since = state.withLock { state in
                defer { state.outOfSpaceSince = nil }
                return state.outOfSpaceSince
            }
            if let since { recovered(after: since) }
        case .outOfSpace:
            outOfSpaceFailures.increment()
            let first = state.withLock { state in
                defer { state.outOfSpaceSince = state.outOfSpaceSince ?? .now }
                return state.outOfSpaceSince == nil
            }
            if first {
                outOfSpaceGauge.record(1)
                logger.error("the storage volume is full: appends are refused until space returns", metadata: ["error": "\(failure!)"])
            }
        case .some:
            ioFailures.increment()
        }
    }

    /// Whether appends can be stored: true unless the store is out of space and a probe file
    /// (written by `probe`, at most once per ``probeInterval``) still cannot be written.
    func hasSpace(probe: () async -> StorageError?) async -> Bool {
        let due = state.withLock { state -> Bool in
            guard state.outOfSpaceSince != nil else { return false }
            if let last = state.lastProbe, ContinuousClock.now - last < Self.probeInterval { return false }
            state.lastProbe = .now
            return true
        }
        guard due else { return !isOutOfSpace }
        switch await probe() {
        case nil:
            noteWrite(failure: nil)
            return true
        case .outOfSpace?:
            return false
        case let other?:
            // Not a space problem: leave the verdict to the writes.
            logger.error("the storage space probe failed", metadata: ["error": "\(other)"])
            return !isOutOfSpace
        }
    }

    private func recovered(after since: ContinuousClock.Instant) {
        outOfSpaceGauge.record(0)
        logger.notice("the storage volume has space again: appends are accepted", metadata: ["out_of_space_for": "\(ContinuousClock.now - since)"])
    }

    /// Writes and removes a probe file of ``probeBytes`` at `path` (blocking).
    func probe(at path: String) -> StorageError? {
        var failure: StorageError?
        do {
            let file = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
            let bytes = [UInt8](repeating: 0, count: Self.probeBytes)
            try bytes.withUnsafeBytes { try file.writeAll($0) }
            try file.synchronizeData()
        } catch {
            failure = StorageError(error)
        }
        do {
            try FileSystem.removeFile(path)
        } catch {
            logger.error("could not remove the storage space probe", metadata: ["error": "\(error)"])
        }
        return failure
    }
}
