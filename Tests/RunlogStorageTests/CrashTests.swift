import Foundation
import InMemoryLogging
import Logging
import RunlogTestSupport
import Testing

@testable import RunlogStorage

/// A child process appends under `fsync` (with rotation and archiving going on) and is
/// SIGKILLed at a random moment; after recovery every acknowledged event must be there.
@Suite(.slow, .timeLimit(.minutes(10))) struct CrashTests {
    static let helper = builtProduct("RunlogCrashHelper")

    /// The acknowledged events in the helper's output: `ack id:sequence,id:sequence`, whole lines only.
    static func acknowledgements(in text: String) -> [String: Int64] {
        var acknowledged: [String: Int64] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("ack ") && text.contains(line + "\n") {
            for pair in line.dropFirst(4).split(separator: ",") {
                let parts = pair.split(separator: ":")
                acknowledged[String(parts[0])] = Int64(parts[1])!
            }
        }
        return acknowledged
    }

    /// Runs the helper until it has printed `acknowledgements` lines, waits a random moment
    /// more, kills it, and returns everything it printed.
    func runAndKill(root: String, durability: Durability = .fsync, round: Int, acknowledgements: Int) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.helper)
        process.arguments = [root, durability.rawValue, "16384", "4", "\(round)"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        let pid = process.processIdentifier
        let extraMicroseconds = UInt32.random(in: 0...3000)
        let text: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var data = Data()
                var lines = 0
                while lines < acknowledgements {
                    let chunk = output.fileHandleForReading.availableData
                    if chunk.isEmpty { break }  // the helper died on its own: checked below
                    lines += chunk.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                    data.append(chunk)
                }
                usleep(extraMicroseconds)  // the random kill moment, not a synchronisation
                kill(pid, SIGKILL)
                process.waitUntilExit()
                data.append(output.fileHandleForReading.readDataToEndOfFile())
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
        #expect(process.terminationReason == .uncaughtSignal, "the helper exited by itself (status \(process.terminationStatus))")
        return text
    }

    @Test func killedUnderFsyncLosesNothingAcknowledged() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.helper), "build the RunlogCrashHelper product first")
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        var acknowledged: [String: Int64] = [:]
        var truncations = 0
        for round in 1...20 {
            let text = try await runAndKill(root: directory.path, round: round, acknowledgements: Int.random(in: 1...150))
            // Only whole lines count (the kill can cut the last one).
            acknowledged.merge(Self.acknowledgements(in: text)) { $1 }

            let logs = CapturedLog()
            let store = EventStore(configuration: configuration(directory.path), logger: logs.logger(level: .debug))
            let lines = try await readLines(store, try RunKey(workspace: "ws_crash", run: "run_crash"))
            await store.shutdown()
            truncations += logs.entries.filter { "\($0.message)".contains("truncated") }.count

            var seen: [String: Int64] = [:]
            for (index, line) in lines.enumerated() {
                let event = try decode(line)  // no torn or garbled line
                let sequence = try #require(event["sequence"] as? NSNumber).int64Value
                #expect(sequence == Int64(index + 1), "gap or disorder at line \(index + 1) in round \(round)")
                let id = try #require(event["event_id"] as? String)
                #expect(seen[id] == nil, "\(id) appears twice")
                seen[id] = sequence
            }
            for (id, sequence) in acknowledged {
                #expect(seen[id] == sequence, "acknowledged \(id) at \(sequence) is missing after round \(round)")
            }
            #expect(!acknowledged.isEmpty)
        }
        // Informational: how many kills tore a line that recovery then cut.
        print("crash test: \(acknowledged.count) acknowledged events checked over 20 kills; \(truncations) torn tails repaired")
    }

    @Test func killedUnderNoneLosesOnlyTheNewestAcknowledgements() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        for round in 1...10 {
            let text = try await runAndKill(root: directory.path, durability: .none, round: round, acknowledgements: Int.random(in: 1...150))
            let acknowledged = Self.acknowledgements(in: text)
            let store = EventStore(configuration: configuration(directory.path), logger: quietLogger)
            var lines: [String] = []
            do {
                lines = try await readLines(store, try RunKey(workspace: "ws_crash", run: "run_crash"))
            } catch StorageError.logNotFound {
                // Killed before the first flush: under `none` everything was still in the window.
            }
            await store.shutdown()
            var seen: [String: Int64] = [:]
            for (index, line) in lines.enumerated() {
                let event = try decode(line)
                #expect(try #require(event["sequence"] as? NSNumber).int64Value == Int64(index + 1))
                seen[try #require(event["event_id"] as? String)] = Int64(index + 1)
            }
            // What survived is exactly as acknowledged; what was lost is a tail (the unflushed window).
            let last = Int64(lines.count)
            for (id, sequence) in acknowledged {
                if let stored = seen[id] {
                    #expect(stored == sequence)
                } else {
                    #expect(sequence > last, "\(id) at \(sequence) lost from the middle of the log (round \(round))")
                }
            }
        }
    }
}

/// A full disk (a file size limit the child sets on itself) must fail appends cleanly, lose
/// nothing acknowledged, leave the log readable, and recover once there is space again.
@Suite(.timeLimit(.minutes(2))) struct DiskFullTests {
    @Test(arguments: [Durability.fsync, .flush])
    func aFullDiskRefusesAppendsAndLosesNothing(durability: Durability) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CrashTests.helper)
        process.arguments = ["disk-full", directory.path, durability.rawValue, "20000"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text: String = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
        #expect(process.terminationStatus == 0, "helper output:\n\(text)")
        let lines = text.split(separator: "\n")
        #expect(lines.last == "done")
        let acknowledged = CrashTests.acknowledgements(in: text)
        var refused: [String] = []
        for line in lines {
            if line.hasPrefix("refused ") {
                let fields = line.split(separator: " ", maxSplits: 2)
                refused += fields[1].split(separator: ",").map(String.init)
                #expect(fields[2].contains("File too large"), "refused for another reason: \(fields[2])")
            }
        }
        #expect(refused.count == 25)
        let store = EventStore(configuration: configuration(directory.path), logger: quietLogger)
        let stored = try await readLines(store, try RunKey(workspace: "ws_full", run: "run_full"))
        await store.shutdown()
        var seen: [String: Int64] = [:]
        for (index, line) in stored.enumerated() {
            let event = try decode(line)
            #expect(try #require(event["sequence"] as? NSNumber).int64Value == Int64(index + 1))
            seen[try #require(event["event_id"] as? String)] = Int64(index + 1)
        }
        #expect(seen == acknowledged, "the log must hold exactly the acknowledged events")
        for id in refused { #expect(seen[id] == nil) }
    }
}
