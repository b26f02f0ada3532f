// JSONParser.swift — a strict RFC 8259 parser producing `JSONValue`.
//
// Why our own: facts documents decide promotions, so the reading of a document must be exact
// and the same everywhere. The parser:
//   1. accepts exactly RFC 8259 text: one value, surrounded by optional whitespace
//      (space, tab, LF, CR); no comments, no trailing commas, no NaN/Infinity, no leading
//      zeros, no leading '+', no byte-order mark;
//   2. keeps integers and non-integers apart: a number without fraction or exponent that fits
//      in Int64 is `.integer`; every other number is `.number` (a finite Double). A number
//      whose magnitude overflows Double is an error, never infinity;
//   3. rejects duplicate object keys (keys are compared as Swift strings, so two keys that
//      are canonically equivalent Unicode count as duplicates);
//   4. rejects control characters inside strings and lone UTF-16 surrogates in \u escapes;
//   5. bounds nesting at `nestingDepthMax`, so hostile input cannot exhaust the stack;
//   6. reports every error with the 1-based line and column (in Unicode scalars) where it was
//      found.

/// A JSON text that is not valid RFC 8259, with where the problem was found.
public struct JSONSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    /// 1-based line number.
    public let line: Int
    /// 1-based column, counted in Unicode scalars.
    public let column: Int
    public let message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column): \(message)" }
}

/// Strict RFC 8259 parsing. See the notes at the top of this file for what is accepted.
public enum JSONParser {
    /// Arrays and objects nested deeper than this are refused. Facts documents nest to depth 4;
    /// the bound only exists so that hostile input cannot exhaust the stack.
    public static let nestingDepthMax = 256

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        var bytes = Array(text.utf8)
        bytes.append(0)  // sentinel: never a valid byte of JSON text, simplifies look-ahead
        var reader = Reader(bytes: bytes)
        reader.skipWhitespace()
        let value = try reader.parseValue(depth: 0)
        reader.skipWhitespace()
        if !reader.atEnd {
            throw reader.error("unexpected \(reader.describeCurrent()) after the JSON value")
        }
        return value
    }
}

