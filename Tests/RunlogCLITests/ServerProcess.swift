import Foundation
import RunlogTestSupport
import Synchronization
import Testing

/// `runlog serve` as a child process, for tests that watch its resources from outside: its
/// port, resident memory, open descriptors and threads. Its logs are drained (and dropped)
/// on a background thread, so a busy server never blocks on a full pipe.
final class ServerProcess: Sendable {
    let process: Process
    let port: Int
    let directory: TemporaryDirectory

    /// - Parameter softFileLimit: start the server with this soft open-file limit (as a
    ///   low default limit would), to see it raise it.
    init(arguments: [String] = [], softFileLimit: Int? = nil) async throws {
        directory = TemporaryDirectory()
        let process = Process()
        let serve = ["serve", "--port", "0", "--storage", directory.path] + arguments
        if let softFileLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -Sn \(softFileLimit) && exec \"$0\" \"$@\"", CommandLineTests.runlog] + serve
        } else {
            process.executableURL = URL(fileURLWithPath: CommandLineTests.runlog)
            process.arguments = serve
        }
        let logs = Pipe()
        process.standardOutput = logs
        process.standardError = logs
        try process.run()
        self.process = process
        // Read for the server's whole life, on a thread of its own: on Linux the global dispatch
        // queues' threads are the ones Swift's cooperative pool runs tasks on.
        let started: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var text = ""
                var resumed = false
                while true {
                    let chunk = logs.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    guard !resumed else { continue }
                    text += String(decoding: chunk, as: UTF8.self)
                    if text.contains("listening on") {
                        resumed = true
                        continuation.resume(returning: text)
                    }
                }
                if !resumed { continuation.resume(returning: text) }
            }
        }
        guard let port = started.firstMatch(of: /listening on 127\.0\.0\.1:(\d+)/).flatMap({ Int($0.1) }) else {
            process.terminate()
            throw ServerFailure(description: "the server did not start: \(started)")
        }
        self.port = port
    }

    struct ServerFailure: Error, CustomStringConvertible {
        var description: String
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// Resident memory in bytes (VmRSS).
    var residentBytes: Int { Self.statusField("VmRSS", of: process.processIdentifier) * 1024 }

    var threads: Int { Self.statusField("Threads", of: process.processIdentifier) }

    /// The soft open-file limit the server runs with.
    var softFileLimit: Int? {
        guard let limits = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/limits", encoding: .utf8),
            let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
        else { return nil }
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.flatMap { Int($0) }
    }

    /// A gauge or counter from `/metrics` (the first sample whose line starts with `name`).
    func metric(_ name: String) throws -> Double? {
        let metrics = try RawConnection.request(port: port, "GET", "/metrics").body
        for line in metrics.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    /// Polls `/metrics` until `name` equals `value` or `deadline` passes; returns the last value.
    func waitForMetric(_ name: String, toBe value: Double, within deadline: Duration = .seconds(60)) async throws -> Double? {
        let end = ContinuousClock.now + deadline
        var last = try metric(name)
        while last != value, ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(50))  // polling a condition, with a deadline
            last = try metric(name)
        }
        return last
    }

    var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd").count) ?? -1
    }

    static func statusField(_ name: String, of pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") ?? -1
        }
        return -1
    }

    /// Stops the server with SIGTERM and removes its storage; true when it exited cleanly.
    @discardableResult
    func stop() -> Bool {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        directory.remove()
        return process.terminationStatus == 0
    }
}
