import ArgumentParser

@main
struct GatehouseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "Client for a Gatehouse server: send messages, an interactive shell, and a load generator.",
        discussion: """
            Every command takes the connection options below, each also from an environment variable (GATEHOUSE_HOST, GATEHOUSE_PORT, GATEHOUSE_CA, GATEHOUSE_SERVER_NAME, GATEHOUSE_CERT, GATEHOUSE_KEY, GATEHOUSE_USER, GATEHOUSE_TOKEN_FILE, GATEHOUSE_TOKEN_COMMAND, GATEHOUSE_TIMEOUT). The token is never a command-line argument: it comes from --token-file FILE, --token-command CMD (whose output is the token: an access token from an identity provider), GATEHOUSE_TOKEN, GATEHOUSE_TOKEN_COMMAND or GATEHOUSE_TOKEN_FILE. With no option at all, from the repository root, the client talks to the development server (`swift run gatehouse-server`): localhost:9999, CA certs/dev/ca.crt, user dev, token file data/dev-token.

            Examples:
              gatehouse send hello
              gatehouse shell
              gatehouse bench messages --connections 64 --window 16 --duration 10
              gatehouse send --help
            """,
        subcommands: [Send.self, Shell.self, Bench.self]
    )
}