/// The parser's cursor. `bytes` ends with a NUL sentinel that is not part of the text.
private struct Reader {
    let bytes: [UInt8]
    var offset = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count - 1 }
    var current: UInt8 { bytes[offset] }

    func error(_ message: String, at errorOffset: Int? = nil) -> JSONSyntaxError {
        let end = min(errorOffset ?? offset, bytes.count - 1)
        var line = 1
        var column = 1
        var index = 0
        while index < end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // count scalars: skip UTF-8 continuation bytes
                column += 1
            }
            index += 1
        }
        return JSONSyntaxError(line: line, column: column, message: message)
    }

    func describeCurrent() -> String {
        if atEnd { return "end of input" }
        let byte = current
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    mutating func skipWhitespace() {
        while true {
            switch current {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                offset += 1
            default:
                return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        if atEnd { throw error("expected a JSON value, found end of input") }
        switch current {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("expected a JSON value, found \(describeCurrent())")
        }
    }

    mutating func expectLiteral(_ literal: String) throws(JSONSyntaxError) {
        let start = offset
        for byte in literal.utf8 {
            if current != byte { throw error("invalid literal, expected '\(literal)'", at: start) }
            offset += 1
        }
    }

    mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        if depth > JSONParser.nestingDepthMax {
            throw error("nesting deeper than \(JSONParser.nestingDepthMax) levels")
        }
        offset += 1  // '{'
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            offset += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else {
                throw error("expected a string key, found \(describeCurrent())")
            }
            let keyOffset = offset
            let key = try parseString()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else {
                throw error("expected ':' after an object key, found \(describeCurrent())")
            }
            offset += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            if members.updateValue(value, forKey: key) != nil {
                throw error("duplicate object key \"\(key)\"", at: keyOffset)
            }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                offset += 1
            case UInt8(ascii: "}"):
                offset += 1
                return .object(members)
            default:
                throw error("expected ',' or '}' in an object, found \(describeCurrent())")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        if depth > JSONParser.nestingDepthMax {
            throw error("nesting deeper than \(JSONParser.nestingDepthMax) levels")
        }
        offset += 1  // '['
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            offset += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                offset += 1
            case UInt8(ascii: "]"):
                offset += 1
                return .array(elements)
            default:
                throw error("expected ',' or ']' in an array, found \(describeCurrent())")
            }
        }
    }

    mutating func parseString() throws(JSONSyntaxError) -> String {
        let start = offset
        offset += 1  // opening quote
        // Fast path: no escapes, so the string is a slice of the (valid UTF-8) input.
        var scan = offset
        while true {
            let byte = bytes[scan]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: bytes[offset..<scan], as: UTF8.self)
                offset = scan + 1
                return text
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            scan += 1
        }
        // Slow path: decode escapes into a byte buffer, then the buffer into a String once.
        var utf8: [UInt8] = []
        utf8.reserveCapacity(scan - offset + 16)
        while true {
            let byte = current
            if byte == UInt8(ascii: "\"") {
                offset += 1
                return String(decoding: utf8, as: UTF8.self)
            }
            if atEnd { throw error("unterminated string", at: start) }
            if byte < 0x20 {
                throw error("control character 0x\(String(byte, radix: 16, uppercase: true)) in a string; escape it")
            }
            if byte == UInt8(ascii: "\\") {
                utf8.append(contentsOf: String(Character(try parseEscape())).utf8)
                continue
            }
            utf8.append(byte)
            offset += 1
        }
    }

    mutating func parseEscape() throws(JSONSyntaxError) -> Unicode.Scalar {
        let start = offset
        offset += 1  // backslash
        let byte = current
        offset += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try parseHex4(escapeStart: start)
            if (0xDC00...0xDFFF).contains(high) {
                throw error("lone low surrogate \\u\(hex4(high)) in a string", at: start)
            }
            if (0xD800...0xDBFF).contains(high) {
                guard current == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                    throw error("high surrogate \\u\(hex4(high)) not followed by a low surrogate", at: start)
                }
                offset += 2
                let low = try parseHex4(escapeStart: start)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("high surrogate \\u\(hex4(high)) not followed by a low surrogate", at: start)
                }
                let value = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                return Unicode.Scalar(value)!  // in 0x10000...0x10FFFF by construction
            }
            return Unicode.Scalar(high)!  // not a surrogate, so a valid scalar
        default:
            offset = start
            throw error("invalid escape sequence in a string")
        }
    }

    mutating func parseHex4(escapeStart: Int) throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = current
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("\\u escape needs four hex digits", at: escapeStart)
            }
            value = value << 4 | digit
            offset += 1
        }
        return value
    }

    func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = offset
        var isInteger = true
        if current == UInt8(ascii: "-") { offset += 1 }
        if current == UInt8(ascii: "0") {
            offset += 1
            if isDigit(current) { throw error("leading zeros are not allowed in numbers", at: start) }
        } else if isDigit(current) {
            while isDigit(current) { offset += 1 }
        } else {
            throw error("a number needs a digit after '-'", at: start)
        }
        if current == UInt8(ascii: ".") {
            isInteger = false
            offset += 1
            guard isDigit(current) else { throw error("a number needs a digit after '.'") }
            while isDigit(current) { offset += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            offset += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
            guard isDigit(current) else { throw error("a number needs a digit in its exponent") }
            while isDigit(current) { offset += 1 }
        }
        if isInteger, let integer = integerValue(from: start, to: offset) { return .integer(integer) }
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        guard let number = Double(text), number.isFinite else {
            throw error("number \(text) is out of range", at: start)
        }
        return .number(number)
    }

    /// The integer spelled by bytes[start..<end] (an optional '-' then digits), or nil when it
    /// does not fit in Int64.
    func integerValue(from start: Int, to end: Int) -> Int64? {
        let negative = bytes[start] == UInt8(ascii: "-")
        var magnitude: UInt64 = 0
        for index in (negative ? start + 1 : start)..<end {
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            magnitude = sum
        }
        if negative {
            if magnitude <= UInt64(Int64.max) { return -Int64(magnitude) }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
