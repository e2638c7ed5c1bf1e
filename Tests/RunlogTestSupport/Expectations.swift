import Foundation
package import Testing

/// Expects `body` to throw an `E` for which `matches` holds; records an issue naming what was
/// thrown instead, or that nothing was.
package func expectError<E: Error>(
    _ type: E.Type,
    sourceLocation: SourceLocation = #_sourceLocation,
    matching matches: (E) -> Bool = { _ in true },
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected \(E.self), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as E {
        #expect(matches(error), "unexpected \(E.self): \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(E.self), got \(error)", sourceLocation: sourceLocation)
    }
}

extension Trait where Self == ConditionTrait {
    /// A test or suite that takes more than a few seconds: a browser, thousands of connections,
    /// killed processes, millions of events. `RUNLOG_SKIP_SLOW=1 swift test` reports them as
    /// skipped and runs the rest (see the README); CI runs everything.
    package static var slow: Self {
        .enabled(if: ProcessInfo.processInfo.environment["RUNLOG_SKIP_SLOW"] == nil, "slow: RUNLOG_SKIP_SLOW is set")
    }
}
