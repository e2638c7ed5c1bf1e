package import Foundation

/// What a finished child process left: its exit status and what it printed.
package struct ProcessResult: Sendable, CustomStringConvertible {
    package var status: Int32
    package var output: String
    package var error: String

    package var description: String { "exit \(status), stdout: \(output), stderr: \(error)" }
}

/// A child process the test drives: one way, for every test target, to start the package's
/// binaries, curl and anything else.
package enum ChildProcess {
    /// Starts `executable` with its output piped to the returned pipes, its environment merged
    /// with `environment`, and standard input empty.
    package static func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (Process, stdout: Pipe, stderr: Pipe) {
        try start(executable, arguments, environment: environment, input: nil)
    }

    private static func start(_ executable: String, _ arguments: [String], environment: [String: String], input: Pipe?) throws -> (Process, stdout: Pipe, stderr: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = input ?? FileHandle.nullDevice
        try process.run()
        return (process, stdout, stderr)
    }

    /// Runs `executable` to completion, off Swift's thread pool, with `input` on its standard input.
    package static func run(_ executable: String, _ arguments: [String], input: String? = nil, environment: [String: String] = [:]) async throws -> ProcessResult {
        try await offPool { try runBlocking(executable, arguments, input: input, environment: environment) }
    }

    /// ``run(_:_:input:environment:)`` for code already off the pool.
    package static func runBlocking(_ executable: String, _ arguments: [String], input: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
        let stdin = Pipe()
        let (process, stdout, stderr) = try start(executable, arguments, environment: environment, input: input == nil ? nil : stdin)
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        // Standard error on a thread of its own: a child that fills one pipe while the other is
        // being read would otherwise wait forever.
        let error = ThreadResult { stderr.fileHandleForReading.readDataToEndOfFile() }
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus, output: String(decoding: output, as: UTF8.self), error: String(decoding: error.value, as: UTF8.self)
        )
    }

    /// The package's `runlog`, run to completion.
    package static func runlog(_ arguments: [String], input: String? = nil, environment: [String: String] = [:]) async throws -> ProcessResult {
        try await run(runlogPath, arguments, input: input, environment: environment)
    }

    /// The package's `runlog` binary.
    package static let runlogPath = builtProduct("runlog")

    /// curl, quiet but for errors, with a time limit, to completion.
    package static func curl(_ arguments: [String]) async throws -> ProcessResult {
        try await run(curlPath, curlDefaults + arguments)
    }

    /// ``curl(_:)`` for code already off the pool.
    package static func curlBlocking(_ arguments: [String]) throws -> ProcessResult {
        try runBlocking(curlPath, curlDefaults + arguments)
    }

    package static let curlPath = "/usr/bin/curl"

    /// Reads `pipe` on a thread of its own until `done` says the text so far is enough (or the
    /// pipe ends); returns the text.
    package static func read(_ pipe: Pipe, until done: @escaping @Sendable (String) -> Bool) async -> String {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var text = ""
                while !done(text) {
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    text += String(decoding: chunk, as: UTF8.self)
                }
                continuation.resume(returning: text)
            }
        }
    }
    static let curlDefaults = ["-sS", "--max-time", "120"]
}

/// A value computed on a thread of its own, waited for on first read.
final class ThreadResult<Value>: @unchecked Sendable {
    // Unchecked: `result` is written once by the thread before `done` is signalled, and read only after.
    private var result: Value?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Value) {
        Thread.detachNewThread {
            self.result = body()
            self.done.signal()
        }
    }

    var value: Value {
        done.wait()
        done.signal()
        return result!
    }
}
