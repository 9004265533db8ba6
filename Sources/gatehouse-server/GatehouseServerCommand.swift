import ArgumentParser

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
              gatehouse-server journal verify --journal /var/lib/gatehouse/journal.jsonl
            """,
        subcommands: [Serve.self, Token.self, JournalCommand.self],
        defaultSubcommand: Serve.self
    )
}
