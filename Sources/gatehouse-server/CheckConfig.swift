import ArgumentParser
import GatehouseServer
import GatehouseSystem

/// `gatehouse-server check-config`: validates a configuration (flags, `--config FILE`,
/// `GATEHOUSE_SERVER_*`) and every file it names, without starting; one line per problem.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration and the files it names without starting the server.",
        discussion: """
            Takes every option of 'serve'. Checks the certificate chain and key (they load, match, the key
            is private, the certificate has not expired), the client CA bundle and CRL, the tokens file and
            client map, that the journal's folder is writable and that the address is free. Prints one line
            per problem and exits 1, or prints the settings in force and exits 0.
            """
    )

    @OptionGroup var serve: Serve

    func run() throws {
        let config = serve.configuration()
        let problems = Server.check(config)
        for problem in problems { Console.error("check-config: \(problem)") }
        guard problems.isEmpty else { throw ExitCode(1) }
        Console.out(
            "configuration OK: \(config.host) port \(config.port), certificate \(config.tls.certificateChainFile), "
                + "tokens \(config.tokensFile), journal \(config.journalFile), client-auth \(config.tls.clientAuth.rawValue)"
        )
    }
}
