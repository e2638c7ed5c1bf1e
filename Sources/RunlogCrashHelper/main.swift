// A child process for crash tests: appends batches to one run from several tasks, with
// rotation and archiving going on, and prints one line per acknowledged batch, until it is
// killed. Not part of the product.
//
// usage: RunlogCrashHelper ROOT DURABILITY SEGMENT_BYTES APPENDERS ROUND

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
