import ArgumentParser
import Foundation
import RunlogCatalog
import RunlogRuns
import RunlogStorage

/// `runlog catalog`: moving a store's catalog between backends, and rebuilding it from the files.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Copy the catalog between SQLite and PostgreSQL, or rebuild it from the log files.",
        subcommands: [CopyCommand.self, RebuildCommand.self]
    )

    struct CopyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "copy",
            abstract: "Copy every run's row from one catalog to another; safe to run again.",
            discussion: """
                Each side is sqlite (<storage>/catalog.sqlite) or a postgres:// URL; --catalog is not used. \
                Rows the destination lacks are created, rows that differ are replaced; rows only the destination has stay. \
                Refused while runlog serve holds the storage root: stop it first, then start it with the new --catalog.
                """
        )

        @OptionGroup var options: StorageOptions

        @Option(help: "The catalog to read: sqlite or postgres://...")
        var from: String

        @Option(help: "The catalog to write: sqlite or postgres://...")
        var to: String

        func run() async throws {
            let source = try location(from)
            let destination = try location(to)
            guard source != destination else { throw CommandFailure(description: "--from and --to are the same catalog (\(source))") }
            let lock = try options.lockForWriting(instead: "stop it before copying its catalog")
            defer { withExtendedLifetime(lock) {} }
            let report = try await options.withCatalog(at: source, mustExist: true) { source in
                try await options.withCatalog(at: destination) { destination in
                    do {
                        return try await source.copyRuns(to: destination)
                    } catch {
                        throw CommandFailure(description: "copying the catalog stopped (run it again to go on): \(error)")
                    }
                }
            }
            try printJSON([
                "rows_read": report.rowsRead, "rows_created": report.rowsCreated, "rows_replaced": report.rowsReplaced,
                "rows_unchanged": report.rowsUnchanged,
            ])
        }

        private func location(_ text: String) throws -> CatalogLocation {
            do {
                return try CatalogLocation(text, storageRoot: options.storage)
            } catch {
                throw CommandFailure(description: error.description)
            }
        }
    }

    struct RebuildCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rebuild",
            abstract: "Create the catalog rows of runs that have log files but no row, from the files alone.",
            discussion: """
                For a lost catalog, or a new one (give it with --catalog): each run's status, times, counts and summary come \
                from its events; its configuration_id and metadata, which only the catalog held, are left empty, and \
                created_at is its first event's time. Rows that exist are left alone (runlog verify --repair checks them). \
                Safe to run again. Refused while runlog serve holds the storage root.
                """
        )

        @OptionGroup var options: StorageOptions

        func run() async throws {
            let lock = try options.lockForWriting(instead: "stop it before rebuilding its catalog")
            defer { withExtendedLifetime(lock) {} }
            let report = try await options.withRuns { runs in
                do {
                    return try await runs.restoreMissingRows()
                } catch {
                    throw CommandFailure(description: "rebuilding the catalog stopped (run it again to go on): \(error)")
                }
            }
            try printJSON(["runs_found": report.runsFound, "rows_created": report.rowsCreated, "rows_present": report.rowsPresent])
        }
    }
}

/// Prints `object` as one line of JSON with sorted keys.
func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
