import Foundation
import GRDB
import Logging
import NIOCore
import RunlogStorage

/// The events both stores receive, and how each is driven.
enum Workload {
    /// About 200 bytes of producer JSON, like a console line.
    static let sampleLine = #"{"type":"console.line","source":"worker-7","payload":{"line":"\#(String(repeating: "lorem ipsum ", count: 12))","stream":"stdout","n":123456}}"#
    static let storedLineEstimate = sampleLine.utf8.count + 150

    static func eventCount(batchSize: Int, durability: Durability) -> Int {
        switch (batchSize, durability) {
        case (1, .fsync): return 2_000
        case (1, _): return 50_000
        case (100, .fsync): return 100_000
        default: return 500_000
        }
    }

    /// NDJSON bodies of `batchSize` events, as a producer would send them.
    static func bodies(batchSize: Int, events: Int) -> [[UInt8]] {
        let line = Array(sampleLine.utf8)
        var one: [UInt8] = []
        for index in 0..<batchSize {
            if index > 0 { one.append(0x0A) }
            one += line
        }
        return Array(repeating: one, count: max(1, events / batchSize))
    }

    static func store(_ root: String, _ durability: Durability) -> EventStore {
        var configuration = EventStoreConfiguration(root: root)
        configuration.durability = durability
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        return EventStore(configuration: configuration, logger: logger)
    }

    /// Sequential appends, parsing included; timed until everything is written.
    static func appendRunlog(root: String, durability: Durability, batchSize: Int, events: Int) async throws -> Measurement {
        let store = store(root, durability)
        let key = try RunKey(workspace: "bench", run: "run")
        let bodies = bodies(batchSize: batchSize, events: events)
        let start = ContinuousClock.now
        for body in bodies {
            _ = try await store.append(try EventBatch(ndjson: body), to: key)
        }
        try await store.flush()
        let elapsed = ContinuousClock.now - start
        let bytes = try await bytesOnDisk(store, key)
        await store.shutdown()
        return Measurement(events: bodies.count * batchSize, bytes: bytes, seconds: elapsed.seconds)
    }

    static func appendRunlogConcurrently(root: String, durability: Durability, appenders: Int, events: Int) async throws -> Measurement {
        let store = store(root, durability)
        let key = try RunKey(workspace: "bench", run: "run")
        let body = Array(sampleLine.utf8)
        let perAppender = events / appenders
        let elapsed = try await concurrently(appenders, times: perAppender) {
            _ = try await store.append(try EventBatch(ndjson: body), to: key)
        }
        let bytes = try await bytesOnDisk(store, key)
        await store.shutdown()
        return Measurement(events: perAppender * appenders, bytes: bytes, seconds: elapsed.seconds)
    }

