/// The development defaults the README's first command relies on, relative to the working directory.
enum Defaults {
    static let certificate = "certs/dev/server.crt"
    static let key = "certs/dev/server.key"
    static let caCertificate = "certs/dev/ca.crt"
    static let tokens = "data/tokens"
    static let journal = "data/journal.jsonl"
    static let generator = "scripts/gen-certs.sh"
    static let firstUser = "dev"
}
