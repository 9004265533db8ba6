import Configuration
import Dispatch
import Foundation
import SystemPackage

/// Settings for `serve` (and `check-config`) from three places, in this order of precedence:
/// a command-line flag, then an environment variable `GATEHOUSE_SERVER_<FLAG>` (the flag's name
/// in upper case, `-` as `_`: `GATEHOUSE_SERVER_IDLE_TIMEOUT=30`), then the JSON file named by
/// `--config FILE` (`{"idle-timeout": 30}`), then the built-in default. The environment prefix is
/// `GATEHOUSE_SERVER_`, not `GATEHOUSE_`, because the client already reads `GATEHOUSE_HOST`,
/// `GATEHOUSE_PORT` and friends: a shell set up for the client must not move a server.
///
/// Read with apple/swift-configuration; a setting found outside the command line is handed to
/// the argument parser as the flag it stands for, so every value passes the same checks
/// (ranges, formats) whatever its source. A key in the file that names no flag is refused, so
/// a typo cannot silently leave a default in force.
enum ConfigSources {
    enum Kind { case string, int, double, flag }

    /// Every `serve` option, by flag name. `check-config` and a test hold this list to the
    /// options `serve --help` shows, and to `deploy/gatehouse.json`.
    static let settings: [(name: String, kind: Kind)] = [
        ("host", .string), ("port", .int), ("cert", .string), ("key", .string), ("tokens", .string),
        ("journal", .string), ("fsync", .string), ("journal-queue", .int), ("journal-queue-bytes", .int),
        ("journal-max-bytes", .int), ("stream-retention", .double), ("max-streams", .int), ("store", .string),
        ("postgresql", .string), ("postgresql-table", .string), ("postgresql-password-file", .string),
        ("node-name", .string),
        ("workers", .int), ("min-tls", .string), ("max-line", .int), ("error-budget", .int),
        ("handshake-timeout", .double), ("idle-timeout", .double), ("drain-timeout", .double),
        ("max-connections", .int), ("max-connections-per-peer", .int), ("client-ca", .string),
        ("client-auth", .string), ("crl", .string), ("client-map", .string), ("auth-failure-limit", .int),
        ("auth-failure-window", .double), ("max-msg-rate", .string), ("session-tickets", .int),
        ("log-level", .string), ("log-format", .string), ("allow-group-read", .flag), ("metrics-address", .string),
        ("auth-timeout", .double), ("max-in-flight-bytes", .int), ("throttle-refuse-connections", .flag),
        ("throttle-exempt", .string), ("jwt-jwks", .string), ("jwt-issuer", .string), ("jwt-audience", .string),
        ("jwt-user-claim", .string), ("jwt-algorithms", .string), ("jwt-leeway", .double),
        ("proxy-protocol", .flag), ("proxy-from", .string),
    ]

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `arguments` (without the program name) with the settings the environment and the
    /// config file give added as flags, for the subcommands that serve; others unchanged.
    static func apply(to arguments: [String], environment: [String: String]) throws(Failure) -> [String] {
        let subcommands = ["serve", "check-config"]
        let first = arguments.first ?? ""
        guard first.isEmpty || first.hasPrefix("-") || subcommands.contains(first) else { return arguments }
        if arguments.contains("--help") || arguments.contains("-h") { return arguments }
        let configPath = value(of: "config", in: arguments)
        let env = EnvironmentVariablesProvider(environmentVariables: environment)
        let envReader = ConfigReader(provider: env).scoped(to: "gatehouse.server")
        var fileReader: ConfigReader?
        if let configPath {
            try checkKeys(ofFile: configPath)
            fileReader = try load(configPath)
        }
        var out = arguments
        for (name, kind) in settings where !mentions(name, in: arguments) {
            // An empty string stands for the default (the example's "node-name": "" is the host name).
            guard let value = try lookUp(name, kind, env: envReader, file: fileReader), !value.isEmpty else { continue }
            switch kind {
            case .flag: if value == "true" { out.append("--\(name)") }
            default: out.append("--\(name)=\(value)")
            }
        }
        return out
    }

    /// The value of `--name V` or `--name=V` in `arguments`.
    static func value(of name: String, in arguments: [String]) -> String? {
        for (i, argument) in arguments.enumerated() {
            if argument == "--\(name)", i + 1 < arguments.count { return arguments[i + 1] }
            if argument.hasPrefix("--\(name)=") { return String(argument.dropFirst(name.count + 3)) }
        }
        return nil
    }

    static func mentions(_ name: String, in arguments: [String]) -> Bool {
        arguments.contains { $0 == "--\(name)" || $0.hasPrefix("--\(name)=") }
    }

    private static func lookUp(
        _ name: String,
        _ kind: Kind,
        env: ConfigReader,
        file: ConfigReader?
    ) throws(Failure) -> String? {
        for (reader, source) in [(env, "environment variable GATEHOUSE_SERVER_\(envName(name))"), (file, name)] {
            guard let reader else { continue }
            let key = ConfigKey(name)
            switch kind {
            case .string:
                // An empty string leaves the setting unset (the example file lists every key).
                if let v = reader.string(forKey: key) { return v.isEmpty ? nil : v }
            case .int:
                if let v = reader.int(forKey: key) { return String(v) }
            case .double:
                if let v = reader.double(forKey: key) { return String(v) }
                if let v = reader.int(forKey: key) { return String(v) }
            case .flag:
                if let v = reader.bool(forKey: key) { return v ? "true" : "false" }
            }
            // Present but not of the flag's type: say so rather than fall back to a default.
            if reader.string(forKey: key) != nil || reader.int(forKey: key) != nil
                || reader.double(forKey: key) != nil || reader.bool(forKey: key) != nil
            {
                throw Failure(description: "\(source): '\(name)' must be \(describe(kind))")
            }
        }
        return nil
    }

    static func envName(_ name: String) -> String {
        name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    private static func describe(_ kind: Kind) -> String {
        switch kind {
        case .string: "a string"
        case .int: "a whole number"
        case .double: "a number"
        case .flag: "true or false"
        }
    }

    /// Refuses keys that name no setting (and a file that is not one JSON object).
    private static func checkKeys(ofFile path: String) throws(Failure) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read config file \(path)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "config file \(path) is not a JSON object")
        }
        let known = Set(settings.map(\.name))
        for key in object.keys.sorted() where !known.contains(key) && !key.hasPrefix("#") {
            throw Failure(description: "config file \(path): unknown setting '\(key)' (see deploy/gatehouse.json)")
        }
    }

    /// swift-configuration's file provider is async; this runs once at start, before any thread.
    private static func load(_ path: String) throws(Failure) -> ConfigReader {
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let provider = try await FileProvider<JSONSnapshot>(filePath: FilePath(path))
                box.result = .success(ConfigReader(provider: provider))
            } catch {
                box.result = .failure(error)
            }
            done.signal()
        }
        done.wait()
        switch box.result! {
        case .success(let reader): return reader
        case .failure(let error): throw Failure(description: "config file \(path): \(error)")
        }
    }

    private final class ResultBox: @unchecked Sendable {
        // Written by the task before the semaphore is signalled, read after the wait.
        var result: Result<ConfigReader, any Error>?
    }
}
