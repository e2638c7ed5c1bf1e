// A child process for crash tests: appends batches to one run from several tasks, with
// rotation and archiving going on, and prints one line per acknowledged batch, until it is
// killed. Not part of the product.
//
// usage: RunlogCrashHelper ROOT DURABILITY SEGMENT_BYTES APPENDERS ROUND
//        RunlogCrashHelper disk-full ROOT DURABILITY FILE_SIZE_LIMIT
//
// The second form simulates a full disk: it caps its own file size (RLIMIT_FSIZE, so writes
// past it fail with EFBIG), appends until appends fail, appends a few more times, lifts the
// cap and appends again, printing what was acknowledged and what was refused.

import Logging
import RunlogStorage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
func fail(_ message: String, status: Int32) -> Never {
    emit(message, to: 2)
    exit(status)
}

if arguments.count == 5, arguments[1] == "disk-full" {
    await diskFull(root: arguments[2], durability: Durability(rawValue: arguments[3]) ?? .fsync, limit: Int(arguments[4]) ?? 65536)
    exit(0)
}

guard arguments.count == 6, let durability = Durability(rawValue: arguments[2]),
    let segmentBytes = Int64(arguments[3]), let appenders = Int(arguments[4])
else {
    fail("usage: RunlogCrashHelper ROOT none|flush|fsync SEGMENT_BYTES APPENDERS ROUND", status: 2)
}
let round = arguments[5]

var configuration = EventStoreConfiguration(root: arguments[1])
configuration.durability = durability
configuration.segmentBytes = segmentBytes
configuration.flushInterval = .milliseconds(2)
var logger = Logger(label: "crash-helper")
logger.logLevel = .error
let store = EventStore(configuration: configuration, logger: logger)
let key = try RunKey(workspace: "ws_crash", run: "run_crash")

/// One write(2) per line keeps lines whole in the pipe (they are far below PIPE_BUF).
func emit(_ line: String, to descriptor: Int32 = 1) {
    let bytes = Array((line + "\n").utf8)
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) }
    if written != bytes.count { exit(3) }
}

await withThrowingTaskGroup(of: Void.self) { group in
    for appender in 0..<appenders {
        group.addTask {
            var counter = 0
            while true {
                let size = Int.random(in: 1...20)
                var ids: [String] = []
                var lines: [String] = []
                for _ in 0..<size {
                    counter += 1
                    let id = "r\(round)-a\(appender)-\(counter)"
                    ids.append(id)
                    lines.append(#"{"type":"crash.test","event_id":"\#(id)","payload":{"filler":"\#(String(repeating: "z", count: Int.random(in: 0...300)))"}}"#)
                }
                let receipt = try await store.append(try EventBatch(ndjson: Array(lines.joined(separator: "\n").utf8)), to: key)
                emit("ack " + zip(ids, receipt.sequences).map { "\($0):\($1)" }.joined(separator: ","))
            }
        }
    }
    group.addTask {
        // Archiving beside the appends, so a kill can land in the middle of it too.
        while true {
            try await Task.sleep(for: .milliseconds(20))
            _ = try await store.archiveClosedSegments(of: key)
        }
    }
    do {
        try await group.waitForAll()
    } catch {
        fail("crash helper failed: \(error)", status: 1)
    }
}

func diskFull(root: String, durability: Durability, limit: Int) async {
    var configuration = EventStoreConfiguration(root: root)
    configuration.durability = durability
    var logger = Logger(label: "crash-helper")
    logger.logLevel = .critical
    let store = EventStore(configuration: configuration, logger: logger)
    let key = try! RunKey(workspace: "ws_full", run: "run_full")
    signal(SIGXFSZ, SIG_IGN)
    var original = rlimit()
    guard getrlimit(Int32(RLIMIT_FSIZE.rawValue), &original) == 0 else { fail("getrlimit failed", status: 4) }
    var cap = original
    cap.rlim_cur = rlim_t(limit)
    guard setrlimit(Int32(RLIMIT_FSIZE.rawValue), &cap) == 0 else { fail("setrlimit failed", status: 4) }
    var counter = 0
    var refusals = 0
    func attempt() async -> Bool {
        var ids: [String] = []
        var lines: [String] = []
        for _ in 0..<5 {
            counter += 1
            ids.append("e\(counter)")
            lines.append(#"{"type":"disk.test","event_id":"e\#(counter)","payload":{"filler":"\#(String(repeating: "f", count: 200))"}}"#)
        }
        do {
            let receipt = try await store.append(try EventBatch(ndjson: Array(lines.joined(separator: "\n").utf8)), to: key)
            emit("ack " + zip(ids, receipt.sequences).map { "\($0):\($1)" }.joined(separator: ","))
            return true
        } catch {
            emit("refused " + ids.joined(separator: ",") + " " + String("\(error)".map { $0 == "\n" ? " " : $0 }))
            return false
        }
    }
    // Fill the disk, then keep trying for a while.
    while refusals < 5 {
        if await !attempt() { refusals += 1 }
        if counter > 100_000 { fail("the file size limit never hit", status: 5) }
    }
    // Space again: appends must work and continue the sequence.
    guard setrlimit(Int32(RLIMIT_FSIZE.rawValue), &original) == 0 else { fail("setrlimit failed", status: 4) }
    for _ in 0..<3 {
        if await !attempt() { fail("appends still fail after space came back", status: 6) }
    }
    await store.shutdown()
    emit("done")
}
