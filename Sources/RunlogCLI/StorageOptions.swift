public import ArgumentParser
import Foundation
import Logging
import RunlogCatalog
import RunlogRuns
import RunlogStorage
import Synchronization

/// Options shared by every command that opens the storage root. Each can also come from an
/// environment variable `RUNLOG_<NAME>`; a flag wins over the variable.
struct StorageOptions: ParsableArguments {
    @Option(help: "The storage root (env RUNLOG_STORAGE).")
    var storage: String = environment("STORAGE") ?? "./storage"

    @Option(help: "none, flush or fsync: when an append is acknowledged (env RUNLOG_DURABILITY).")
    var durability: Durability = environment("DURABILITY", as: Durability.init(rawValue:)) ?? .fsync

    @Option(help: "Flush after this many buffered events (env RUNLOG_FLUSH_EVENTS).")
    var flushEvents: Int = environment("FLUSH_EVENTS", as: { Int($0) }) ?? 1024

    @Option(help: "Flush after this many buffered bytes, like 1MiB (env RUNLOG_FLUSH_BYTES).")
    var flushBytes: ByteSize = environment("FLUSH_BYTES", as: ByteSize.init(argument:)) ?? ByteSize(bytes: 1 << 20)

    @Option(help: "Flush when the oldest buffered event has waited this long, like 10ms (env RUNLOG_FLUSH_INTERVAL).")
    var flushInterval: HumanDuration = environment("FLUSH_INTERVAL", as: HumanDuration.init(argument:)) ?? HumanDuration(.milliseconds(10))

    @Option(help: "Rotate the active segment at this size, like 64MiB (env RUNLOG_SEGMENT_SIZE).")
    var segmentSize: ByteSize = environment("SEGMENT_SIZE", as: ByteSize.init(argument:)) ?? ByteSize(bytes: 64 << 20)

    @Option(help: "Largest accepted event, like 1MiB (env RUNLOG_MAX_EVENT_SIZE).")
    var maxEventSize: ByteSize = environment("MAX_EVENT_SIZE", as: ByteSize.init(argument:)) ?? ByteSize(bytes: 1 << 20)

    @Option(help: "sqlite (the default: <storage>/catalog.sqlite) or postgres://user[:password]@host[:port]/db[?sslmode=...] (env RUNLOG_CATALOG).")
    var catalog: String? = environment("CATALOG")

    func validate() throws {
        try EnvironmentDefaults.check()
        _ = try catalogLocation
    }

    /// Where the catalog is, as `--catalog` says.
    var catalogLocation: CatalogLocation {
        get throws {
            do {
                return try CatalogLocation(catalog, storageRoot: storage)
            } catch {
                throw CommandFailure(description: error.description)
            }
        }
    }

    var storeConfiguration: EventStoreConfiguration {
        var configuration = EventStoreConfiguration(root: storage)
        configuration.durability = durability
        configuration.flushEvents = flushEvents
        configuration.flushBytes = Int(flushBytes.bytes)
        configuration.flushInterval = flushInterval.duration
        configuration.segmentBytes = segmentSize.bytes
        configuration.eventLimits.maxEventBytes = Int(maxEventSize.bytes)
        return configuration
    }

    /// The logger of commands that print their own results: warnings and worse only.
    static var quietLogger: Logger {
        var logger = Logger(label: "runlog")
        logger.logLevel = .warning
        return logger
    }

    /// Opens the store, runs `body`, and always shuts the store down (flushing what is buffered).
    func withStore<T>(_ body: (EventStore) async throws -> T) async throws -> T {
        let store = EventStore(configuration: storeConfiguration, logger: Self.quietLogger)
        do {
            let result = try await body(store)
            await store.shutdown()
            return result
        } catch {
            await store.shutdown()
            throw error
        }
    }
}

extension StorageOptions {
    /// The lock that makes `serve` the storage root's one writer, held while it runs.
    var writerLockPath: String { storage + "/.writer.lock" }

    /// Takes the storage root's writer lock for a command that changes it (creating the root if
    /// missing); refused while a server holds it, since the server's own state of the runs
    /// would then be wrong. `instead` says what to do about it.
    func lockForWriting(instead: String) throws -> RootLock {
        try lockStorageRoot { holder in "runlog serve (\(holder)) holds \(storage): \(instead)" }
    }

