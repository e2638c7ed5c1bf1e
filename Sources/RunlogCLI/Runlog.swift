import ArgumentParser

/// The `runlog` command. `serve` and `retention` arrive with the gateway and retention issues;
/// the storage commands below work directly on a storage root.
@main
struct Runlog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runlog",
        abstract: "A file-first event store for runs.",
        subcommands: [ServeCommand.self, AppendCommand.self, ReadCommand.self, ArchiveCommand.self, VerifyCommand.self]
    )
}