    /// Runs `body` `times` times in each of `tasks` concurrent tasks; returns the wall time.
    static func concurrently(_ tasks: Int, times: Int, _ body: @escaping @Sendable () async throws -> Void) async throws -> Duration {
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    for _ in 0..<times { try await body() }
                }
            }
            try await group.waitForAll()
        }
        return ContinuousClock.now - start
    }

    static func bytesOnDisk(_ store: EventStore, _ key: RunKey) async throws -> Int {
        var bytes = 0
        for try await chunk in store.events(of: key) { bytes += chunk.bytes.readableBytes }
        return bytes
    }

    // MARK: SQLite rows

    static func openSQLite(_ path: String, _ durability: Durability) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            // WAL; NORMAL syncs only at checkpoints (like `none`), FULL syncs every commit (like `fsync`).
            try db.execute(sql: "PRAGMA synchronous = \(durability == .fsync ? "FULL" : "NORMAL")")
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS events (
                    run_id TEXT NOT NULL, sequence INTEGER NOT NULL, type TEXT NOT NULL, event_id TEXT NOT NULL,
                    created_at TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (run_id, sequence)
                ) WITHOUT ROWID;
                CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (run_id, event_id);
                """)
        }
        return pool
    }

    /// The same batches: parsed by the same validator, one row per event, one transaction per batch.
    static func appendSQLite(path: String, durability: Durability, batchSize: Int, events: Int) async throws -> Measurement {
        let pool = try openSQLite(path, durability)
        let bodies = bodies(batchSize: batchSize, events: events)
        var sequence: Int64 = 0
        var bytes = 0
        let start = ContinuousClock.now
        for body in bodies {
            let batch = try EventBatch(ndjson: body)
            let (next, written) = try await insert(batch, into: pool, after: sequence)
            sequence = next
            bytes += written
        }
        let elapsed = ContinuousClock.now - start
        try pool.close()
        return Measurement(events: bodies.count * batchSize, bytes: bytes, seconds: elapsed.seconds)
    }

    static func appendSQLiteConcurrently(path: String, durability: Durability, appenders: Int, events: Int) async throws -> Measurement {
        let pool = try openSQLite(path, durability)
        let body = Array(sampleLine.utf8)
        let perAppender = events / appenders
        let elapsed = try await concurrently(appenders, times: perAppender) {
            _ = try await insert(try EventBatch(ndjson: body), into: pool, after: nil)
        }
        try pool.close()
        return Measurement(events: perAppender * appenders, bytes: 0, seconds: elapsed.seconds)
    }

    /// Inserts a batch in one transaction; `after` nil reads the last sequence inside it.
    static func insert(_ batch: EventBatch, into pool: DatabasePool, after known: Int64?) async throws -> (Int64, Int) {
        let createdAt = Timestamp.now().rfc3339
        return try await pool.write { db in
            var sequence = try known ?? Int64.fetchOne(db, sql: "SELECT max(sequence) FROM events WHERE run_id = 'run'") ?? 0
            var bytes = 0
            let statement = try db.cachedStatement(sql: "INSERT INTO events (run_id, sequence, type, event_id, created_at, line) VALUES ('run', ?, ?, ?, ?, ?)")
            for index in 0..<batch.count {
                sequence += 1
                let type = batch.type(at: index)
                let id = "evt_" + UUID().uuidString
                let payload = batch.payload(at: index).map { String(decoding: $0, as: UTF8.self) } ?? "null"
                let line = #"{"sequence":\#(sequence),"type":"\#(type)","event_id":"\#(id)","created_at":"\#(createdAt)","workspace_id":"bench","run_id":"run","source":"worker-7","payload":\#(payload)}"#
                bytes += line.utf8.count + 1
                try statement.execute(arguments: [sequence, type, id, createdAt, line])
            }
            return (sequence, bytes)
        }
    }

    // MARK: Replay

    struct Replay {
        let store: EventStore
        let key: RunKey
        let pool: DatabasePool

        /// Streams the whole log, chunk by chunk, as a download would.
        func readRunlog() async throws -> Measurement {
            let start = ContinuousClock.now
            var bytes = 0
            var last: Int64 = 0
            for try await chunk in store.events(of: key) {
                bytes += chunk.bytes.readableBytes
                last = chunk.lastSequence
            }
            return Measurement(events: Int(last), bytes: bytes, seconds: (ContinuousClock.now - start).seconds)
        }

        /// Reads the same lines back as rows, in order.
        func readSQLite() async throws -> Measurement {
            let start = ContinuousClock.now
            let (events, bytes) = try await pool.read { db -> (Int, Int) in
                var events = 0
                var bytes = 0
                let cursor = try Row.fetchCursor(db, sql: "SELECT line FROM events WHERE run_id = 'run' AND sequence > 0 ORDER BY sequence")
                while let row = try cursor.next() {
                    bytes += try row.withUnsafeData(atIndex: 0) { $0?.count ?? 0 } + 1
                    events += 1
                }
                return (events, bytes)
            }
            return Measurement(events: events, bytes: bytes, seconds: (ContinuousClock.now - start).seconds)
        }

        func close() async {
            await store.shutdown()
            do {
                try pool.close()
            } catch {
                print("warning: could not close the SQLite baseline: \(error)")
            }
        }
    }

    static func prepareReplay(directory: String, events: Int) async throws -> Replay {
        let store = store(directory + "/replay", .none)
        let key = try RunKey(workspace: "bench", run: "replay")
        let pool = try openSQLite(directory + "/replay.sqlite", .none)
        var sequence: Int64 = 0
        for body in bodies(batchSize: 1000, events: events) {
            let batch = try EventBatch(ndjson: body)
            _ = try await store.append(batch, to: key)
            sequence = try await insert(batch, into: pool, after: sequence).0
        }
        try await store.flush()
        // Warm the page cache for both.
        let replay = Replay(store: store, key: key, pool: pool)
        _ = try await replay.readRunlog()
        _ = try await replay.readSQLite()
        return replay
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
