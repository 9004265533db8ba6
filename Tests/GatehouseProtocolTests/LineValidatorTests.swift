import GatehouseProtocol
import TestSupport
import Testing

private func validate(_ line: [UInt8]) -> LineProblem? {
    line.withUnsafeBytes { LineValidator.validate($0) }
}

private func validate(_ line: String) -> LineProblem? { validate(bytes(line)) }

/// What the protocol calls a control character.
private func isControl(_ v: UInt32) -> Bool {
    (v < 0x20 && v != 0x09) || v == 0x7F || (0x80...0x9F).contains(v)
}

/// The protocol's verdict, computed with the standard library's own UTF-8 decoder.
private func expectedProblem(_ line: [UInt8]) -> LineProblem? {
    guard let s = String(validating: line, as: UTF8.self) else { return .badUTF8 }
    return s.unicodeScalars.contains { isControl($0.value) } ? .badChar : nil
}

@Suite("LineValidator")
struct LineValidatorTests {

    // MARK: - Clean lines

    @Test(arguments: [
        "", "PING", "MSG hello, world!", "AUTH alice s3cr3t", " ~", "MSG a\tb\t", "\t",
        "MSG café", "MSG 漢字", "MSG 😀👍🏽", "MSG Ωμέγα — “quotes” …", "MSG \u{FEFF}\u{2028}\u{FFFD}",
    ])
    func acceptsValidText(_ text: String) {
        #expect(validate(text) == nil)
    }

    @Test(
        arguments: [
            [0xC2, 0xA0],  // U+00A0, the first code point after the C1 block
            [0xDF, 0xBF],  // U+07FF, last 2-byte
            [0xE0, 0xA0, 0x80],  // U+0800, first 3-byte
            [0xED, 0x9F, 0xBF],  // U+D7FF, just below the surrogates
            [0xEE, 0x80, 0x80],  // U+E000, just above the surrogates
            [0xEF, 0xBF, 0xBF],  // U+FFFF
            [0xF0, 0x90, 0x80, 0x80],  // U+10000, first 4-byte
            [0xF4, 0x8F, 0xBF, 0xBF],  // U+10FFFF, the last code point
            [0xC3, 0xA9],  // é
            [0xE6, 0xBC, 0xA2],  // 漢
            [0xF0, 0x9F, 0x98, 0x80],  // 😀
        ] as [[UInt8]]
    )
    func acceptsBoundaryCodePoints(_ seq: [UInt8]) {
        #expect(validate(seq) == nil)
        #expect(validate(bytes("MSG ") + seq + bytes(" end")) == nil)
    }

    @Test func allowsTab() {
        #expect(validate([0x09]) == nil)
        #expect(validate(bytes("MSG \tindented\t")) == nil)
    }

    @Test func acceptsEveryPrintableASCIIByte() {
        #expect(validate(Array(0x20...0x7E)) == nil)
    }

    // MARK: - Invalid UTF-8

    @Test(
        arguments: [
            [0xC0, 0x80],  // overlong NUL
            [0xC0, 0xAF],  // overlong "/"
            [0xC1, 0xBF],  // overlong U+007F
            [0xE0, 0x80, 0x80],  // overlong NUL, 3 bytes
            [0xE0, 0x9F, 0xBF],  // overlong U+07FF
            [0xF0, 0x80, 0x80, 0x80],  // overlong NUL, 4 bytes
            [0xF0, 0x8F, 0xBF, 0xBF],  // overlong U+FFFF
        ] as [[UInt8]]
    )
    func rejectsOverlongForms(_ seq: [UInt8]) {
        #expect(validate(seq) == .badUTF8)
        #expect(validate(bytes("MSG ") + seq) == .badUTF8)
    }

    @Test(
        arguments: [
            [0xED, 0xA0, 0x80],  // U+D800
            [0xED, 0xAD, 0xBF],  // U+DB7F
            [0xED, 0xB0, 0x80],  // U+DC00
            [0xED, 0xBF, 0xBF],  // U+DFFF
            [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80],  // a CESU-8 surrogate pair for U+1F600
        ] as [[UInt8]]
    )
    func rejectsEncodedSurrogates(_ seq: [UInt8]) {
        #expect(validate(seq) == .badUTF8)
        #expect(validate(bytes("MSG x") + seq + bytes("y")) == .badUTF8)
    }

    @Test(
        arguments: [
            [0xF4, 0x90, 0x80, 0x80],  // U+110000
            [0xF4, 0xBF, 0xBF, 0xBF],
            [0xF5, 0x80, 0x80, 0x80],
            [0xF7, 0xBF, 0xBF, 0xBF],  // U+1FFFFF
            [0xF8, 0x88, 0x80, 0x80, 0x80],  // old 5-byte form
            [0xFC, 0x84, 0x80, 0x80, 0x80, 0x80],  // old 6-byte form
            [0xFE], [0xFF], [0xFF, 0xFE],
        ] as [[UInt8]]
    )
    func rejectsCodePointsAboveU10FFFFAndInvalidLeads(_ seq: [UInt8]) {
        #expect(validate(seq) == .badUTF8)
    }

