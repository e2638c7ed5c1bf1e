package import Foundation
import Synchronization
import Testing

/// `runlog serve` as a child process on a port of its own, for tests that drive it from outside
/// and watch its resources: its port, resident memory, open descriptors and threads. The one way
/// the tests start a server.
package final class ServerProcess: Sendable {
    /// What becomes of the server's output.
    package enum Output: Sendable {
        /// Drained on a thread of its own and dropped, so a busy server never blocks on a full pipe.
        case dropped
        /// Drained and kept (stdout and stderr together): see ``output``.
        case kept
        /// Standard output into `stdout` and standard error into `stderr` (inherited if nil), for
        /// the test to read, or to close as a log shipper that dies would.
        case pipes(stdout: Pipe, stderr: Pipe?)
    }

    package let process: Process
    package let port: Int
    /// The storage root.
    package let storage: String
    /// What the server printed up to the line saying it listens.
    package let startup: String
    /// The storage root this made, removed by ``stop()``.
    private let ownStorage: TemporaryDirectory?
    private let kept = KeptText()
    private let stopped = Atomic<Bool>(false)

    /// Starts `runlog serve --port <port> --storage <storage> <arguments>` and waits until it
    /// listens. Without `storage`, on a fresh directory removed by ``stop()``.
    /// - Parameter softFileLimit: start the server with this soft open-file limit (as a low
    ///   default limit would), to see it raise it.
    package init(
        arguments: [String] = [], storage: String? = nil, port: Int = 0, environment: [String: String] = [:], softFileLimit: Int? = nil,
        output: Output = .dropped
    ) async throws {
        ownStorage = storage == nil ? TemporaryDirectory() : nil
        self.storage = storage ?? ownStorage!.path
        let process = Process()
        let serve = ["serve", "--port", "\(port)", "--storage", self.storage] + arguments
        if let softFileLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -Sn \(softFileLimit) && exec \"$0\" \"$@\"", ChildProcess.runlogPath] + serve
        } else {
            process.executableURL = URL(fileURLWithPath: ChildProcess.runlogPath)
            process.arguments = serve
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let logs: Pipe
        let drain: Bool
        switch output {
        case .dropped, .kept:
            logs = Pipe()
            process.standardOutput = logs
            process.standardError = logs
            drain = true
        case .pipes(let stdout, let stderr):
            logs = stdout
            process.standardOutput = stdout
            if let stderr { process.standardError = stderr }
            drain = false
        }
        try process.run()
        self.process = process
        let keep = if case .kept = output { true } else { false }
        // Read on a thread of its own: on Linux the global dispatch queues' threads are the
        // ones Swift's cooperative pool runs tasks on. With pipes of the test's own, only up to
        // the line that says it listens.
        let kept = self.kept
        let started: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var text = ""
                var resumed = false
                while true {
                    let chunk = logs.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    let piece = String(decoding: chunk, as: UTF8.self)
                    if keep { kept.text.withLock { $0 += piece } }
                    guard !resumed else { continue }
                    text += piece
                    if text.contains("listening on") {
                        resumed = true
                        continuation.resume(returning: text)
                        if !drain { return }
                    }
                }
                if !resumed { continuation.resume(returning: text) }
            }
        }
        startup = started
        guard let bound = started.firstMatch(of: /listening on 127\.0\.0\.1:(\d+)/).flatMap({ Int($0.1) }) else {
            process.terminate()
            throw ServerFailure(description: "the server did not start: \(started)")
        }
        self.port = bound
    }

    package struct ServerFailure: Error, CustomStringConvertible {
        package var description: String
    }

    package var base: String { "http://127.0.0.1:\(port)" }

    /// What it printed so far, with ``Output/kept``.
    package var output: String { kept.text.withLock { $0 } }

    /// Resident memory in bytes (VmRSS).
    package var residentBytes: Int { Self.statusField("VmRSS", of: process.processIdentifier) * 1024 }

    package var threads: Int { Self.statusField("Threads", of: process.processIdentifier) }

    /// The soft open-file limit the server runs with.
    package var softFileLimit: Int? {
        guard let limits = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/limits", encoding: .utf8),
            let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
        else { return nil }
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.flatMap { Int($0) }
    }

    /// A gauge or counter from `/metrics` (the first sample whose line starts with `name`).
    package func metric(_ name: String) throws -> Double? {
        let metrics = try RawConnection.request(port: port, "GET", "/metrics").body
        for line in metrics.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// Polls `/metrics` until `name` equals `value` or `deadline` passes; returns the last value.
    package func waitForMetric(_ name: String, toBe value: Double, within deadline: Duration = .seconds(60)) async throws -> Double? {
        let end = ContinuousClock.now + deadline
        var last = try metric(name)
        while last != value, ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(50))  // polling a condition, with a deadline
            last = try metric(name)
        }
        return last
    }

    package var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd").count) ?? -1
    }

    static func statusField(_ name: String, of pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") ?? -1
        }
        return -1
    }

    /// Stops the server with SIGTERM, waits for it, and removes the storage root it made (once,
    /// however often it is called); true when it exited cleanly (status 0).
    @discardableResult
    package func stop() -> Bool {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        if !stopped.exchange(true, ordering: .acquiringAndReleasing) { ownStorage?.remove() }
        return process.terminationReason == .exit && process.terminationStatus == 0
    }
}

/// What a server printed, shared with the thread that drains its output.
private final class KeptText: Sendable {
    let text = Mutex<String>("")
}
