import Foundation

/// Runs blocking work (a process, a pipe) on a thread of its own, not on one of the cooperative
/// pool's few threads, which the other tests in the process need.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// Yields until `condition` holds. The test's time limit cancels the wait, which a plain
/// `Task.yield()` loop would ignore, hanging the whole run instead of failing the test.
func waitUntil(_ condition: () throws -> Bool) async throws {
    while try !condition() {
        try Task.checkCancellation()
        await Task.yield()
    }
}
