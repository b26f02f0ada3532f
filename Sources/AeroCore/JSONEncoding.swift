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
        var out = ""
        writeCanonical(into: &out)
        return out
    }

    /// Sorted keys, two-space indentation, for people. Ends without a newline.
    public var prettyJSON: String {
        var out = ""
        writePretty(into: &out, indent: 0)
        return out
    }

    func writeCanonical(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .integer(let value): out += String(value)
        case .number(let value): out += Self.numberText(value)
        case .string(let value): Self.writeString(value, into: &out)
        case .array(let elements):
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { out += "," }
                element.writeCanonical(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, key) in Self.sortedKeys(members).enumerated() {
                if index > 0 { out += "," }
                Self.writeString(key, into: &out)
                out += ":"
                members[key]!.writeCanonical(into: &out)
            }
            out += "}"
        }
    }

    func writePretty(into out: inout String, indent: Int) {
        switch self {
        case .array(let elements) where !elements.isEmpty:
            out += "[\n"
            for (index, element) in elements.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                element.writePretty(into: &out, indent: indent + 2)
                out += index + 1 < elements.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        case .object(let members) where !members.isEmpty:
            out += "{\n"
            let keys = Self.sortedKeys(members)
            for (index, key) in keys.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                Self.writeString(key, into: &out)
                out += ": "
                members[key]!.writePretty(into: &out, indent: indent + 2)
                out += index + 1 < keys.count ? ",\n" : "\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        default:
            writeCanonical(into: &out)
        }
    }

    /// Keys in UTF-8 byte order, which does not depend on locale or Unicode normalisation.
    static func sortedKeys(_ members: [String: JSONValue]) -> [String] {
        members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func numberText(_ value: Double) -> String {
        precondition(value.isFinite, "a non-finite number cannot be written as JSON")
        return value.description
    }

    static func writeString(_ value: String, into out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\u00" + (hex.count == 1 ? "0" + hex : hex)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
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