    /// Takes the writer lock on the storage root (created if missing), or fails with the line
    /// `refusal` makes of its holder (`pid 1234 on host h`).
    func lockStorageRoot(refusal: (_ holder: String) -> String) throws -> RootLock {
        try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
        do {
            return try RootLock.acquire(writerLockPath)
        } catch .held(let pid, let host) {
            throw CommandFailure(description: refusal("pid \(pid.map(String.init) ?? "unknown")" + (host.map { " on host \($0)" } ?? "")))
        } catch .io(let reason) {
            throw CommandFailure(description: "cannot lock \(storage): \(reason)")
        }
    }

    /// Opens the catalog, runs `body` with it and closes it, whatever `body` did (a failure to
    /// close is a warning on stderr, not the command's failure). With `mustExist`, a storage
    /// root without a SQLite catalog is refused rather than given an empty one.
    func withCatalog<T>(mustExist: Bool = false, logger: Logger? = nil, _ body: (any RunCatalog) async throws -> T) async throws -> T {
        try await withCatalog(at: try catalogLocation, mustExist: mustExist, logger: logger, body)
    }

    /// ``withCatalog(mustExist:logger:_:)`` for a catalog other than `--catalog`.
    func withCatalog<T>(at location: CatalogLocation, mustExist: Bool = false, logger: Logger? = nil, _ body: (any RunCatalog) async throws -> T) async throws -> T {
        if case .sqlite(let path) = location {
            if mustExist {
                guard FileManager.default.fileExists(atPath: path) else {
                    throw CommandFailure(description: "no catalog at \(path): is --storage the server's storage root?")
                }
            } else {
                try FileManager.default.createDirectory(atPath: storage, withIntermediateDirectories: true)
            }
        }
        let catalog: any RunCatalog
        do {
            catalog = try await location.open(logger: logger ?? Self.quietLogger)
        } catch {
            throw CommandFailure(description: "cannot open the catalog \(location): \(error)")
        }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(catalog))
        } catch {
            result = .failure(error)
        }
        do {
            try await catalog.close()
        } catch {
            FileHandle.standardError.write(Data("warning: closing the catalog: \(error)\n".utf8))
        }
        return try result.get()
    }

    /// Opens the store and the catalog with a run service over them, runs `body`, writes run
    /// progress and closes everything.
    func withRuns<T>(_ body: (RunService) async throws -> T) async throws -> T {
        try await withCatalog { catalog in
            try await withStore { store in
                let runs = RunService(store: store, catalog: catalog, logger: Self.quietLogger)
                let result = try await body(runs)
                try await runs.flushProgress()
                return result
            }
        }
    }
}

/// The value of `RUNLOG_<name>`, a default for the flag of the same name.
func environment(_ name: String) -> String? {
    ProcessInfo.processInfo.environment["RUNLOG_" + name]
}

/// `RUNLOG_<name>` read by `parse`; nil when unset. A value that does not parse is nil too, and
/// remembered: the command's `validate()` (``EnvironmentDefaults/check()``) then refuses to run,
/// rather than run with the flag's default in place of what the operator meant.
func environment<Value>(_ name: String, as parse: (String) -> Value?) -> Value? {
    guard let text = environment(name) else { return nil }
    guard let value = parse(text) else {
        EnvironmentDefaults.rejected.withLock { $0["RUNLOG_" + name] = text }
        return nil
    }
    return value
}

/// Environment variables whose values did not parse, for the commands to refuse.
enum EnvironmentDefaults {
    fileprivate static let rejected = Mutex<[String: String]>([:])

    /// Fails with a one-line message naming a variable that did not parse.
    static func check() throws {
        guard let (name, value) = rejected.withLock({ $0.min { $0.key < $1.key } }) else { return }
        throw CommandFailure(description: "environment variable \(name) has an invalid value '\(value)'")
    }
}

extension Bool {
    /// `1`, `true`, `yes` or `0`, `false`, `no`, as environment switches are written.
    init?(switch text: String) {
        switch text.lowercased() {
        case "1", "true", "yes": self = true
        case "0", "false", "no": self = false
        default: return nil
        }
    }
}

extension Durability: ExpressibleByArgument {}

/// A failure reported as one line (`Error: ...`) and exit status 1, without usage text.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

/// Turns engine errors into one-line CLI failures.
func runCommand(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as StorageError {
        throw CommandFailure(description: error.description)
    } catch let error as RunError {
        throw CommandFailure(description: error.description)
    }
}

/// The run a command works on.
struct RunArguments: ParsableArguments {
    @Argument(help: "The workspace id.")
    var workspace: String

    @Argument(help: "The run id.")
    var run: String

    func key() throws -> RunKey {
        do {
            return try RunKey(workspace: workspace, run: run)
        } catch {
            throw CommandFailure(description: error.description)
        }
    }
}
