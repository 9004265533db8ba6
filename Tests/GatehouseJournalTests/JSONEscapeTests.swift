import Foundation
import TestSupport
import Testing

@testable import GatehouseJournal

/// The word-at-a-time escaper against a JSON parser, on random text full of the bytes that
/// need escaping at every position relative to the 8-byte words.
@Suite struct JSONEscapeTests {
    @Test func randomTextRoundTripsThroughAJSONParser() throws {
        var rng = SplitMix64(seed: 2026)
        let alphabet: [Character] = [
            "a", "Z", "0", " ", "\"", "\\", "\t", "\n", "\r", "\u{01}", "\u{1F}", "\u{7F}", "é", "漢", "🚀", "/",
        ]
        for round in 0..<2000 {
            let length = Int.random(in: 0...40, using: &rng)
            let text = String((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
            var out: [UInt8] = [0x22]
            Array(text.utf8).withUnsafeBytes { JSON.appendEscaped($0, to: &out) }
            out.append(0x22)
            let parsed = try JSONSerialization.jsonObject(with: Data(out), options: .fragmentsAllowed) as? String
            #expect(
                parsed == text,
                "round \(round): \(text.debugDescription) -> \(String(decoding: out, as: UTF8.self))"
            )
        }
    }

    @Test func cleanTextIsCopiedVerbatim() {
        let text = "plain ASCII text of some length, with é and 漢 but nothing to escape"
        var out: [UInt8] = []
        Array(text.utf8).withUnsafeBytes { JSON.appendEscaped($0, to: &out) }
        #expect(out == Array(text.utf8))
    }
}
