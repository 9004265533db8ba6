/// The inverse of `Reply.encode`, for clients: one reply line (without its LF) back into a
/// `Reply`.
///
/// Follows `PROTOCOL.md`'s rule for clients: a reply may carry more space-separated tokens after
/// the ones named there, and those are ignored (`ACK 5 later-field` is `.ack(5)`; the greeting is
/// recognised by its first two tokens, `HELLO gatehouse/1`). Anything else — an unknown verb, a
/// missing or non-decimal number, an unknown `ERR` code, another protocol version — is nil.
///
/// Pure: no I/O.
extension Reply {
    /// Parses `line` (no LF; a CR before it is the framer's to drop). Nil when it is not a reply
    /// of protocol version 1.
    public init?(line: some StringProtocol) {
        let words = line.split(separator: " ", omittingEmptySubsequences: false)
        guard let verb = words.first else { return nil }
        switch verb {
        case "ACK":
            guard words.count >= 2, let n = Reply.parseCount(words[1]) else { return nil }
            self = .ack(n)
        case "PONG": self = .pong
        case "BYE": self = .bye
        case "HELLO":
            guard words.count >= 2, words[1] == Reply.protocolName else { return nil }
            if words.count >= 4, words[2] == "AUTHENTICATED", !words[3].isEmpty {
                self = .hello(authenticatedUser: String(words[3]))
            } else {
                self = .hello(authenticatedUser: nil)
            }
        case "OK":
            guard words.count >= 3, !words[2].isEmpty else { return nil }
            switch words[1] {
            case "AUTH": self = .okAuth(user: String(words[2]))
            case "STREAM":
                guard words.count >= 4, let last = Reply.parseCount(words[3]) else { return nil }
                self = .okStream(name: String(words[2]), last: last)
            default: return nil
            }
        case "ERR":
            // The text is everything after the code, spaces included; `ERR CODE` alone has none.
            guard words.count >= 2, let code = ErrorCode(rawValue: String(words[1])) else { return nil }
            let text = words.count >= 3 ? words[2...].joined(separator: " ") : ""
            self = .error(code, text)
        default: return nil
        }
    }

    /// A non-negative decimal as `appendDecimal` writes it: digits only, no sign, fits an `Int`.
    private static func parseCount(_ word: some StringProtocol) -> Int? {
        guard !word.isEmpty, word.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(word)
    }
}
