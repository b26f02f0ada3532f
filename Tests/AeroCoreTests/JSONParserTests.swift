import Testing
@testable import AeroCore

@Suite struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

    func syntaxError(_ text: String) -> JSONSyntaxError? {
        do {
            _ = try JSONParser.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesEveryKindOfValue() throws {
        let value = try parse(#" { "a" : [1, -2, 1.5, -0.25e2, true, false, null, "x"], "b": {} , "c": [] } "#)
        #expect(value == .object([
            "a": .array([.integer(1), .integer(-2), .number(1.5), .number(-25), .bool(true), .bool(false), .null, .string("x")]),
            "b": .object([:]),
            "c": .array([]),
        ]))
        #expect(try parse("7") == .integer(7))
        #expect(try parse("\"\"") == .string(""))
    }

    @Test func keepsIntegersAndNumbersApart() throws {
        #expect(try parse("1200") == .integer(1200))
        #expect(try parse("1200.0") == .number(1200))
        #expect(try parse("12e2") == .number(1200))
        #expect(try parse("-0") == .integer(0))
        #expect(try parse("9223372036854775807") == .integer(Int64.max))
        #expect(try parse("-9223372036854775808") == .integer(Int64.min))
        // Does not fit in Int64: a number, never a wrapped or clamped integer.
        #expect(try parse("9223372036854775808") == .number(9223372036854775808))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""\u00e9\u20AC""#) == .string("é€"))
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse("\"raw é 😀\"") == .string("raw é 😀"))
    }

    @Test(arguments: [
        ("", "expected a JSON value, found end of input"),
        ("{\"a\":1,}", "expected a string key"),
        ("[1,]", "expected a JSON value"),
        ("01", "leading zeros"),
        ("+1", "expected a JSON value"),
        ("1.", "digit after '.'"),
        ("1e", "digit in its exponent"),
        ("-", "digit after '-'"),
        ("NaN", "expected a JSON value"),
        ("1e999", "out of range"),
        ("tru", "invalid literal"),
        ("nul", "invalid literal"),
        ("\"abc", "unterminated string"),
        ("\"a\u{01}b\"", "control character"),
        ("\"\\x\"", "invalid escape"),
        ("\"\\u12\"", "four hex digits"),
        ("\"\\ud800\"", "not followed by a low surrogate"),
        ("\"\\udc00\"", "lone low surrogate"),
        ("{\"a\":1 \"b\":2}", "expected ',' or '}'"),
        ("[1 2]", "expected ',' or ']'"),
        ("{\"a\" 1}", "expected ':'"),
        ("{1:2}", "expected a string key"),
        ("1 2", "after the JSON value"),
        ("// comment\n1", "expected a JSON value"),
        ("\u{FEFF}1", "expected a JSON value, found byte 0xEF"),
    ])
    func rejectsInvalidText(text: String, expected: String) {
        let error = syntaxError(text)
        #expect(error != nil, "accepted \(text.debugDescription)")
        #expect(error?.message.contains(expected) == true, "\(String(describing: error)) should mention \(expected)")
    }

    @Test func rejectsDuplicateKeysAtTheSecondKey() throws {
        let error = try #require(syntaxError("{\n  \"a\": 1,\n  \"a\": 2\n}"))
        #expect(error.message == "duplicate object key \"a\"")
        #expect(error.line == 3)
        #expect(error.column == 3)
        #expect(syntaxError(#"{"x": {"a": 1, "b": {"a": 2}}}"#) == nil, "the same key in different objects is fine")
    }

    @Test func reportsLineAndColumnInScalars() throws {
        let error = try #require(syntaxError("{\n  \"é😀\": tru\n}"))
        #expect(error.line == 2)
        #expect(error.column == 9)  // after two spaces, quote, é, 😀, quote, colon, space
        #expect(error.description == "line 2, column 9: invalid literal, expected 'true'")
    }

    @Test func boundsNesting() {
        let deep = String(repeating: "[", count: JSONParser.nestingDepthMax + 1) + String(repeating: "]", count: JSONParser.nestingDepthMax + 1)
        #expect(syntaxError(deep)?.message.contains("nesting deeper") == true)
        let allowed = String(repeating: "[", count: JSONParser.nestingDepthMax) + String(repeating: "]", count: JSONParser.nestingDepthMax)
        #expect(syntaxError(allowed) == nil)
    }

    @Test func rejectsNulOutsideStrings() {
        #expect(syntaxError("1\u{0}") != nil)
        #expect(syntaxError("\u{0}") != nil)
    }
}
