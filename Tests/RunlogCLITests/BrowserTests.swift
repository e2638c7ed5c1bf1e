import Foundation
import RunlogTestSupport
import Testing

/// Headless Chromium follows a live run with `EventSource` (the page at `/`) while the server
/// restarts under it: the browser must resume with its own `Last-Event-ID`, receive 1...N exactly
/// once, and stop reconnecting once the run completed.
@Suite(.slow, .timeLimit(.minutes(3))) struct BrowserTests {
    static let chromium = "/usr/bin/chromium"

    /// Collects the page's console lines (`runlog: …`) from Chromium's log as they come.
    final class ConsoleLog: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        private var waiters: [(predicate: ([String]) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []

        init(_ pipe: Pipe) {
            pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let text = String(decoding: handle.availableData, as: UTF8.self)
                for match in text.matches(of: /runlog: ([a-z]+(?: \d+)?)/) { self?.append(String(match.1)) }
            }
        }

        private func append(_ line: String) {
            lock.lock()
            lines.append(line)
            let ready = waiters.filter { $0.predicate(lines) }
            waiters = waiters.filter { !$0.predicate(lines) }
            lock.unlock()
            for waiter in ready { waiter.continuation.resume() }
        }

        var all: [String] {
            lock.lock()
            defer { lock.unlock() }
            return lines
        }

        /// Returns once the log satisfies `predicate` (the suite's time limit bounds the wait).
        func wait(until predicate: @escaping ([String]) -> Bool) async {
            await withCheckedContinuation { continuation in
                lock.lock()
                if predicate(lines) {
                    lock.unlock()
                    continuation.resume()
                } else {
                    waiters.append((predicate, continuation))
                    lock.unlock()
                }
            }
        }
    }

    /// Headless Chromium on `url`, its console lines (`runlog: …`) collected as they come.
    static func open(_ url: String, profile: String) throws -> (Process, ConsoleLog) {
        let browser = Process()
        browser.executableURL = URL(fileURLWithPath: chromium)
        browser.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=\(profile)", url,
        ]
        let browserLog = Pipe()
        browser.standardError = browserLog
        browser.standardOutput = FileHandle.nullDevice
        let console = ConsoleLog(browserLog)
        try browser.run()
        return (browser, console)
    }

    @Test func aBrowserResumesAcrossARestartAndStopsAfterCompletion() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.chromium), "chromium is needed (.ci/run installs it)")
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        // With access control on: the producer sends a bearer token, the page a read-only one in its URL.
        let key = ["RUNLOG_AUTH_KEY": "browser-test-key-0123456789abcdef0123456789"]
        let writer = try await ChildProcess.runlog(["token", "issue", "--workspace", "ws_1", "--scope", "runs:create", "--scope", "events:append", "--ttl", "10m"], environment: key)
        let reader = try await ChildProcess.runlog(["token", "issue", "--workspace", "ws_1", "--scope", "events:read", "--run", "run_1", "--ttl", "10m"], environment: key)
        #expect(writer.status == 0 && reader.status == 0, "\(writer.error) \(reader.error)")
        let writeToken = writer.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let readToken = reader.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let first = try await ServerProcess(storage: directory.path, environment: key)
        let base = "http://127.0.0.1:\(first.port)"
        let events = base + "/v1/workspaces/ws_1/runs/run_1/events"
        func append(_ line: String) async throws {
            let result = try await ChildProcess.curl(["-XPOST", events, "-H", "Authorization: Bearer \(writeToken)", "-H", "Content-Type: application/x-ndjson", "--data-binary", line])
            #expect(result.output.contains("\"appended\":1"), "append failed: \(result.output)")
        }
        #expect(try await ChildProcess.curl(["-XPOST", base + "/v1/workspaces/ws_1/runs", "-d", #"{"run_id":"run_0"}"#]).output.contains("unauthorized"))
        _ = try await ChildProcess.curl(["-XPOST", base + "/v1/workspaces/ws_1/runs", "-H", "Authorization: Bearer \(writeToken)", "-d", #"{"run_id":"run_1"}"#])
        try await append(#"{"type":"run.started"}"#)

        let profile = TemporaryDirectory()
        defer { profile.removeEventually() }
        let (browser, console) = try Self.open("\(base)/?workspace=ws_1&run=run_1&access_token=\(readToken)", profile: profile.path)
        defer {
            browser.terminate()
            browser.waitUntilExit()
        }

        await console.wait { $0.contains("open") }
        for index in 1...3 { try await append(#"{"type":"console.line","payload":{"n":\#(index)}}"#) }
        await console.wait { $0.contains("event 4") }

        // Break the connection mid-stream: restart the server on the same port.
        #expect(first.stop())
        await console.wait { $0.contains("reconnecting") }
        let second = try await ServerProcess(storage: directory.path, port: first.port, environment: key)
        for index in 4...6 { try await append(#"{"type":"console.line","payload":{"n":\#(index)}}"#) }
        try await append(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#)
        await console.wait { $0.contains("closed") }
        #expect(second.stop())

        let log = console.all
        let received = log.compactMap { $0.hasPrefix("event ") ? Int($0.dropFirst(6)) : nil }
        #expect(received == Array(1...8), "the page saw \(log)")
        // It reconnected (after the restart, and once more after the end) and then stopped for good.
        #expect(log.filter { $0 == "open" }.count == 2, "\(log)")
        #expect(log.last == "closed", "\(log)")
    }
}

