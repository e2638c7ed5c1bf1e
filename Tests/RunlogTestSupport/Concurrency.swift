import Foundation

/// Runs blocking work (a process, a pipe, a socket) on a thread of its own, never on one of the
/// few threads of Swift's cooperative pool, which the other tests in the process need meanwhile.
package func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// A ``waitUntil(_:within:_:)`` whose condition did not come to hold in time.
package struct WaitTimedOut: Error, CustomStringConvertible {
    package let description: String

    package init(description: String) {
        self.description = description
    }
}

/// Yields until `condition` holds; throws ``WaitTimedOut`` naming `what` after `limit`, and
/// stops when the test's time limit cancels it (a plain `Task.yield()` loop would ignore that
/// and hang the whole run instead of failing the test).
package func waitUntil(_ what: String, within limit: Duration = .seconds(30), _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while try !condition() {
        try Task.checkCancellation()
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(description: "waited \(limit) for \(what)") }
        await Task.yield()
    }
}

/// Polls an asynchronous `condition` (a query, a request) every `interval` until it holds;
/// throws ``WaitTimedOut`` naming `what` after `limit`.
package func waitUntil(
    _ what: String, within limit: Duration = .seconds(30), every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + limit
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw WaitTimedOut(description: "waited \(limit) for \(what)") }
        try await Task.sleep(for: interval)
    }
}