    @Test(arguments: 0xF5...0xFF)
    func rejectsEveryLeadByteFromF5(_ lead: Int) {
        #expect(validate([UInt8(lead), 0x80, 0x80, 0x80]) == .badUTF8)
    }

    @Test(
        arguments: [
            [0xC3], [0xE6], [0xE6, 0xBC], [0xF0], [0xF0, 0x9F], [0xF0, 0x9F, 0x98],
        ] as [[UInt8]]
    )
    func rejectsTruncatedSequences(_ seq: [UInt8]) {
        #expect(validate(seq) == .badUTF8)  // alone
        #expect(validate(bytes("MSG ") + seq) == .badUTF8)  // at the end of the line
        #expect(validate(bytes("MSG ") + seq + bytes("A")) == .badUTF8)  // cut short by ASCII
        #expect(validate(bytes("MSG ") + seq + [0xC3, 0xA9]) == .badUTF8)  // cut short by a new lead
    }

    @Test(
        arguments: [
            [0x80], [0xBF], [0x80, 0x80], [0x61, 0x80, 0x62],
            [0xC3, 0xA9, 0xA9],  // é and one continuation too many
            [0xF0, 0x9F, 0x98, 0x80, 0x80],  // 😀 and one too many
        ] as [[UInt8]]
    )
    func rejectsStrayContinuationBytes(_ seq: [UInt8]) {
        #expect(validate(seq) == .badUTF8)
    }

    @Test func rejectsSecondByteThatIsNotAContinuation() {
        #expect(validate([0xC3, 0x28]) == .badUTF8)
        #expect(validate([0xE2, 0x28, 0xA1]) == .badUTF8)
        #expect(validate([0xE2, 0x82, 0x28]) == .badUTF8)
        #expect(validate([0xF0, 0x28, 0x8C, 0xBC]) == .badUTF8)
        #expect(validate([0xF0, 0x90, 0x28, 0xBC]) == .badUTF8)
        #expect(validate([0xF0, 0x90, 0x8C, 0x28]) == .badUTF8)
    }

    // MARK: - Control characters

    @Test(arguments: (0x00...0x1F).filter { $0 != 0x09 } + [0x7F])
    func rejectsASCIIControlCharacters(_ byte: Int) {
        let b = UInt8(byte)
        #expect(validate([b]) == .badChar)
        #expect(validate(bytes("MSG ") + [b]) == .badChar)
        #expect(validate([b] + bytes("PING")) == .badChar)
        #expect(validate(bytes("MSG a") + [b] + bytes("b")) == .badChar)
    }

    @Test func rejectsNUL() {
        #expect(validate([0x00]) == .badChar)
        #expect(validate(bytes("MSG a\u{0}b")) == .badChar)
    }

    @Test func rejectsDEL() {
        #expect(validate(bytes("MSG \u{7F}")) == .badChar)
    }

    @Test func rejectsLoneCR() {
        #expect(validate(bytes("MSG a\rb")) == .badChar)
    }

    @Test(arguments: 0x80...0x9F)
    func rejectsC1ControlCharacters(_ second: Int) {
        let seq: [UInt8] = [0xC2, UInt8(second)]
        #expect(validate(seq) == .badChar)
        #expect(validate(bytes("MSG x") + seq + bytes("y")) == .badChar)
    }

    @Test func c1BlockEndsAtU009F() {
        #expect(validate([0xC2, 0x80]) == .badChar)
        #expect(validate([0xC2, 0x9F]) == .badChar)
        #expect(validate([0xC2, 0xA0]) == nil)
        #expect(validate([0xC3, 0x80]) == nil)  // À: C3 80 is not a control
    }

    // MARK: - BAD_UTF8 before BAD_CHAR

    @Test(
        arguments: [
            [0x00, 0xFF],  // control first, bad UTF-8 after
            [0xFF, 0x00],  // bad UTF-8 first
            [0x01, 0x20, 0xC3, 0xA9, 0x20, 0xC0, 0x80],
            [0xC2, 0x85, 0xED, 0xA0, 0x80],  // C1 control, then a surrogate
            [0x7F, 0x61, 0x62, 0xC3],  // DEL, then a truncated sequence at the end
            [0xE6, 0xBC, 0x00],  // a truncated sequence whose next byte is NUL
            [0x09, 0x1B, 0x5B, 0x6D, 0x80],  // escape sequence, stray continuation
        ] as [[UInt8]]
    )
    func badUTF8WinsOverBadCharAnywhereInTheLine(_ seq: [UInt8]) {
        #expect(validate(seq) == .badUTF8)
    }

