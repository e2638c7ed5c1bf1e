import ArgumentParser
import Foundation
import NIOCore
import RunlogStorage

struct ReadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Print a run's events as NDJSON."
    )

    @OptionGroup var run: RunArguments
    @OptionGroup var options: StorageOptions

    @Option(help: "Only events with a greater sequence.")
    var after: Int64 = 0

    @Option(help: "Only the last N events (read from the end of the log).")
    var tail: Int?

    func run() async throws {
        try await runCommand {
            let key = try run.key()
            try await options.withStore { store in
                let output = FileHandle.standardOutput
                if let tail {
                    for line in try await store.lastEvents(of: key, count: tail) {
                        output.write(Data(line.readableBytesView))
                    }
                    return
                }
                for try await chunk in store.events(of: key, after: after) {
                    output.write(Data(chunk.bytes.readableBytesView))
                }
            }
        }
    }
}
