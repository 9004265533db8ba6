import ArgumentParser
import GatehouseAuth
import GatehouseProtocol
import GatehouseSystem

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Issue, list and revoke client tokens.",
        discussion: """
            The tokens file holds user names and SHA-256 hashes of their tokens, never the tokens.
            A running server picks up changes on SIGHUP.
            """,
        subcommands: [Add.self, List.self, Revoke.self]
    )

    struct Options: ParsableArguments {
        @Option(name: .long, help: "The tokens file (created with mode 0600 if missing).")
        var tokens: String = Defaults.tokens
        @Flag(
            name: .customLong("allow-group-read"),
            help: "Accept a tokens file its group may read (as the server's --allow-group-read)."
        )
        var allowGroupRead = false
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a new 256-bit token for USER (replacing any old one) and print it once."
        )
        @Argument(help: "The user name: \(CommandParser.userNameRule)")
        var user: String
        @OptionGroup var options: Options

        func run() throws {
            var store = try loadForUpdate(options.tokens, allowGroupRead: options.allowGroupRead)
            let replaced = store.hashes[user] != nil
            let token = try store.issueToken(for: user)
            try TokenFile.save(store, to: options.tokens)
            print(token)
            Console.error(
                "\(replaced ? "replaced" : "issued") token for '\(user)' in \(options.tokens); it is shown only once"
            )
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users that have a token.")
        @OptionGroup var options: Options

        func run() throws {
            let store = try TokenFile.load(options.tokens, allowGroupRead: options.allowGroupRead)
            for user in store.users { print(user) }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove USER's token.")
        @Argument var user: String
        @OptionGroup var options: Options

        func run() throws {
            var store = try TokenFile.load(options.tokens, allowGroupRead: options.allowGroupRead)
            guard store.revoke(user: user) else {
                throw ValidationError("no token for user '\(user)' in \(options.tokens)")
            }
            try TokenFile.save(store, to: options.tokens)
            Console.error("revoked the token of '\(user)'; send SIGHUP to a running server")
        }
    }
}

/// Loads the tokens file for a change, creating its folder (0700) if needed.
func loadForUpdate(_ path: String, allowGroupRead: Bool = false) throws -> TokenStore {
    try Directories.createParent(of: path)
    return try TokenFile.loadOrEmpty(path, allowGroupRead: allowGroupRead)
}

enum Directories {
    /// Creates the folder holding `path` (and its parents) with mode 0700.
    static func createParent(of path: String) throws {
        guard let slash = path.lastIndex(of: "/") else { return }
        let dir = String(path[..<slash])
        guard !dir.isEmpty else { return }
        var current = dir.hasPrefix("/") ? "" : "."
        for part in dir.split(separator: "/") {
            current += "/" + part
            do { try FileIO.makeDirectory(current, mode: 0o700) } catch {
                throw ValidationError("cannot create folder \(current): \(error.reason)")
            }
        }
    }

    static func exists(_ path: String) -> Bool { FileIO.exists(path) }
}
