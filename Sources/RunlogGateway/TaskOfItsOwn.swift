/// Runs `body` in a task of its own and waits for it, passing on the caller's cancellation.
///
/// A Swift task keeps the memory of the deepest async stack it has grown until it ends. Work
/// whose stack grows deep, done on behalf of a task that then lives on for long (a live
/// stream's connection), goes in a task of its own so that its stack goes when it returns.
func inTaskOfItsOwn<Result>(_ body: () async throws -> Result) async throws -> Result {
    try await withoutActuallyEscaping(body) { body in
        // Awaited at once, so `body` and what it captures are used only while this call is under way.
        let work = UncheckedSendable(value: body)
        let task = Task { UncheckedSendable(value: try await work.value()) }
        return try await withTaskCancellationHandler { try await task.value.value } onCancel: { task.cancel() }
    }
}

/// A value used from another task while its owner waits for that task.
private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
