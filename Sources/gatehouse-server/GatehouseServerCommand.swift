import ArgumentParser
import Foundation
import GatehouseSystem

@main
struct GatehouseServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse-server",
        abstract: "Gatehouse: a TLS message intake server with a durable journal.",
        discussion: """
            With no arguments, 'serve' runs with development defaults: certificates in certs/dev
            (generated on first use by scripts/gen-certs.sh), a tokens file in data/tokens (with a
            first token for the user 'dev', printed once) and a journal in data/journal.jsonl.

            Examples:
              gatehouse-server                                  # development server on port 9999
              gatehouse-server serve --cert chain.pem --key key.pem --tokens /etc/gatehouse/tokens \\
                  --journal /var/lib/gatehouse/journal.jsonl
              gatehouse-server token add alice                  # prints alice's new token once
              gatehouse-server token list
              gatehouse-server token revoke alice
              gatehouse-server check-config --config /etc/gatehouse/gatehouse.json
              gatehouse-server journal verify --journal /var/lib/gatehouse/journal.jsonl
            """,
        subcommands: [Serve.self, Token.self, CheckConfig.self, JournalCommand.self],
        defaultSubcommand: Serve.self
    )

    /// Adds the settings from `GATEHOUSE_SERVER_*` variables and `--config FILE` as flags, then
    /// parses and runs as usual (see `ConfigSources`).
    static func main() {
        let given = Array(CommandLine.arguments.dropFirst())
        let arguments: [String]
        do {
            arguments = try ConfigSources.apply(to: given, environment: ProcessInfo.processInfo.environment)
        } catch {
            Console.error("Error: \(error)")
            Foundation.exit(1)
        }
        main(arguments)
    }
}
