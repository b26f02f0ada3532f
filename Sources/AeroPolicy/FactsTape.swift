// FactsTape.swift — encodes a facts document into the byte tape from which C builds the
// read-only Lua tables (format documented in aero_sandbox_tape.c). Encoding is pure Swift and
// cannot fail except on bounds; building runs in C under lua_pcall.
import AeroCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct FactsTape {
    /// JSON nesting deeper than this is refused (the encoder recurses, C stacks tables).
    static let depthMax = 256
    /// Strings, arrays and objects larger than this cannot be framed by a u32 length.
    static let lengthMax = Int(UInt32.max)
    /// First capacity of the buffer (a 5-node document takes about 2 KiB).
    static let initialCapacityBytes = 4096

    enum EncodeError: Error, Equatable, Sendable {
        case tooDeep
        case tooLarge
    }

    // The tape is written into a buffer this struct owns (grown by doubling; plain stores
    // instead of Array appends, which were most of the encoding's instructions), copied out
    // once at the end and freed by `encode`.
    private var base: UnsafeMutablePointer<UInt8>
    private var count = 0
    private var capacity: Int
    /// Objects and arrays encoded, and arrays alone (each becomes a proxy).
    private var containers = 0
    private var arrays = 0

    private init() {
        capacity = Self.initialCapacityBytes
        base = .allocate(capacity: capacity)
    }

    static func encode(_ facts: JSONValue) throws(EncodeError) -> [UInt8] {
        var tape = FactsTape()
        defer { tape.base.deallocate() }
        // The header sizes the proxy maps, so that building never rehashes them; its counts
        // are written once the root has been encoded.
        tape.byte(UInt8(ascii: "H"))
        tape.u32(0)
        tape.u32(0)
        try tape.value(facts, depth: 0)
        let aliases = nodeIndices(facts)
        tape.byte(UInt8(ascii: "N"))
        tape.u32(aliases.candidate)
        tape.u32(aliases.primary)
        tape.patchU32(at: 1, tape.containers)
        tape.patchU32(at: 5, tape.arrays)
        return Array(UnsafeBufferPointer(start: tape.base, count: tape.count))
    }

    /// The key's first 8 UTF-8 bytes, big-endian, zero-padded: comparing two prefixes orders
    /// the keys as their bytes do unless the prefixes are equal.
    static func keyPrefix(_ key: String) -> UInt64 {
        let fast = key.utf8.withContiguousStorageIfAvailable { bytes -> UInt64 in
            var prefix: UInt64 = 0
            for index in 0..<min(8, bytes.count) { prefix |= UInt64(bytes[index]) << UInt64(56 - 8 * index) }
            return prefix
        }
        if let fast { return fast }
        var prefix: UInt64 = 0
        for (index, byte) in key.utf8.prefix(8).enumerated() { prefix |= UInt64(byte) << UInt64(56 - 8 * index) }
        return prefix
    }

    /// UTF-8 byte order (as `JSONValue.utf8Precedes`), comparing the strings' bytes in place.
    static func keyPrecedes(_ a: String, _ b: String) -> Bool {
        let fast = a.utf8.withContiguousStorageIfAvailable { left in
            b.utf8.withContiguousStorageIfAvailable { right -> Bool in
                let shorter = min(left.count, right.count)
                if shorter > 0, let l = left.baseAddress, let r = right.baseAddress {
                    let order = memcmp(l, r, shorter)
                    if order != 0 { return order < 0 }
                }
                return left.count < right.count
            }
        }
        if let fast, let result = fast { return result }
        return JSONValue.utf8Precedes(a, b)
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
            byte(UInt8(ascii: flag ? "T" : "F"))
        case .integer(let number):
            byte(UInt8(ascii: "i"))
            u64(UInt64(bitPattern: number))
        case .number(let number):
            byte(UInt8(ascii: "d"))
            u64(number.bitPattern)
        case .string(let text):
            try string(text)
        case .array(let elements):
            guard elements.count <= Self.lengthMax else { throw .tooLarge }
            containers += 1
            arrays += 1
            byte(UInt8(ascii: "A"))
            u32(elements.count)
            let body = try openBody()
            for (offset, element) in elements.enumerated() where !element.isNullValue {
                try self.value(element, depth: depth + 1)
                byte(UInt8(ascii: "I"))
                u32(offset + 1)
            }
            byte(UInt8(ascii: "e"))
            u32(elements.count)
            try closeBody(body)
        case .object(let fields):
            guard fields.count <= Self.lengthMax else { throw .tooLarge }
            containers += 1
            byte(UInt8(ascii: "O"))
            // Sorted keys: Swift's dictionary order differs between two equal documents, and
            // the insertion order decides the Lua tables' memory use, which is reported.
            // Compared by their first 8 bytes as an integer, then (on a tie) byte by byte.
            var members: [(prefix: UInt64, key: String, value: JSONValue)] = []
            members.reserveCapacity(fields.count)
            for (key, field) in fields where !field.isNullValue {
                members.append((Self.keyPrefix(key), key, field))
            }
            members.sort { $0.prefix != $1.prefix ? $0.prefix < $1.prefix : Self.keyPrecedes($0.key, $1.key) }
            u32(members.count)
            let body = try openBody()
            for member in members {
                try string(member.key)
                try self.value(member.value, depth: depth + 1)
                byte(UInt8(ascii: "S"))
            }
            byte(UInt8(ascii: "E"))
            try closeBody(body)
        }
    }

    /// Reserves a container's u32 body length (C skips unread containers by it); returns
    /// where the body starts.
    private mutating func openBody() throws(EncodeError) -> Int {
        u32(0)
        return count
    }

    /// Writes the body length: the bytes from the body's start through its closing op.
    private mutating func closeBody(_ start: Int) throws(EncodeError) {
        let length = count - start
        guard length <= Self.lengthMax else { throw .tooLarge }
        patchU32(at: start - 4, length)
    }

    private mutating func string(_ text: String) throws(EncodeError) {
        let utf8 = text.utf8
        let length = utf8.count
        guard length <= Self.lengthMax else { throw .tooLarge }
        byte(UInt8(ascii: "s"))
        u32(length)
        reserve(length)
        let copied: Void? = utf8.withContiguousStorageIfAvailable { source in
            if let from = source.baseAddress { (base + count).update(from: from, count: source.count) }
        }
        if copied == nil {
            for (offset, unit) in utf8.enumerated() { base[count + offset] = unit }
        }
        count += length
    }

    /// Makes room for `extra` more bytes.
    private mutating func reserve(_ extra: Int) {
        guard capacity - count < extra else { return }
        var grown = capacity * 2
        while grown - count < extra { grown *= 2 }
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        buffer.update(from: base, count: count)
        base.deallocate()
        base = buffer
        capacity = grown
    }

    private mutating func byte(_ value: UInt8) {
        reserve(1)
        base[count] = value
        count += 1
    }

    // Little-endian, unaligned stores.
    private mutating func u32(_ value: Int) {
        reserve(4)
        UnsafeMutableRawPointer(base + count).storeBytes(of: UInt32(value).littleEndian, as: UInt32.self)
        count += 4
    }

    private mutating func u64(_ value: UInt64) {
        reserve(8)
        UnsafeMutableRawPointer(base + count).storeBytes(of: value.littleEndian, as: UInt64.self)
        count += 8
    }

    private mutating func patchU32(at offset: Int, _ value: Int) {
        UnsafeMutableRawPointer(base + offset).storeBytes(of: UInt32(value).littleEndian, as: UInt32.self)
    }
}

private extension JSONValue {
    /// A case check, without comparing whole values.
    var isNullValue: Bool {
        if case .null = self { return true }
        return false
    }
}
