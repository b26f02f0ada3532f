// JSONValue.swift — a JSON document as a value.
//
// Integers and non-integers are kept apart (LSNs and epochs are integers; a fact written
// as 1.5 where an integer is required is an error, not a rounding). Objects are
// dictionaries: duplicate keys are rejected by the parser, and canonical output sorts keys.

/// A JSON value.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}
