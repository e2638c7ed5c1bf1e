import ArgumentParser
import Foundation
import RunlogRuns
import RunlogStorage

struct AppendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append events (NDJSON, or JSON with --json) from a file or stdin to a run, creating the run if needed."
    )

    @OptionGroup var run: RunArguments
    @OptionGroup var options: StorageOptions

    @Option(help: "Read the events from this file instead of stdin.")
    var file: String?

    @Flag(help: "The input is one JSON object or an array of them, not NDJSON.")
    var json = false

    @Option(help: "Refuse the append unless the log ends at this sequence.")
    var expectedLastSequence: Int64?

    func run() async throws {
        try await runCommand {
            let key = try run.key()
            let lock = try options.lockForWriting(instead: "append through its HTTP API (POST /v1/workspaces/\(key.workspaceID)/runs/\(key.runID)/events), or stop it first")
            defer { withExtendedLifetime(lock) {} }
            let body: [UInt8]
            if let file {
                guard let data = FileManager.default.contents(atPath: file) else { throw CommandFailure(description: "cannot read \(file)") }
                body = Array(data)
            } else {
                body = Array(FileHandle.standardInput.readDataToEndOfFile())
            }
            let receipt = try await options.withRuns { runs in
                do {
                    _ = try await runs.run(key)
                } catch RunError.notFound {
                    _ = try await runs.createRun(workspace: key.workspaceID, runID: key.runID)
                }
                return try await runs.append(body, as: json ? .json : .ndjson, to: key, expectedLastSequence: expectedLastSequence)
            }
            let first = receipt.firstSequence.map(String.init) ?? "null"
            let last = receipt.lastSequence.map(String.init) ?? "null"
            print(#"{"first_sequence":\#(first),"last_sequence":\#(last),"appended":\#(receipt.appended),"duplicates":\#(receipt.duplicates)}"#)
        }
    }
}
