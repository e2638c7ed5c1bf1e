import Foundation
import RunlogTestSupport
import Testing

/// The `runlog` binary as a user runs it: exit codes, one-line errors, output.
@Suite(.timeLimit(.minutes(1))) struct CommandLineTests {
    func run(_ arguments: [String], input: String = "", environment: [String: String] = [:]) async throws -> ProcessResult {
        try await ChildProcess.runlog(arguments, input: input, environment: environment)
    }

    @Test func appendsReadsAndReportsErrorsOnOneLine() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ChildProcess.runlogPath), "build the runlog product first")
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let storage = ["--storage", directory.path]

        let appended = try await run(["append", "ws_1", "run_1"] + storage, input: "{\"type\":\"run.started\"}\n{\"type\":\"console.line\",\"event_id\":\"c1\"}\n")
        #expect(appended.status == 0)
        #expect(appended.output == "{\"first_sequence\":1,\"last_sequence\":2,\"appended\":2,\"duplicates\":0}\n")

        let again = try await run(["append", "ws_1", "run_1", "--json"] + storage, input: #"[{"type":"console.line","event_id":"c1"}]"#)
        #expect(again.output == "{\"first_sequence\":null,\"last_sequence\":null,\"appended\":0,\"duplicates\":1}\n")

        let read = try await run(["read", "ws_1", "run_1", "--after", "1"] + storage)
        #expect(read.status == 0)
        #expect(read.output.hasPrefix(#"{"sequence":2,"type":"console.line","event_id":"c1","#))
        #expect(read.output.split(separator: "\n").count == 1)

        // Settings come from RUNLOG_<NAME> too.
        let fromEnvironment = try await run(["read", "ws_1", "run_1", "--tail", "1"], environment: ["RUNLOG_STORAGE": directory.path])
        #expect(fromEnvironment.output == read.output)

        let bad = try await run(["append", "ws_1", "run_1"] + storage, input: "{\"type\":\"run.started\"}\n{\"type\":\"Bad\"}\n")
        #expect(bad.status == 1)
        #expect(bad.error.hasPrefix("Error: line 2: 'type' must be dot-namespaced"))
        #expect(bad.error.split(separator: "\n").count == 1)

        let badID = try await run(["read", "ws_1", ".."] + storage)
        #expect(badID.status == 1)
        #expect(badID.error == "Error: invalid run_id: must be 1-128 characters of [A-Za-z0-9_.-] and not '.' or '..'\n")

        let badSize = try await run(["read", "ws_1", "run_1", "--segment-size", "12XB"] + storage)
        #expect(badSize.status != 0)
        #expect(badSize.error.contains("--segment-size"))

        // A RUNLOG_<NAME> that does not parse is refused too, rather than replaced by the default.
        for (name, value) in [("RUNLOG_DURABILITY", "fsnyc"), ("RUNLOG_SEGMENT_SIZE", "64MX"), ("RUNLOG_FLUSH_EVENTS", "ten")] {
            let refused = try await run(["append", "ws_1", "run_1"] + storage, input: "{\"type\":\"console.line\"}\n", environment: [name: value])
            #expect(refused.status == 1)
            #expect(refused.error == "Error: environment variable \(name) has an invalid value '\(value)'\n")
        }

        // Nothing refused reached the log.
        #expect(try await run(["read", "ws_1", "run_1"] + storage).output.split(separator: "\n").count == 2)
    }

    @Test func tokensNeedAKeyAndAnOpenServerStaysOnLoopback() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let noKey = try await run(["token", "issue", "--workspace", "ws_1", "--scope", "events:read"], environment: ["RUNLOG_AUTH_KEY": ""])
        #expect(noKey.status == 1 && noKey.error.contains("at least 32"), "\(noKey.error)")
        let shortKey = try await run(["token", "issue", "--workspace", "ws_1", "--scope", "events:read"], environment: ["RUNLOG_AUTH_KEY": "short"])
        #expect(shortKey.status == 1 && shortKey.error.split(separator: "\n").count == 1, "\(shortKey.error)")
        let badScope = try await run(["token", "issue", "--workspace", "ws_1", "--scope", "events:write"], environment: ["RUNLOG_AUTH_KEY": String(repeating: "k", count: 40)])
        #expect(badScope.status != 0 && badScope.error.hasPrefix("Error: "), "\(badScope.error)")
        let issued = try await run(["token", "issue", "--workspace", "ws_1", "--scope", "events:read", "--ttl", "5m"], environment: ["RUNLOG_AUTH_KEY": String(repeating: "k", count: 40)])
        #expect(issued.status == 0 && issued.output.split(separator: ".").count == 3, "\(issued.output)")

        // Without a key, a server bound beyond loopback refuses to start.
        let badPort = try await run(["serve", "--storage", directory.path], environment: ["RUNLOG_PORT": "80a", "RUNLOG_RETENTION_INTERVAL": "1h"])
        #expect(badPort.status == 1 && badPort.error == "Error: environment variable RUNLOG_PORT has an invalid value '80a'\n")
        let badInterval = try await run(["serve", "--storage", directory.path], environment: ["RUNLOG_RETENTION_INTERVAL": "hourly"])
        #expect(badInterval.status == 1 && badInterval.error == "Error: environment variable RUNLOG_RETENTION_INTERVAL has an invalid value 'hourly'\n")
        let refused = try await run(["serve", "--host", "0.0.0.0", "--port", "0", "--storage", directory.path], environment: [:])
        #expect(refused.status == 1 && refused.error.contains("refusing to serve 0.0.0.0 without access control"), "\(refused.output) \(refused.error)")
    }

    @Test func versionAndATakenPortAnswerInOneLine() async throws {
        let version = try await run(["--version"])
        #expect(version.status == 0 && version.output.firstMatch(of: /^\d+\.\d+\.\d+\S*\n$/) != nil, "\(version)")

        // Something else holds a port: the server says so, and how to choose another.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        #expect(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let taken = try await run(["serve", "--port", "\(port)", "--storage", directory.path])
        #expect(taken.status == 1)
        #expect(taken.error == "Error: port \(port) on 127.0.0.1 is already in use: stop what holds it, or choose another with --port (or RUNLOG_PORT)\n", "\(taken.error)")
    }

    @Test func aServerIsItsStorageRootsOneWriter() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let storage = ["--storage", directory.path]
        let line = "{\"type\":\"console.line\"}\n"
        #expect(try await run(["append", "ws_1", "run_1"] + storage, input: line).status == 0)
        let server = try await ServerProcess(storage: directory.path)
        let pid = server.process.processIdentifier
        // A second server on the same root refuses to start, naming the first.
        let second = try await run(["serve", "--port", "0"] + storage)
        #expect(second.status == 1 && second.error.hasPrefix("Error: another runlog serve (pid \(pid) on host "), "\(second.error)")
        #expect(second.error.split(separator: "\n").count == 1)
        // Commands that write refuse too, and say what to do instead; reading goes on.
        let append = try await run(["append", "ws_1", "run_1"] + storage, input: line)
        #expect(append.status == 1 && append.error.contains("runlog serve (pid \(pid)") && append.error.contains("POST /v1/workspaces/ws_1/runs/run_1/events"), "\(append.error)")
        #expect(try await run(["archive", "ws_1", "run_1"] + storage).status == 1)
        #expect(try await run(["verify", "--repair"] + storage).status == 1)
        #expect(try await run(["verify"] + storage).status == 0)
        #expect(try await run(["read", "ws_1", "run_1"] + storage).output.split(separator: "\n").count == 1)
        // A killed server's lock goes with it: the root is writable again.
        kill(pid, SIGKILL)
        _ = server.stop()
        #expect(try await run(["append", "ws_1", "run_1"] + storage, input: line).status == 0)
        #expect(try await run(["read", "ws_1", "run_1"] + storage).output.split(separator: "\n").count == 2)
    }
}
