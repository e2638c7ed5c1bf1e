import ArgumentParser
import RunlogGateway

/// The `runlog` command: `serve` runs the gateway, `retention` is the cron job, and the
/// storage commands work directly on a storage root.
@main
struct Runlog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runlog",
        abstract: "A file-first event store for runs.",
        version: Gateway.version,
        subcommands: [ServeCommand.self, AppendCommand.self, ReadCommand.self, ArchiveCommand.self, VerifyCommand.self, RetentionCommand.self, CatalogCommand.self, TokenCommand.self]
    )
}
