// JSONSetting.swift — one-line edits of a JSON document for table-driven tests.
import AeroCore

/// `value` with the member at a dotted path ("nodes.1.epoch") replaced, or removed when `new`
/// is nil. Numeric components index arrays.
public func setting(_ value: JSONValue, _ path: String, _ new: JSONValue?) -> JSONValue {
    func go(_ value: JSONValue, _ keys: ArraySlice<Substring>) -> JSONValue? {
        guard let key = keys.first else { return new }
        switch value {
        case .object(var members):
            members[String(key)] = go(members[String(key)] ?? .null, keys.dropFirst())
            return .object(members)
        case .array(var elements):
            let index = Int(key)!
            if let replaced = go(elements[index], keys.dropFirst()) { elements[index] = replaced } else { elements.remove(at: index) }
            return .array(elements)
        default:
            preconditionFailure("path \(path) runs through a scalar")
        }
    }
    return go(value, path.split(separator: ".")[...])!
}
