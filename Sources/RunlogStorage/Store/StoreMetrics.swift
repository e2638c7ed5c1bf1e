import CoreMetrics

/// The storage engine's own metrics, through swift-metrics: the engine knows no exporter,
/// the server chooses one (Prometheus at `/metrics`).
package struct StoreMetrics: Sendable {
    /// Time to write one flush's lines to the files (fsync included, under `fsync`).
    let flushDuration: CoreMetrics.Timer
    /// Time of one `fdatasync` of an active segment.
    let fsyncDuration: CoreMetrics.Timer

    init(factory: any MetricsFactory) {
        flushDuration = CoreMetrics.Timer(label: Self.flushLabel, factory: factory)
        fsyncDuration = CoreMetrics.Timer(label: Self.fsyncLabel, factory: factory)
    }

    /// The timers' labels, for exporters that configure them (histogram buckets).
    package static let flushLabel = "runlog_flush_duration_seconds"
    package static let fsyncLabel = "runlog_fsync_duration_seconds"
}

extension CoreMetrics.Timer {
    /// Records a measured `Duration`.
    func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
