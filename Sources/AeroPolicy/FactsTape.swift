// FactsTape.swift — encodes a facts document into the byte tape from which C builds the
// read-only Lua tables (format documented in aero_sandbox.c). Encoding is pure Swift and
// cannot fail except on bounds; building runs in C under lua_pcall.
import AeroCore

struct FactsTape {
    /// JSON nesting deeper than this is refused (the encoder recurses, C stacks tables).
    static let depthMax = 256
    /// Strings, arrays and objects larger than this cannot be framed by a u32 length.
    static let lengthMax = Int(UInt32.max)

    enum EncodeError: Error, Equatable, Sendable {
        case tooDeep
        case tooLarge
    }

    private(set) var bytes: [UInt8] = []
    /// Objects and arrays encoded, and arrays alone (each becomes a proxy).
    private var containers = 0
    private var arrays = 0

    static func encode(_ facts: JSONValue) throws(EncodeError) -> [UInt8] {
        var tape = FactsTape()
        tape.bytes.reserveCapacity(1024)
        try tape.value(facts, depth: 0)
        let aliases = nodeIndices(facts)
        tape.bytes.append(UInt8(ascii: "N"))
        tape.u32(aliases.candidate)
        tape.u32(aliases.primary)
        // The header sizes the proxy maps, so that building never rehashes them.
        var header = FactsTape()
        header.bytes.append(UInt8(ascii: "H"))
        header.u32(tape.containers)
        header.u32(tape.arrays)
        return header.bytes + tape.bytes
    }

    /// 1-based indices in `nodes` of the node whose id is request.candidate and of the one
    /// whose id is cluster.primary; 0 when absent.
    static func nodeIndices(_ facts: JSONValue) -> (candidate: Int, primary: Int) {
        guard case .object(let root) = facts, case .array(let nodes)? = root["nodes"] else { return (0, 0) }
        func index(of id: JSONValue?) -> Int {
            guard case .string(let wanted)? = id else { return 0 }
            for (offset, node) in nodes.enumerated() {
                if case .object(let fields) = node, fields["id"] == .string(wanted) { return offset + 1 }
            }
            return 0
        }
        var candidate: JSONValue?
        var primary: JSONValue?
        if case .object(let request)? = root["request"] { candidate = request["candidate"] }
        if case .object(let cluster)? = root["cluster"] { primary = cluster["primary"] }
        return (index(of: candidate), index(of: primary))
    }

    private mutating func value(_ value: JSONValue, depth: Int) throws(EncodeError) {
        guard depth < Self.depthMax else { throw .tooDeep }
        switch value {
        case .null:
            preconditionFailure("null is skipped by the container that holds it")
        case .bool(let flag):
            bytes.append(UInt8(ascii: flag ? "T" : "F"))
        case .integer(let number):
            bytes.append(UInt8(ascii: "i"))
            u64(UInt64(bitPattern: number))
        case .number(let number):
            bytes.append(UInt8(ascii: "d"))
            u64(number.bitPattern)
        case .string(let text):
            try string(text)
        case .array(let elements):
            guard elements.count <= Self.lengthMax else { throw .tooLarge }
            containers += 1
            arrays += 1
            bytes.append(UInt8(ascii: "A"))
            u32(elements.count)
            let body = try openBody()
            for (offset, element) in elements.enumerated() where !element.isNullValue {
                try self.value(element, depth: depth + 1)
                bytes.append(UInt8(ascii: "I"))
                u32(offset + 1)
            }
            bytes.append(UInt8(ascii: "e"))
            u32(elements.count)
            try closeBody(body)
        case .object(let fields):
            guard fields.count <= Self.lengthMax else { throw .tooLarge }
            containers += 1
            bytes.append(UInt8(ascii: "O"))
            // Sorted keys: Swift's dictionary order differs between two equal documents, and
            // the insertion order decides the Lua tables' memory use, which is reported.
            var keys: [String] = []
            keys.reserveCapacity(fields.count)
            for (key, field) in fields where !field.isNullValue { keys.append(key) }
            keys.sort(by: JSONValue.utf8Precedes)
            u32(keys.count)
            let body = try openBody()
            for key in keys {
                guard let field = fields[key] else { preconditionFailure("key \(key) vanished") }
                try string(key)
                try self.value(field, depth: depth + 1)
                bytes.append(UInt8(ascii: "S"))
            }
            bytes.append(UInt8(ascii: "E"))
            try closeBody(body)
        }
    }

    /// Reserves a container's u32 body length (C skips unread containers by it); returns
    /// where the body starts.
    private mutating func openBody() throws(EncodeError) -> Int {
        u32(0)
        return bytes.count
    }

    /// Writes the body length: the bytes from the body's start through its closing op.
    private mutating func closeBody(_ start: Int) throws(EncodeError) {
        let length = bytes.count - start
        guard length <= Self.lengthMax else { throw .tooLarge }
        withUnsafeBytes(of: UInt32(length).littleEndian) { raw in
            for index in 0..<4 { bytes[start - 4 + index] = raw[index] }
        }
    }

    private mutating func string(_ text: String) throws(EncodeError) {
        let utf8 = text.utf8
        guard utf8.count <= Self.lengthMax else { throw .tooLarge }
        bytes.append(UInt8(ascii: "s"))
        u32(utf8.count)
        bytes.append(contentsOf: utf8)
    }

    private mutating func u32(_ value: Int) {
        let narrow = UInt32(value)
        withUnsafeBytes(of: narrow.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

private extension JSONValue {
    /// A case check, without comparing whole values.
    var isNullValue: Bool {
        if case .null = self { return true }
        return false
    }
}
