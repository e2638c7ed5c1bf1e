import Foundation
import RunlogTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `runlog.js` in headless Chromium, on a page of another origin (as a frontend is): it follows
/// a run through a SIGKILL and restart of the server (where EventSource would give up on the
/// refused connections), gets 1...N exactly once, refreshes its token before reconnecting, ends
/// on the completion, and reports a refusal instead of retrying it.
@Suite(.slow, .timeLimit(.minutes(3))) struct BrowserClientTests {
    static let page = #"""
        <!doctype html>
        <meta charset="utf-8">
        <script type="module">
        const params = new URLSearchParams(location.search);
        const server = params.get("server");
        const { followRun } = await import(server + "/runlog.js");
        let tokens = 0;
        followRun({
          baseUrl: server, workspace: "ws_1", run: "run_1",
          token: async () => { tokens += 1; console.log("runlog: token " + tokens); return params.get("token"); },
          onEvent: (event) => console.log("runlog: event " + event.sequence),
          onStatus: (status) => console.log("runlog: " + status),
          onEnd: () => console.log("runlog: end"),
          onError: (error) => console.log("runlog: failed " + error.status),
        });
        followRun({
          baseUrl: server, workspace: "ws_1", run: "missing", token: params.get("token"),
          onError: (error) => console.log("runlog: refused " + error.status),
        });
        </script>
        """#

    @Test func runlogJSFollowsARunThroughAKilledServerAndEndsWithIt() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: BrowserTests.chromium), "chromium is needed (.ci/run installs it)")
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let site = TemporaryDirectory()
        defer { site.remove() }
        try Self.page.write(toFile: site.path + "/follow.html", atomically: true, encoding: .utf8)
        // The frontend's own origin: a static server of another port.
        let (staticServer, staticOutput, _) = try ChildProcess.start("/usr/bin/python3", [
            "-c",
            "import functools, http.server, sys\n"
                + "handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n"
                + "server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)\n"
                + "print(server.server_address[1], flush=True)\nserver.serve_forever()\n",
            site.path,
        ])
        defer {
            // SIGKILL: a child may inherit a mask that blocks SIGTERM from the test's thread.
            kill(staticServer.processIdentifier, SIGKILL)
            staticServer.waitUntilExit()
        }
        let staticPort = try #require(Int(await ChildProcess.read(staticOutput) { $0.contains("\n") }.trimmingCharacters(in: .whitespacesAndNewlines)))
        let origin = "http://127.0.0.1:\(staticPort)"

        let key = ["RUNLOG_AUTH_KEY": "browser-client-test-key-0123456789abcdef0123"]
        let writer = try await ChildProcess.runlog(["token", "issue", "--workspace", "ws_1", "--scope", "runs:create", "--scope", "events:append", "--ttl", "10m"], environment: key)
        let reader = try await ChildProcess.runlog(["token", "issue", "--workspace", "ws_1", "--scope", "events:read", "--ttl", "10m"], environment: key)
        let writeToken = writer.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let readToken = reader.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let arguments = ["--cors-origin", origin]
        let first = try await ServerProcess(arguments: arguments, storage: directory.path, environment: key)
        let base = "http://127.0.0.1:\(first.port)"
        let events = base + "/v1/workspaces/ws_1/runs/run_1/events"
        func append(_ line: String) async throws {
            let result = try await ChildProcess.curl(["-s", "-XPOST", events, "-H", "Authorization: Bearer \(writeToken)", "-H", "Content-Type: application/x-ndjson", "--data-binary", line])
            #expect(result.output.contains("\"appended\":1"), "append failed: \(result.output)")
        }
        _ = try await ChildProcess.curl(["-s", "-XPOST", base + "/v1/workspaces/ws_1/runs", "-H", "Authorization: Bearer \(writeToken)", "-d", #"{"run_id":"run_1"}"#])
        try await append(#"{"type":"run.started"}"#)

        let profile = TemporaryDirectory()
        defer { profile.removeEventually() }
        let (browser, console) = try BrowserTests.open("\(origin)/follow.html?server=\(base)&token=\(readToken)", profile: profile.path)
        defer {
            browser.terminate()
            browser.waitUntilExit()
        }
        await console.wait { $0.contains("open") && $0.contains("refused 404") }
        for index in 1...3 { try await append(#"{"type":"console.line","payload":{"n":\#(index)}}"#) }
        await console.wait { $0.contains("event 4") }

        // A crash, not a clean stop: the stream breaks and connections are refused until the
        // server is back on the same port.
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        await console.wait { $0.contains("reconnecting") }
        let second = try await ServerProcess(arguments: arguments, storage: directory.path, port: first.port, environment: key)
        for index in 4...6 { try await append(#"{"type":"console.line","payload":{"n":\#(index)}}"#) }
        try await append(#"{"type":"run.completed","payload":{"status":"succeeded"}}"#)
        await console.wait { $0.contains("end") }
        #expect(second.stop())

        let log = console.all
        let received = log.compactMap { $0.hasPrefix("event ") ? Int($0.dropFirst(6)) : nil }
        #expect(received == Array(1...8), "the page saw \(log)")
        #expect(!log.contains { $0.hasPrefix("failed") }, "\(log)")
        // A token for the first connection and a fresh one for each reconnection.
        #expect(log.filter { $0.hasPrefix("token ") }.count >= 2, "\(log)")
        #expect(log.filter { $0 == "open" }.count >= 2, "\(log)")
    }
}

