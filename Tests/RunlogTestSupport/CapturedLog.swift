package import InMemoryLogging
package import Logging

/// Log lines kept in memory (swift-log's `InMemoryLogHandler`), to check what code reports.
package struct CapturedLog: Sendable {
    private let handler = InMemoryLogHandler()

    package init() {}

    /// A logger that writes here, at `level` and above.
    package func logger(level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: "test") { [handler] _ in handler }
        logger.logLevel = level
        return logger
    }

    package var entries: [InMemoryLogHandler.Entry] { handler.entries }

    /// Each entry as one line, `<level> <message> <metadata>`, to search.
    package var lines: [String] { entries.map { "\($0.level) \($0.message) \($0.metadata)" } }
}
