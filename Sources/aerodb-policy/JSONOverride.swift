// JSONOverride.swift — the inline edits a policy test case applies to its facts fixture.
//
// A test case names one fixture and a list of edits, so one captured facts file serves many
// cases. An edit is `{"path": P, "value": V}` (set) or `{"path": P, "remove": true}`.
// P is a small JSONPath subset, always absolute:
//
//     $                      the whole document (set only)
//     .name                  an object member; name is letters, digits, '_' or '-'
//     ["any key"]            an object member with any other characters
//     [3]                    an array element, from 0
//
// Semantics, chosen so that a typo fails loudly instead of testing nothing:
//   1. Setting an existing member or element replaces it; setting a missing object member
//      adds it; setting index == count appends. Any other index is an error.
//   2. Descending through a missing member or a null creates an empty object, so
//      `$.cluster.labels["change-freeze"]` works on a fixture without cluster labels.
//   3. Descending into a string, number or boolean, or indexing a non-array, is an error.
//   4. Removing requires the member or element to exist; removing from an array shifts
//      the later elements down.
import AeroCore

/// One step of an override path.
enum JSONPathStep: Equatable, Sendable, CustomStringConvertible {
    case member(String)
    case index(Int)

    var description: String {
        switch self {
        case .member(let name):
            let plain = !name.isEmpty && name.unicodeScalars.allSatisfy(JSONPath.isPlainNameScalar)
            return plain ? ".\(name)" : "[\"\(name)\"]"
        case .index(let index): return "[\(index)]"
        }
    }
}

/// A parsed override path such as `$.nodes[1].labels["zone"]`.
struct JSONPath: Equatable, Sendable, CustomStringConvertible {
    /// Longest path text accepted: a bound, and no fixture is that deep.
    static let textBytesMax = 1_024

    let steps: [JSONPathStep]
    var description: String { "$" + steps.map(\.description).joined() }

    static func isPlainNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_", "-": return true
        default: return false
        }
    }

    /// Parses `text`; the error says at which character it went wrong.
    init(parsing text: String) throws(OverrideError) {
        guard text.utf8.count <= Self.textBytesMax else {
            throw OverrideError(path: String(text.prefix(40)) + "…", message: "path longer than \(Self.textBytesMax) bytes")
        }
        let scalars = Array(text.unicodeScalars)
        func fail(_ message: String, at position: Int) -> OverrideError {
            OverrideError(path: text, message: "\(message) at character \(position + 1)")
        }
        guard scalars.first == "$" else { throw fail("a path starts with '$'", at: 0) }
        var steps: [JSONPathStep] = []
        var position = 1
        while position < scalars.count {
            switch scalars[position] {
            case ".":
                let start = position + 1
                var end = start
                while end < scalars.count, Self.isPlainNameScalar(scalars[end]) { end += 1 }
                guard end > start else { throw fail("expected a member name after '.'", at: position) }
                steps.append(.member(String(String.UnicodeScalarView(scalars[start..<end]))))
                position = end
            case "[":
                let start = position + 1
                guard start < scalars.count else { throw fail("unterminated '['", at: position) }
                if scalars[start] == "\"" {
                    var end = start + 1
                    var name = String.UnicodeScalarView()
                    while end < scalars.count, scalars[end] != "\"" {
                        if scalars[end] == "\\", end + 1 < scalars.count { end += 1 }
                        name.append(scalars[end])
                        end += 1
                    }
                    guard end + 1 < scalars.count, scalars[end] == "\"", scalars[end + 1] == "]" else {
                        throw fail("expected '\"]' to close the quoted member", at: start)
                    }
                    steps.append(.member(String(name)))
                    position = end + 2
                } else {
                    var end = start
                    while end < scalars.count, ("0"..."9").contains(scalars[end]) { end += 1 }
                    guard end > start, end < scalars.count, scalars[end] == "]",
                          let index = Int(String(String.UnicodeScalarView(scalars[start..<end])))
                    else { throw fail("expected an array index or a quoted member inside '[ ]'", at: start) }
                    steps.append(.index(index))
                    position = end + 1
                }
            default:
                throw fail("expected '.' or '['", at: position)
            }
        }
        self.steps = steps
    }
}