    @Test func badUTF8WinsEvenFarAfterTheControlCharacter() {
        let line = [0x00] + [UInt8](repeating: 0x61, count: 10_000) + [0xF5]
        #expect(validate(line) == .badUTF8)
    }

    // MARK: - Against the standard library's decoder

    @Test func agreesWithStandardLibraryOnEveryTwoByteLine() {
        var disagreements: [[UInt8]] = []
        for a in 0...255 {
            for b in 0...255 {
                let line: [UInt8] = [UInt8(a), UInt8(b)]
                if validate(line) != expectedProblem(line) { disagreements.append(line) }
            }
        }
        #expect(disagreements.isEmpty, "first: \(disagreements.prefix(5).map(escaped))")
    }

    @Test func agreesWithStandardLibraryOnEveryThreeByteSequenceFromE0ToEF() {
        var disagreements: [[UInt8]] = []
        for a in 0xE0...0xEF {
            for b in 0...255 {
                for c in [0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF] {
                    let line: [UInt8] = [UInt8(a), UInt8(b), UInt8(c)]
                    if validate(line) != expectedProblem(line) { disagreements.append(line) }
                }
            }
        }
        #expect(disagreements.isEmpty, "first: \(disagreements.prefix(5).map(escaped))")
    }

    @Test func agreesWithStandardLibraryOnFourByteLeadsAndSecondBytes() {
        var disagreements: [[UInt8]] = []
        for a in 0xF0...0xFF {
            for b in 0...255 {
                for tail in [[0x80, 0x80], [0xBF, 0xBF], [0x80], [0x41, 0x80], [0x80, 0xC0]] as [[UInt8]] {
                    let line: [UInt8] = [UInt8(a), UInt8(b)] + tail
                    if validate(line) != expectedProblem(line) { disagreements.append(line) }
                }
            }
        }
        #expect(disagreements.isEmpty, "first: \(disagreements.prefix(5).map(escaped))")
    }

    @Test(arguments: 0..<8)
    func agreesWithStandardLibraryOnRandomLines(_ seed: Int) {
        var rng = SplitMix64(seed: 0xC0FFEE &+ UInt64(seed))
        // Bytes drawn mostly from the interesting places: controls, continuations, leads.
        let pool: [UInt8] = Array(0x00...0x20) + [0x41, 0x61, 0x7E, 0x7F] + Array(0x80...0xFF)
        var disagreements: [[UInt8]] = []
        for _ in 0..<5000 {
            let n = Int(rng.next() % 12)
            var line: [UInt8] = []
            for _ in 0..<n {
                if rng.next() % 3 == 0 {
                    // A valid scalar now and then, so that clean lines occur too.
                    let scalars: [String] = ["a", " ", "é", "\u{85}", "漢", "😀", "\t", "\u{7F}"]
                    line += bytes(scalars[Int(rng.next() % UInt64(scalars.count))])
                } else {
                    line.append(pool[Int(rng.next() % UInt64(pool.count))])
                }
            }
            if validate(line) != expectedProblem(line) { disagreements.append(line) }
        }
        #expect(disagreements.isEmpty, "first: \(disagreements.prefix(5).map(escaped))")
    }
}

@Suite("SWAR search")
struct SWARSearchTests {
    /// `SWAR.firstIndex` against a plain scan: every length to 40, every start, the searched byte
    /// at every place or absent, among neighbours that differ from it by one bit (0x0B, 0x8A,
    /// 0x0E, 0x1A, 0x4A), where a word test with false hits or misses would show.
    @Test func agreesWithAPlainScan() {
        let fillers: [UInt8] = [0x0B, 0x8A, 0x0E, 0x1A, 0x4A, 0x61, 0xFF, 0x00]
        var mismatches: [String] = []
        for length in 0...40 {
            for place in [-1] + Array(0..<length) {
                var bytes = (0..<length).map { fillers[$0 % fillers.count] }
                if place >= 0 { bytes[place] = 0x0A }
                if place >= 0 && place + 3 < length { bytes[place + 3] = 0x0A }  // a second one later
                bytes.withUnsafeBytes { buffer in
                    for start in 0...length {
                        let expected = buffer[start...].firstIndex(of: 0x0A)
                        let found = SWAR.firstIndex(of: 0x0A, in: buffer, from: start)
                        if found != expected { mismatches.append("len \(length) LF at \(place) from \(start)") }
                    }
                }
            }
        }
        #expect(mismatches.isEmpty, "first: \(mismatches.prefix(5))")
    }
}
