// PolicyWire.swift — the bytes between the host and its policy worker (PolicyWorker*.swift):
// one request frame (the budget, the facts tape, the policies), then one answer frame per
// policy, in order. Little-endian, length-prefixed, every length bounded before anything is
// allocated: the host reads the worker's answers as untrusted bytes (a crashed or confused
// worker gives a malformed frame, which is that policy's failure, never a crash of the host).
import AeroCore

enum PolicyWire {
    /// A request frame at most this many bytes: 256 policies of at most 256 KiB
    /// (PolicyLoader's bounds) plus a facts tape; far above any real decision.
    static let requestBytesMax = 128 << 20
    /// An answer frame at most this many bytes: 32 reasons of 1 KiB, 8 KiB printed, a 1 KiB
    /// message, with room for the framing.
    static let answerBytesMax = 1 << 20
    /// Strings in an answer: at most this many of them per list (reasons, printed lines).
    static let listCountMax = 256
    static let requestMagic: UInt32 = 0x3151_4541  // "AEQ1"

    struct Request {
        var budget: LuaBudget
        var facts: PolicyFacts
        var policies: [PolicySource]
    }

    enum Malformed: Error { case truncated, tooLarge, badValue }

    // MARK: - Writing

    struct Writer {
        var bytes: [UInt8] = []
        mutating func u8(_ value: UInt8) { bytes.append(value) }
        mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func data(_ value: [UInt8]) { u32(UInt32(value.count)); bytes.append(contentsOf: value) }
        mutating func string(_ value: String) { u32(UInt32(value.utf8.count)); bytes.append(contentsOf: value.utf8) }
        mutating func strings(_ values: [String]) { u32(UInt32(values.count)); values.forEach { string($0) } }
        /// The bytes with their u32 length in front.
        func framed() -> [UInt8] {
            var out = Writer()
            out.u32(UInt32(bytes.count))
            out.bytes.append(contentsOf: bytes)
            return out.bytes
        }
    }

    static func encode(_ request: Request) -> [UInt8] {
        var w = Writer()
        w.u32(requestMagic)
        w.u64(UInt64(bitPattern: request.budget.instructionsMax))
        w.u64(UInt64(request.budget.memoryBytesMax))
        w.u64(request.budget.cpuTimeMsMax)
        w.u32(UInt32(bitPattern: request.budget.hookIntervalInstructions))
        switch request.facts.tape {
        case .success(let tape): w.u8(0); w.data(tape)
        case .failure(.tooDeep): w.u8(1)
        case .failure(.tooLarge): w.u8(2)
        }
        w.u32(UInt32(request.policies.count))
        for policy in request.policies {
            w.string(policy.name)
            w.string(policy.path)
            w.string(policy.text)
        }
        return w.framed()
    }

    static func encode(_ run: PolicyRun) -> [UInt8] {
        var w = Writer()
        w.string(run.name)
        switch run.outcome {
        case .noObjection: w.u8(0)
        case .refused(let reasons): w.u8(1); w.strings(reasons)
        case .failed(let kind, let message): w.u8(2); w.string(kind.rawValue); w.string(message)
        }
        w.u64(UInt64(bitPattern: run.instructionsUsed))
        w.u64(UInt64(run.memoryBytesPeak))
        w.strings(run.printed)
        w.u8(run.printedTruncated ? 1 : 0)
        return w.framed()
    }

    // MARK: - Reading

    struct Reader {
        let bytes: [UInt8]
        var offset = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        mutating func take(_ count: Int) throws(Malformed) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - offset >= count else { throw .truncated }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
        mutating func u8() throws(Malformed) -> UInt8 { try take(1).first! }
        mutating func u32() throws(Malformed) -> UInt32 {
            try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        mutating func u64() throws(Malformed) -> UInt64 {
            try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        mutating func data() throws(Malformed) -> [UInt8] { Array(try take(Int(try u32()))) }
        mutating func string() throws(Malformed) -> String {
            let slice = try take(Int(try u32()))
            guard let text = String(validating: slice, as: UTF8.self) else { throw .badValue }
            return text
        }
        mutating func strings() throws(Malformed) -> [String] {
            let count = Int(try u32())
            guard count <= PolicyWire.listCountMax else { throw .tooLarge }
            var out: [String] = []
            for _ in 0..<count { out.append(try string()) }
            return out
        }
        var atEnd: Bool { offset == bytes.count }
    }

    static func decodeRequest(_ body: [UInt8]) throws(Malformed) -> Request {
        var r = Reader(body)
        guard try r.u32() == requestMagic else { throw .badValue }
        let instructions = Int64(bitPattern: try r.u64())
        let memory = try r.u64()
        let cpu = try r.u64()
        let hook = Int32(bitPattern: try r.u32())
        guard instructions > 0, memory > 0, memory <= UInt64(Int.max), cpu > 0, hook > 0, Int64(hook) <= instructions else {
            throw .badValue
        }
        let budget = LuaBudget(instructionsMax: instructions, memoryBytesMax: Int(memory), cpuTimeMsMax: cpu,
                               hookIntervalInstructions: hook)
        let facts: PolicyFacts
        switch try r.u8() {
        case 0: facts = PolicyFacts(tape: .success(try r.data()))
        case 1: facts = PolicyFacts(tape: .failure(.tooDeep))
        case 2: facts = PolicyFacts(tape: .failure(.tooLarge))
        default: throw .badValue
        }
        let count = Int(try r.u32())
        guard count <= 4096 else { throw .tooLarge }
        var policies: [PolicySource] = []
        for _ in 0..<count {
            policies.append(PolicySource(name: try r.string(), path: try r.string(), text: try r.string()))
        }
        guard r.atEnd else { throw .badValue }
        return Request(budget: budget, facts: facts, policies: policies)
    }

    static func decodeRun(_ body: [UInt8]) throws(Malformed) -> PolicyRun {
        var r = Reader(body)
        let name = try r.string()
        let outcome: PolicyOutcome
        switch try r.u8() {
        case 0: outcome = .noObjection
        case 1:
            let reasons = try r.strings()
            guard !reasons.isEmpty, reasons.count <= SandboxEnvironment.reasonsMax else { throw .badValue }
            outcome = .refused(reasons)
        case 2:
            guard let kind = PolicyFailureKind(rawValue: try r.string()) else { throw .badValue }
            outcome = .failed(kind: kind, message: try r.string())
        default: throw .badValue
        }
        let instructions = Int64(bitPattern: try r.u64())
        let peak = try r.u64()
        guard peak <= UInt64(Int.max) else { throw .badValue }
        let printed = try r.strings()
        let truncated = try r.u8()
        guard truncated <= 1, r.atEnd else { throw .badValue }
        return PolicyRun(name: name, outcome: outcome, instructionsUsed: instructions, memoryBytesPeak: Int(peak),
                         printed: printed, printedTruncated: truncated == 1)
    }
}
