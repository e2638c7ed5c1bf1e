import ArgumentParser
import RunlogStorage

struct ArchiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Gzip a run's closed segments (safe beside readers; a running server's retention does it instead)."
    )

    @OptionGroup var run: RunArguments
    @OptionGroup var options: StorageOptions

    func run() async throws {
        try await runCommand {
            let key = try run.key()
            let lock = try options.lockForWriting(instead: "its retention passes (--retention-interval) compress logs, or stop it first")
            defer { withExtendedLifetime(lock) {} }
            let results = try await options.withStore { store in try await store.archiveClosedSegments(of: key) }
            for result in results {
                print("\(result.segment.compressedFileName)\t\(result.plainBytes) -> \(result.compressedBytes) bytes")
            }
            if results.isEmpty { print("nothing to archive") }
        }
    }
}
