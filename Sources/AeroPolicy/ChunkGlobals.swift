// ChunkGlobals.swift — lists the global names a compiled Lua 5.4 chunk reads and writes,
// with their lines, by parsing the host's own lua_dump of it (format: Lua 5.4 ldump.c).
// Global access compiles to GETTABUP/SETTABUP on the upvalue named _ENV with a string
// constant key; nothing is executed to find them.

struct ChunkGlobals {
    struct Access: Equatable {
        let name: String
        let line: Int?
    }

    private(set) var reads: [Access] = []
    private(set) var writes: [Access] = []
    /// The lines that hold code in any function of the chunk: the lines a line hook can
    /// report (Lua 5.4 ldebug.c collectvalidlines; a vararg function's VARARGPREP excluded),
    /// which `aerodb-policy test --coverage` counts. Empty for a stripped dump.
    private(set) var lines: Set<Int> = []

    // Lua 5.4 opcodes (lopcodes.h) and the iABC layout: op 7 bits, A 8, k 1, B 8, C 8.
    private static let opGetTabUp: UInt32 = 11
    private static let opSetTabUp: UInt32 = 15
    /// Nested functions deeper than this are not inspected (the parser limits nesting anyway).
    private static let depthMax = 200

    /// Nil when the bytes are not a Lua 5.4 dump this parser understands.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> ChunkGlobals? {
        var reader = Reader(bytes: bytes)
        var globals = ChunkGlobals()
        // Header: signature, version 0x54, format 0, LUAC_DATA, sizes, LUAC_INT, LUAC_NUM.
        guard reader.take(4) == Array("\u{1B}Lua".utf8), reader.byte() == 0x54, reader.byte() == 0,
              reader.take(6) != nil, reader.take(3) == [4, 8, 8], reader.take(16) != nil,
              reader.byte() != nil,  // number of upvalues of the main function
              globals.function(&reader, depth: 0) else { return nil }
        return globals
    }

    private struct Constant {
        let string: String?
    }

    private mutating func function(_ reader: inout Reader, depth: Int) -> Bool {
        guard depth < Self.depthMax,
              reader.string() != nil,  // source (or absent)
              let lineDefined = reader.varint(), reader.varint() != nil,
              let shape = reader.take(3),  // numparams, is_vararg, maxstacksize
              let codeCount = reader.varint(), let code = reader.words(codeCount),
              let constantCount = reader.varint() else { return false }
        var constants: [Constant] = []
        for _ in 0..<constantCount {
            guard let tag = reader.byte() else { return false }
            switch tag {
            case 0x00, 0x01, 0x11: constants.append(Constant(string: nil))
            case 0x03, 0x13:
                guard reader.take(8) != nil else { return false }
                constants.append(Constant(string: nil))
            case 0x04, 0x14:
                guard let text = reader.string() else { return false }
                constants.append(Constant(string: text))
            default: return false
            }
        }
        guard let upvalueCount = reader.varint(), reader.take(3 * upvalueCount) != nil,
              let protoCount = reader.varint() else { return false }
        for _ in 0..<protoCount {
            guard function(&reader, depth: depth + 1) else { return false }
        }
        // Debug information: lineinfo, abslineinfo, locvars, upvalue names.
        guard let lineInfoCount = reader.varint(), let lineInfo = reader.take(lineInfoCount),
              let absCount = reader.varint() else { return false }
        var absolute: [(pc: Int, line: Int)] = []
        for _ in 0..<absCount {
            guard let pc = reader.varint(), let line = reader.varint() else { return false }
            absolute.append((pc, line))
        }
        guard let localCount = reader.varint() else { return false }
        for _ in 0..<localCount {
            guard reader.string() != nil, reader.varint() != nil, reader.varint() != nil else { return false }
        }
        guard let upvalueNameCount = reader.varint() else { return false }
        var upvalueNames: [String?] = []
        for _ in 0..<upvalueNameCount {
            guard let name = reader.string() else { return false }
            upvalueNames.append(name)
        }

        func line(at pc: Int) -> Int? {
            guard lineInfo.count == code.count else { return nil }
            var basePc = -1
            var baseLine = lineDefined
            for entry in absolute where entry.pc <= pc {
                basePc = entry.pc
                baseLine = entry.line
            }
            while basePc < pc {
                basePc += 1
                baseLine += Int(Int8(bitPattern: lineInfo[basePc]))
            }
            return baseLine
        }
        func isEnv(_ upvalue: UInt32) -> Bool {
            Int(upvalue) < upvalueNames.count && upvalueNames[Int(upvalue)] == "_ENV"
        }
        func constantName(_ index: UInt32) -> String? {
            Int(index) < constants.count ? constants[Int(index)].string : nil
        }
        // Every instruction's line in one pass (line(at:) per pc would be quadratic).
        if lineInfo.count == code.count {
            let isVararg = shape[1] != 0
            var current = lineDefined
            var next = 0
            for pc in code.indices {
                if next < absolute.count, absolute[next].pc == pc {
                    current = absolute[next].line
                    next += 1
                } else {
                    current += Int(Int8(bitPattern: lineInfo[pc]))
                }
                if !(isVararg && pc == 0) { lines.insert(current) }
            }
        }
        for (pc, instruction) in code.enumerated() {
            let op = instruction & 0x7F
            let a = (instruction >> 7) & 0xFF
            let b = (instruction >> 16) & 0xFF
            let c = (instruction >> 24) & 0xFF
            if op == Self.opGetTabUp, isEnv(b), let name = constantName(c) {
                reads.append(Access(name: name, line: line(at: pc)))
            } else if op == Self.opSetTabUp, isEnv(a), let name = constantName(b) {
                writes.append(Access(name: name, line: line(at: pc)))
            }
        }
        return true
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, bytes.count - offset >= count else { return nil }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        /// ldump.c dumpSize: big-endian groups of 7 bits, the last byte marked with 0x80.
        mutating func varint() -> Int? {
            var value = 0
            for _ in 0..<10 {
                guard let next = byte() else { return nil }
                value = (value << 7) | Int(next & 0x7F)
                if next & 0x80 != 0 { return value }
            }
            return nil
        }

        /// A string is its size + 1 (0 for none) followed by the bytes. Absent strings read as "".
        mutating func string() -> String? {
            guard let size = varint() else { return nil }
            if size == 0 { return "" }
            guard let raw = take(size - 1) else { return nil }
            return String(decoding: raw, as: UTF8.self)
        }

        mutating func words(_ count: Int) -> [UInt32]? {
            guard let raw = take(count * 4) else { return nil }
            var words: [UInt32] = []
            words.reserveCapacity(count)
            for index in 0..<count {
                var word: UInt32 = 0
                for shift in 0..<4 {
                    word |= UInt32(raw[index * 4 + shift]) << UInt32(8 * shift)
                }
                words.append(word)
            }
            return words
        }
    }
}
