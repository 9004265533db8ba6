import GatehouseJWT
import Testing

/// The strict JSON parser that reads JOSE headers, claims and JWKS files.
@Suite struct JSONParserTests {
    func parse(_ text: String, maxDepth: Int = 16) throws(JSONError) -> JSONValue {
        try JSONParser(maxDepth: maxDepth).parse(Array(text.utf8))
    }

    func rejects(_ text: String) -> Bool { (try? parse(text)) == nil }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(
            #" {"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00","n":-12.5e1,"t":true,"f":false,"z":null,"a":[1,[]],"o":{}} "#
        )
        #expect(
            value
                == .object([
                    "s": .string("a\"b\\c/d\né😀"), "n": .number(-125), "t": .bool(true), "f": .bool(false), "z": .null,
                    "a": .array([.number(1), .array([])]), "o": .object([:]),
                ])
        )
    }

    @Test func crLfAndTabsAreWhitespace() throws {
        // RFC 7515's examples put CR LF between members.
        #expect(
            try parse("{\"iss\":\"joe\",\r\n \"exp\":1300819380}")
                == .object(["iss": .string("joe"), "exp": .number(1_300_819_380)])
        )
    }

    @Test func aMemberNameTwiceIsAnError() {
        #expect(throws: JSONError.self) { try parse(#"{"alg":"ES256","alg":"none"}"#) }
        #expect(throws: JSONError.self) { try parse(#"{"a":{"x":1,"x":1}}"#) }
        // Equal after unescaping is the same name.
        #expect(throws: JSONError.self) { try parse(#"{"alg":1,"\u0061lg":2}"#) }
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{a:1}", "{'a':1}", "[1 2]", "01", "-", "1.", ".5", "1e", "+1", "NaN",
        "Infinity", "1e999", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "{\"a\":1}x", "[] []", "\"a\u{1}b\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "[1,,2]",
    ])
    func refusesMalformedDocuments(_ text: String) {
        #expect(rejects(text), "\(text.debugDescription)")
    }

    @Test func refusesInvalidUTF8InStrings() {
        for bytes: [UInt8] in [
            [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xFF, 0x22], [0x22, 0xE2, 0x82, 0x22],
        ] {
            #expect((try? JSONParser().parse(bytes)) == nil, "\(bytes)")
        }
    }

    @Test func nestingIsBounded() throws {
        let ok = String(repeating: "[", count: 16) + String(repeating: "]", count: 16)
        #expect(try parse(ok) != .null)
        let deep = String(repeating: "[", count: 17) + String(repeating: "]", count: 17)
        #expect(throws: JSONError.self) { try parse(deep) }
        let deepObject = String(repeating: "{\"a\":", count: 17) + "1" + String(repeating: "}", count: 17)
        #expect(throws: JSONError.self) { try parse(deepObject) }
        // Ten thousand brackets fail fast, without recursing ten thousand deep.
        #expect(throws: JSONError.self) { try parse(String(repeating: "[", count: 10_000)) }
    }

    @Test func containersAreBounded() throws {
        let parser = JSONParser(maxDepth: 4, maxContainerCount: 3)
        #expect(try parser.parse(Array("[1,2,3]".utf8)) == .array([.number(1), .number(2), .number(3)]))
        #expect(throws: JSONError.self) { try parser.parse(Array("[1,2,3,4]".utf8)) }
        #expect(throws: JSONError.self) { try parser.parse(Array(#"{"a":1,"b":2,"c":3,"d":4}"#.utf8)) }
    }

    @Test func numbersFollowTheGrammar() throws {
        #expect(try parse("0") == .number(0))
        #expect(try parse("-0.5E-2") == .number(-0.005))
        #expect(try parse("1700000000.25") == .number(1_700_000_000.25))
        #expect(rejects("00"))
        #expect(rejects("1" + String(repeating: "0", count: 80)))  // longer than 64 characters
    }
}

/// Base64url as JOSE uses it: unpadded, canonical.
@Suite struct Base64URLTests {
    @Test(
        arguments: [
            ("", []), ("Zg", [0x66]), ("Zm8", [0x66, 0x6F]), ("Zm9v", [0x66, 0x6F, 0x6F]), ("-_8", [0xFB, 0xFF]),
        ] as [(String, [UInt8])]
    )
    func decodesAndEncodesRFC4648Vectors(_ text: String, _ bytes: [UInt8]) {
        #expect(JWTBase64URL.decode(Array(text.utf8)) == bytes)
        #expect(JWTBase64URL.encode(bytes) == text)
    }

    @Test(arguments: ["Zg==", "Zm8=", "Z", "Zm9vY", "Zm+v", "Zm/v", "Zm 9", "Zh", "Zm9", "Zm\n9v"])
    func refusesPaddingForeignLettersImpossibleLengthsAndNonCanonicalTails(_ text: String) {
        // "Zh" and "Zm9" carry non-zero unused bits: they would decode like "Zg" and "Zm8".
        #expect(JWTBase64URL.decode(Array(text.utf8)) == nil, "\(text)")
    }

    @Test func roundTripsEveryLength() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(JWTBase64URL.decode(Array(JWTBase64URL.encode(bytes).utf8)) == bytes)
        }
    }
}
