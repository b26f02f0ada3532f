import Foundation
import Testing
@testable import AeroCore

/// SplitMix64, so a seed replays the same values everywhere.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct JSONRoundTripTests {
    static let alphabet: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{01}", "\u{1F}", "\u{7F}", "é", "€", "😀", "\u{FFFF}"]

    func value(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .integer(Int64.random(in: Int64.min...Int64.max, using: &rng) >> UInt64.random(in: 0...63, using: &rng))
        case 3:
            let number = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng))
            return number.isFinite ? .number(number) : .number(Double.random(in: -1e6...1e6, using: &rng))
        case 4: return .string(string(&rng))
        case 5: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in value(&rng, depth: depth + 1) })
        default:
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &rng) { members[string(&rng)] = value(&rng, depth: depth + 1) }
            return .object(members)
        }
    }

    func string(_ rng: inout SplitMix64) -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...6, using: &rng) { scalars.append(Self.alphabet.randomElement(using: &rng)!) }
        return String(scalars)
    }

    /// Seed: `AERODB_JSON_SEED` replays a run.
    @Test func canonicalAndPrettyTextParseBackToTheSameValue() throws {
        let seed = ProcessInfo.processInfo.environment["AERODB_JSON_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        print("JSONRoundTripTests seed \(seed) (replay: AERODB_JSON_SEED=\(seed))")
        var rng = SplitMix64(state: seed)
        for _ in 0..<500 {
            let original = value(&rng, depth: 0)
            let canonical = original.canonicalJSON
            let parsed = try JSONParser.parse(canonical)
            // Integral numbers print with ".0" and stay numbers; Swift strings compare by
            // canonical equivalence, so compare the canonical texts too.
            #expect(parsed == original, "seed \(seed): \(canonical)")
            #expect(parsed.canonicalJSON == canonical, "seed \(seed)")
            #expect(try JSONParser.parse(original.prettyJSON) == original, "seed \(seed)")
        }
    }
}
