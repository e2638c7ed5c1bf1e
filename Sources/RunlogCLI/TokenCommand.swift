import ArgumentParser
import Foundation
import RunlogAuth

/// Where the server's signing key comes from: `--auth-key-file`, or env `RUNLOG_AUTH_KEY`.
struct AuthKeyOptions: ParsableArguments {
    @Option(help: "A file holding the token signing key, at least 32 bytes (env RUNLOG_AUTH_KEY holds the key itself).")
    var authKeyFile: String?

    /// The key's bytes (a file's trailing newline dropped), or nil when none is configured.
    func key() throws -> [UInt8]? {
        if let authKeyFile {
            guard let data = FileManager.default.contents(atPath: authKeyFile) else {
                throw CommandFailure(description: "cannot read the auth key file \(authKeyFile)")
            }
            var bytes = [UInt8](data)
            while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
            return bytes
        }
        return environment("AUTH_KEY").map { Array($0.utf8) }
    }

    func authority() async throws -> TokenAuthority? {
        guard let key = try key() else { return nil }
        do {
            return try await TokenAuthority(key: key)
        } catch {
            throw CommandFailure(description: error.description)
        }
    }
}

extension AccessScope: ExpressibleByArgument {}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Issue access tokens signed with the server's key.",
        subcommands: [IssueTokenCommand.self]
    )
}

struct IssueTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Print a token for workspaces and scopes, valid for --ttl."
    )

    @Option(name: .customLong("workspace"), help: "A workspace the token covers (repeatable).")
    var workspaces: [String] = []

    @Option(name: .customLong("scope"), help: "runs:create, events:append, events:read or runs:admin (repeatable).")
    var scopes: [AccessScope] = []

    @Option(help: "Limit the token to this one run.")
    var run: String?

    @Option(help: "How long the token is valid, like 15m or 12h.")
    var ttl: HumanDuration = HumanDuration(.seconds(15 * 60))

    @Option(help: "Who the token is for (the `sub` claim; informational).")
    var subject: String?

    @OptionGroup var key: AuthKeyOptions

    func run() async throws {
        guard !workspaces.isEmpty else { throw CommandFailure(description: "give at least one --workspace") }
        guard !scopes.isEmpty else { throw CommandFailure(description: "give at least one --scope") }
        guard ttl.duration > .zero else { throw CommandFailure(description: "--ttl must be positive") }
        guard let authority = try await key.authority() else {
            throw CommandFailure(description: "no signing key: pass --auth-key-file or set RUNLOG_AUTH_KEY")
        }
        print(try await authority.issue(workspaces: workspaces, scopes: scopes, run: run, subject: subject, ttl: ttl.duration))
    }
}
