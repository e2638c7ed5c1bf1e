import Logging
import NIOPosix
import Synchronization

/// What every run log of a store shares.
struct RunLogEnvironment: Sendable {
    let configuration: EventStoreConfiguration
    let threadPool: NIOThreadPool
    let logger: Logger
    let wallClock: @Sendable () -> Timestamp
    let openFiles: OpenFileCounter
    let metrics: StoreMetrics
    let space: SpaceMonitor
}

/// Counts log files open for writing across a store, to keep them under the budget.
final class OpenFileCounter: Sendable {
    private let count = Atomic<Int>(0)

    var value: Int { count.load(ordering: .relaxed) }

    func opened() { count.add(1, ordering: .relaxed) }

    func closed() { count.subtract(1, ordering: .relaxed) }
}

/// Thrown inside the store when a run log retired between lookup and use; the store retries
/// with a fresh one.
struct RunLogRetired: Error {}