/// An override that cannot be applied, naming the path.
struct OverrideError: Error, Equatable, CustomStringConvertible {
    let path: String
    let message: String
    var description: String { "override \(path): \(message)" }
}

/// One edit of a fixture.
struct JSONOverride: Equatable, Sendable {
    enum Operation: Equatable, Sendable {
        case set(JSONValue)
        case remove
    }
    let path: JSONPath
    let operation: Operation

    /// Applies the edit to `document`.
    func apply(to document: inout JSONValue) throws(OverrideError) {
        switch operation {
        case .set(let value):
            try Self.set(value, at: path.steps[...], in: &document, path: path)
        case .remove:
            guard !path.steps.isEmpty else {
                throw OverrideError(path: path.description, message: "the whole document cannot be removed")
            }
            try Self.remove(at: path.steps[...], in: &document, path: path)
        }
    }

    private static func set(
        _ value: JSONValue, at steps: ArraySlice<JSONPathStep>, in node: inout JSONValue, path: JSONPath
    ) throws(OverrideError) {
        guard let step = steps.first else {
            node = value
            return
        }
        let rest = steps.dropFirst()
        switch (step, node) {
        case (.member(let name), .object(var members)):
            var child = members[name] ?? .null
            if case .null = child, !rest.isEmpty, case .member = rest.first! { child = .object([:]) }
            try set(value, at: rest, in: &child, path: path)
            members[name] = child
            node = .object(members)
        case (.member, .null):
            node = .object([:])
            try set(value, at: steps, in: &node, path: path)
        case (.index(let index), .array(var elements)):
            guard index <= elements.count else {
                throw OverrideError(path: path.description,
                                    message: "index \(index) is beyond the \(elements.count) element(s) of \(prefix(path, before: steps))")
            }
            if index == elements.count {
                guard rest.isEmpty else {
                    throw OverrideError(path: path.description, message: "index \(index) does not exist yet; only the last step may append")
                }
                elements.append(value)
            } else {
                try set(value, at: rest, in: &elements[index], path: path)
            }
            node = .array(elements)
        default:
            throw OverrideError(path: path.description,
                                message: "\(prefix(path, before: steps)) is \(kind(of: node)), cannot apply \(step)")
        }
    }

    private static func remove(
        at steps: ArraySlice<JSONPathStep>, in node: inout JSONValue, path: JSONPath
    ) throws(OverrideError) {
        let step = steps.first!
        let rest = steps.dropFirst()
        switch (step, node) {
        case (.member(let name), .object(var members)):
            guard var child = members[name] else {
                throw OverrideError(path: path.description, message: "member '\(name)' does not exist")
            }
            if rest.isEmpty {
                members[name] = nil
            } else {
                try remove(at: rest, in: &child, path: path)
                members[name] = child
            }
            node = .object(members)
        case (.index(let index), .array(var elements)):
            guard index < elements.count else {
                throw OverrideError(path: path.description, message: "index \(index) does not exist (\(elements.count) element(s))")
            }
            if rest.isEmpty {
                elements.remove(at: index)
            } else {
                try remove(at: rest, in: &elements[index], path: path)
            }
            node = .array(elements)
        default:
            throw OverrideError(path: path.description,
                                message: "\(prefix(path, before: steps)) is \(kind(of: node)), cannot apply \(step)")
        }
    }

    /// The path text up to (not including) `remaining`.
    private static func prefix(_ path: JSONPath, before remaining: ArraySlice<JSONPathStep>) -> String {
        JSONPath(steps: Array(path.steps.prefix(path.steps.count - remaining.count))).description
    }

    private static func kind(of value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

extension JSONPath {
    fileprivate init(steps: [JSONPathStep]) { self.steps = steps }
}
