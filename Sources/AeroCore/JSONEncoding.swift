// JSONEncoding.swift — canonical and pretty JSON text for `JSONValue`.
//
// The canonical form is what digests are computed over, so it is fixed here once:
//   - object keys sorted by their UTF-8 bytes (= Unicode code point order), no whitespace;
//   - strings escape only '"', '\' and the control characters U+0000...U+001F (as \b \f \n
//     \r \t where those exist, else \u00XX with upper-case hex); everything else is raw UTF-8;
//   - integers in plain decimal; non-integers in Swift's shortest round-trip form (e.g. 1.5,
//     1e-07, 1e+20, 5.0), which is valid JSON and parses back as a non-integer, so the
//     integer/number distinction survives a round trip;
//   - a non-finite number cannot be written as JSON: encoding one is a programmer error (the
//     parser never produces one).

extension JSONValue {
    /// Sorted keys, no whitespace, minimal escapes, deterministic numbers.
    public var canonicalJSON: String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        writeCanonical(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Sorted keys, two-space indentation, for people. Ends without a newline.
    public var prettyJSON: String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        writePretty(into: &out, indent: 0)
        return String(decoding: out, as: UTF8.self)
    }

    // Output is built as UTF-8 bytes: appending to a [UInt8] is several times faster than
    // appending scalars to a String, and facts documents of 1,000 nodes are digested whole.

    func writeCanonical(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: Self.nullBytes)
        case .bool(let value): out.append(contentsOf: value ? Self.trueBytes : Self.falseBytes)
        case .integer(let value): Self.writeInteger(value, into: &out)
        case .number(let value): out.append(contentsOf: Self.numberText(value).utf8)
        case .string(let value): Self.writeString(value, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                element.writeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, member) in Self.sortedMembers(members).enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                member.value.writeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    func writePretty(into out: inout [UInt8], indent: Int) {
        switch self {
        case .array(let elements) where !elements.isEmpty:
            out.append(contentsOf: "[\n".utf8)
            for (index, element) in elements.enumerated() {
                out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent + 2))
                element.writePretty(into: &out, indent: indent + 2)
                out.append(contentsOf: (index + 1 < elements.count ? ",\n" : "\n").utf8)
            }
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
            out.append(UInt8(ascii: "]"))
        case .object(let members) where !members.isEmpty:
            out.append(contentsOf: "{\n".utf8)
            let sorted = Self.sortedMembers(members)
            for (index, member) in sorted.enumerated() {
                out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent + 2))
                Self.writeString(member.key, into: &out)
                out.append(contentsOf: ": ".utf8)
                member.value.writePretty(into: &out, indent: indent + 2)
                out.append(contentsOf: (index + 1 < sorted.count ? ",\n" : "\n").utf8)
            }
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
            out.append(UInt8(ascii: "}"))
        default:
            writeCanonical(into: &out)
        }
    }

    static let nullBytes = Array("null".utf8)
    static let trueBytes = Array("true".utf8)
    static let falseBytes = Array("false".utf8)
    static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// Members with keys in UTF-8 byte order, which depends on neither locale nor Unicode
    /// normalisation.
    static func sortedMembers(_ members: [String: JSONValue]) -> [(key: String, value: JSONValue)] {
        members.sorted { utf8Precedes($0.key, $1.key) }
    }

    /// True when `a` sorts before `b` by UTF-8 bytes (= Unicode code point order).
    public static func utf8Precedes(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { left in b.withUTF8 { right in left.lexicographicallyPrecedes(right) } }
    }

    static func numberText(_ value: Double) -> String {
        precondition(value.isFinite, "a non-finite number cannot be written as JSON")
        return value.description
    }

    static func writeInteger(_ value: Int64, into out: inout [UInt8]) {
        out.append(contentsOf: String(value).utf8)  // at most 20 bytes: a small string, no allocation
    }

    static func writeString(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\\"))
            case 0x08: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "f"))
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0x00...0x1F:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            default:
                // Every other byte, including each byte of a multi-byte scalar, is copied raw.
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// Small typed accessors, so that readers of documents do not repeat the same switches.
extension JSONValue {
    /// The member `key` of an object; nil for a missing key or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var isNull: Bool { self == .null }
    public var boolValue: Bool? { if case .bool(let value) = self { return value }; return nil }
    public var integerValue: Int64? { if case .integer(let value) = self { return value }; return nil }
    public var stringValue: String? { if case .string(let value) = self { return value }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let value) = self { return value }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let value) = self { return value }; return nil }

    /// The JSON type name, for error messages ("expected an integer, found a string").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a non-integer number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
