import Testing
@testable import AeroCore

@Suite struct JSONEncodingTests {
    @Test func canonicalFormSortsKeysAndHasNoWhitespace() throws {
        let value = try JSONParser.parse(#"{ "b": [1, 2.5, "x"], "a": {"d": null, "c": true}, "B": false }"#)
        #expect(value.canonicalJSON == #"{"B":false,"a":{"c":true,"d":null},"b":[1,2.5,"x"]}"#)
    }

    @Test func keysSortByCodePointNotLocale() {
        let value = JSONValue.object(["é": .integer(1), "z": .integer(2), "Z": .integer(3), "😀": .integer(4)])
        #expect(value.canonicalJSON == #"{"Z":3,"z":2,"é":1,"😀":4}"#)
    }

    @Test func escapesOnlyWhatJSONRequires() {
        let value = JSONValue.string("q\" b\\ \u{08}\u{0C}\n\r\t \u{01}\u{1F} / é \u{7F}")
        #expect(value.canonicalJSON == "\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001F / é \u{7F}\"")
    }

    @Test func numbersAreDeterministicAndKeepTheirKind() throws {
        let cases: [(JSONValue, String)] = [
            (.integer(0), "0"), (.integer(-42), "-42"), (.integer(Int64.max), "9223372036854775807"),
            (.number(1.5), "1.5"), (.number(5), "5.0"), (.number(1e-7), "1e-07"), (.number(1e20), "1e+20"),
            (.number(-0.25), "-0.25"),
        ]
        for (value, text) in cases {
            #expect(value.canonicalJSON == text)
            #expect(try JSONParser.parse(text) == value, "\(text) must parse back to the same kind")
        }
    }

    @Test func canonicalTextRoundTrips() throws {
        let text = #"{"a":[1,-2,0.5,true,null,"é\n😀"],"b":{"c":{"d":[]}},"e":{}}"#
        let value = try JSONParser.parse(text)
        #expect(value.canonicalJSON == text)
        #expect(try JSONParser.parse(value.prettyJSON) == value)
    }

    @Test func prettyFormIndentsByTwo() {
        let value = JSONValue.object(["b": .array([.integer(1), .object([:])]), "a": .array([])])
        #expect(value.prettyJSON == """
            {
              "a": [],
              "b": [
                1,
                {}
              ]
            }
            """)
    }

    @Test func accessorsReadTypedValues() {
        let value = JSONValue.object(["n": .integer(3), "s": .string("x"), "a": .array([.null]), "b": .bool(true)])
        #expect(value["n"]?.integerValue == 3)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["a"]?.arrayValue == [.null])
        #expect(value["b"]?.boolValue == true)
        #expect(value["missing"] == nil)
        #expect(value["s"]?.integerValue == nil)
        #expect(JSONValue.integer(1)["n"] == nil)
        #expect(value.objectValue?.count == 4)
        #expect(JSONValue.null.isNull)
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(Digest.sha256Hex("abc".utf8) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.sha256Hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
