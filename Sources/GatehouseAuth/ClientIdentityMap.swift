import GatehouseProtocol
public import GatehouseTLS

/// Which user a verified client certificate authenticates as.
///
/// Without a map, the subject common name is the user, when it is a valid user name. With a map
/// (`--client-map FILE`), only the certificates a line of the map matches authenticate; the
/// first matching line, in file order, names the user. Pure: loading is `load(_:)`'s job.
///
/// The file format, one rule per line; `#` starts a comment line, blank lines are ignored:
///
///     CN:<common name>      <user>
///     DNS:<dns name>        <user>
///     email:<address>       <user>
///     URI:<uri>             <user>
///
/// The user is the last field; the value is everything between the colon and the blanks
/// before the user, so a CN may contain spaces. Selectors are case-insensitive. CN and URI
/// values compare exactly; DNS and email values compare ignoring ASCII case.
public struct ClientIdentityMap: Sendable, Equatable {
    /// One certificate name a rule matches.
    public enum Selector: Sendable, Equatable, CustomStringConvertible {
        case commonName(String)
        case dns(String)
        case email(String)
        case uri(String)

        public var description: String {
            switch self {
            case .commonName(let v): "CN:\(v)"
            case .dns(let v): "DNS:\(v)"
            case .email(let v): "email:\(v)"
            case .uri(let v): "URI:\(v)"
            }
        }
    }

    public struct Rule: Sendable, Equatable {
        public var selector: Selector
        public var user: String
    }

    public private(set) var rules: [Rule]

    public init(rules: [Rule] = []) {
        self.rules = rules
    }

    /// The user `identity` authenticates as under this map, or nil.
    public func user(for identity: CertificateIdentity) -> String? {
        for rule in rules where rule.selector.matches(identity) { return rule.user }
        return nil
    }

    /// The user a verified certificate authenticates as: by `map` when there is one, else by
    /// its CN when that is a valid user name.
    public static func user(for identity: CertificateIdentity, map: ClientIdentityMap?) -> String? {
        if let map { return map.user(for: identity) }
        guard let cn = identity.commonName, UserName.isValid(cn) else { return nil }
        return cn
    }

    // MARK: the file

    /// Parses the map format above. Errors name the file and line.
    public init(parsing text: String, source: String = "client map") throws(AuthError) {
        var rules: [Rule] = []
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        for (index, raw) in lines.enumerated() {
            let at = "\(source):\(index + 1)"
            let line = raw.trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let lastBlank = line.lastIndex(where: { $0 == " " || $0 == "\t" }) else {
                throw AuthError("\(at): expected '<CN|DNS|email|URI>:<value> <user>'")
            }
            let user = String(line[line.index(after: lastBlank)...])
            let left = line[..<lastBlank].trimmingBlanks()
            guard UserName.isValid(user) else {
                throw AuthError("\(at): invalid user name (use \(CommandParser.userNameRule))")
            }
            guard let colon = left.firstIndex(of: ":") else {
                throw AuthError("\(at): expected '<CN|DNS|email|URI>:<value> <user>'")
            }
            let value = String(left[left.index(after: colon)...].trimmingBlanks())
            guard !value.isEmpty else { throw AuthError("\(at): empty value after \(left[...colon])") }
            let selector: Selector
            switch left[..<colon].lowercased() {
            case "cn": selector = .commonName(value)
            case "dns": selector = .dns(value.asciiLowercased())
            case "email": selector = .email(value.asciiLowercased())
            case "uri": selector = .uri(value)
            default: throw AuthError("\(at): unknown selector '\(left[..<colon])' (use CN, DNS, email or URI)")
            }
            if rules.contains(where: { $0.selector.description.utf8.elementsEqual(selector.description.utf8) }) {
                throw AuthError("\(at): \(selector) is mapped twice")
            }
            rules.append(Rule(selector: selector, user: user))
        }
        self.rules = rules
    }

    /// Loads the map from `path`. Refuses a file that others can read or write (see
    /// `SecretFile`): whoever can edit it can map their certificate to any user.
    ///
    /// > Warning: blocking file I/O. Call at start-up or on SIGHUP, never on a worker.
    public static func load(_ path: String, allowGroupRead: Bool = false) throws(AuthError) -> ClientIdentityMap {
        let bytes = try SecretFile.read(path, what: "client map", allowGroupRead: allowGroupRead)
        return try ClientIdentityMap(parsing: String(decoding: bytes, as: UTF8.self), source: path)
    }
}

extension ClientIdentityMap.Selector {
    func matches(_ identity: CertificateIdentity) -> Bool {
        switch self {
        // Byte for byte, as documented: Swift's String == is Unicode canonical equivalence, under
        // which a differently composed CN would match a rule written for another name.
        case .commonName(let v): identity.commonName.map { $0.utf8.elementsEqual(v.utf8) } ?? false
        case .dns(let v): identity.dnsNames.contains { $0.asciiLowercased().utf8.elementsEqual(v.utf8) }
        case .email(let v): identity.emails.contains { $0.asciiLowercased().utf8.elementsEqual(v.utf8) }
        case .uri(let v): identity.uris.contains { $0.utf8.elementsEqual(v.utf8) }
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingBlanks() -> SubSequence {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return s
    }

    fileprivate func asciiLowercased() -> String {
        String(decoding: utf8.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
