import Foundation
import Logging
import RunlogTestSupport
import Testing

@testable import RunlogStorage

/// A real full volume (a small tmpfs): refused appends say so, nothing acknowledged is lost,
/// the log stays readable, and appends work again once space returns.
@Suite(.timeLimit(.minutes(1))) struct FullDiskTests {
    @Test(arguments: [Durability.flush, .fsync])
    func aFullVolumeRefusesAppendsAsOutOfSpaceUntilSpaceReturns(durability: Durability) async throws {
        try await withFullableStore(durability: durability) { store, volume, _ in
            _ = try await store.append(try numbered(3), to: key())
            try volume.fill()
            await expectError(StorageError.self, matching: { if case .outOfSpace = $0 { true } else { false } }) {
                _ = try await store.append(try numbered(40, from: 4, padding: 300), to: key())
            }
            #expect(await store.hasSpace() == false)
            #expect(try await sequences(readLines(store, key())) == [1, 2, 3])

            try volume.free()
            let receipt = try await store.append(try numbered(40, from: 4, padding: 300), to: key())
            #expect(receipt.firstSequence == 4 && receipt.lastSequence == 43)
            #expect(await store.hasSpace())
            #expect(try await sequences(readLines(store, key())) == Array(1...43))
        }
    }

    @Test func theSpaceProbeSeesSpaceReturnBeforeAnyAppendDoes() async throws {
        try await withFullableStore(durability: .flush) { store, volume, _ in
            try volume.fill()
            await expectError(StorageError.self, matching: { if case .outOfSpace = $0 { true } else { false } }) {
                _ = try await store.append(try numbered(40, padding: 300), to: key())
            }
            try volume.free()
            // The first check after the failure probes: no append has succeeded since.
            #expect(await store.hasSpace())
            #expect(!FileManager.default.fileExists(atPath: volume.path + "/" + EventStore.spaceProbeName))
        }
    }

    @Test func underNoneAcknowledgedLinesWaitForSpaceWhileNewAppendsAreRefused() async throws {
        try await withFullableStore(durability: .none) { store, volume, logs in
            try volume.fill()
            let acknowledged = try await store.append(try numbered(40, padding: 300), to: key())
            #expect(acknowledged.lastSequence == 40)
            try await waitUntil("the flush to fail for want of space") { logs.lines.contains { $0.contains("a write failed; retrying") } }
            await expectError(StorageError.self, matching: { if case .outOfSpace = $0 { true } else { false } }) {
                _ = try await store.append(try numbered(1, from: 41), to: key())
            }

            try volume.free()
            try await store.flush()
            #expect(try await sequences(readLines(store, key())) == Array(1...40))
            _ = try await store.append(try numbered(1, from: 41), to: key())
        }
    }

    /// A store on a fresh 1 MiB volume with a fast write retry.
    private func withFullableStore(
        durability: Durability, _ body: (EventStore, SmallVolume, CapturedLog) async throws -> Void
    ) async throws {
        let volume = try await SmallVolume(bytes: 1 << 20)
        let logs = CapturedLog()
        let store = EventStore(
            configuration: configuration(volume.path) {
                $0.durability = durability
                $0.writeRetryDelay = .milliseconds(20)
            },
            logger: logs.logger(level: .debug)
        )
        do {
            try await body(store, volume, logs)
        } catch {
            Issue.record(error)
        }
        await store.shutdown()
        await volume.remove()
    }
}
