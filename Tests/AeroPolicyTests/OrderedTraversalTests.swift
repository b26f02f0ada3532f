import AeroCore
import AeroTestSupport
import Foundation
import Testing
@testable import AeroPolicy

/// Determinism by construction (issue 12): `pairs`/`next` over any table a policy builds visit
/// its keys in one defined order — numbers ascending, then strings bytewise, then false, true,
/// then tables/functions by their stable id — and `tostring` never shows an address, so five
/// runs of a policy on the same facts give byte-identical explanations. The runs alternate
/// between this process and the policy worker (another process: other addresses, another hash
/// seed), so a traversal that followed the hash layout would show.
///
/// Seed: `AERODB_ORDER_SEED` replays a run; policies: `AERODB_ORDER_POLICIES` (default 60).
@Suite struct OrderedTraversalTests {
    typealias F = SandboxFixtures

    /// A key of a generated table: its Lua literal, how tostring prints it, and its rank.
    struct Key: Hashable {
        enum Kind: Int { case number = 0, string = 1, boolean = 2 }
        let kind: Kind
        let number: Double
        let bytes: [UInt8]
        let literal: String
        let printed: String

        static func < (a: Key, b: Key) -> Bool {
            if a.kind != b.kind { return a.kind.rawValue < b.kind.rawValue }
            switch a.kind {
            case .number, .boolean: return a.number < b.number
            case .string: return a.bytes.lexicographicallyPrecedes(b.bytes)
            }
        }
    }

    struct Generated {
        let text: String
        let expectedOrder: [String]
    }

    static func generate(_ rng: inout SeededRandom) -> Generated {
        var keys: Set<Key> = []
        let count = 1 + rng.next(below: 40)
        let alphabet: [[UInt8]] = [[0x61], [0x62], [0x41], [0x5F], [0x31], [0x7A], [0xC3, 0xA9], [0x20]]
        while keys.count < count {
            switch rng.next(below: 4) {
            case 0:
                let value = rng.next(below: 201) - 100
                keys.insert(Key(kind: .number, number: Double(value), bytes: [], literal: "\(value)", printed: "\(value)"))
            case 1:
                let value = Double(rng.next(below: 400) - 200) + 0.5
                keys.insert(Key(kind: .number, number: value, bytes: [], literal: "\(value)", printed: "\(value)"))
            case 2:
                let isTrue = rng.next(below: 2) == 1
                keys.insert(Key(kind: .boolean, number: isTrue ? 1 : 0, bytes: [], literal: "\(isTrue)", printed: "\(isTrue)"))
            default:
                var bytes: [UInt8] = []
                for _ in 0..<(rng.next(below: 6)) { bytes += alphabet[rng.next(below: alphabet.count)] }
                let escaped = bytes.map { "\\\($0)" }.joined()
                keys.insert(Key(kind: .string, number: 0, bytes: bytes, literal: "'\(escaped)'", printed: String(decoding: bytes, as: UTF8.self)))
            }
        }
        var insertion = Array(keys)
        for i in stride(from: insertion.count - 1, to: 0, by: -1) { insertion.swapAt(i, rng.next(below: i + 1)) }
        let removed = Set(insertion.filter { _ in rng.next(below: 5) == 0 })
        var text = "return function(facts)\n  local t = {}\n"
        for key in insertion { text += "  t[\(key.literal)] = \(rng.next(below: 1000))\n" }
        for key in removed { text += "  t[\(key.literal)] = nil\n" }
        let useNext = rng.next(below: 2) == 1
        text += useNext
            ? "  local order = {}\n  local k = next(t)\n  while k ~= nil do order[#order + 1] = tostring(k) k = next(t, k) end\n"
            : "  local order = {}\n  for k, v in pairs(t) do order[#order + 1] = tostring(k) end\n"
        text += """
          local names = {tostring({}), tostring(print), string.format('%s', function() end), tostring(coroutine.create(print))}
          local zones = {}
          for _, node in ipairs(facts.nodes) do zones[node.labels.zone] = node.id end
          local z = {}
          for zone, id in pairs(zones) do z[#z + 1] = zone .. '=' .. id end
          return {'order ' .. table.concat(order, '|'), table.concat(names, ' '), table.concat(z, ',')}
        end
        """
        let expected = keys.subtracting(removed).sorted(by: <).map(\.printed)
        return Generated(text: text, expectedOrder: expected)
    }

    @Test("generated policies traverse in the defined order, and five runs give byte-identical explanations")
    func fiveRunsAreIdentical() {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["AERODB_ORDER_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        let count = environment["AERODB_ORDER_POLICIES"].flatMap { Int($0) } ?? 60
        print("OrderedTraversalTests seed \(seed) (replay: AERODB_ORDER_SEED=\(seed))")
        var rng = SeededRandom(seed: seed)
        let inProcess = PolicySandbox(budget: F.testBudget)
        let worker = PolicySandbox(budget: F.testBudget, isolation: .worker)
        let facts = PolicyFacts(F.facts)
        for index in 0..<count {
            let generated = Self.generate(&rng)
            let policy = F.policy(generated.text, name: "generated\(index)")
            let runs = (0..<5).map { run in (run % 2 == 0 ? inProcess : worker).runAll([policy], facts: facts)[0] }
            guard case .refused(let reasons) = runs[0].outcome else {
                Issue.record("seed \(seed) policy \(index): \(runs[0].outcome)\n\(generated.text)")
                return
            }
            #expect(reasons[0] == "order " + generated.expectedOrder.joined(separator: "|"), "seed \(seed) policy \(index)\n\(generated.text)")
            #expect(reasons[1] == "table: 1 function: 2 function: 3 thread: 4", "seed \(seed) policy \(index)")
            #expect(reasons[2] == "eu-1a=a,eu-1b=b,eu-1c=c", "seed \(seed) policy \(index)")
            for run in runs.dropFirst() {
                #expect(run.outcome == runs[0].outcome, "seed \(seed) policy \(index): runs differ")
                #expect(run.instructionsUsed == runs[0].instructionsUsed, "seed \(seed) policy \(index)")
            }
        }
    }

    @Test("keys removed during a traversal are skipped; a key not in the table is refused as in Lua")
    func traversalEdges() {
        let text = """
        return function()
          local t = {c = 3, a = 1, b = 2, [2] = 'two', [1] = 'one'}
          local seen = {}
          for k in pairs(t) do seen[#seen + 1] = tostring(k) if k == 1 then t.b = nil end end
          local ok, err = pcall(next, t, 'zzz')
          return {table.concat(seen, ' '), tostring(ok) .. ' ' .. err, tostring(next({}))}
        end
        """
        #expect(F.outcome(text) == .refused(["1 2 a c", "false invalid key to 'next'", "nil"]))
    }

    @Test("a table keyed by tables is ordered by their stable names, and refused when they have none")
    func objectKeys() {
        let named = """
        return function()
          local a, b, c = {}, {}, {}
          tostring(c) tostring(a) tostring(b)
          local t = {[a] = 'a', [b] = 'b', [c] = 'c', x = 'x', [1] = 'one'}
          local out = {}
          for _, v in pairs(t) do out[#out + 1] = v end
          return table.concat(out, ' ')
        end
        """
        #expect(F.outcome(named) == .refused(["one x c a b"]))
        let unnamed = "return function() local t = {[{}] = 1} for k in pairs(t) do end end"
        guard case .failed(.runtime, let message) = F.outcome(unnamed) else {
            Issue.record("expected a runtime failure, got \(F.outcome(unnamed))")
            return
        }
        #expect(message.contains("a table key has no defined order in the policy sandbox"), "\(message)")
    }

    @Test("traversing a large table over and over is stopped by a budget (the snapshots are charged)")
    func largeTraversalsAreBounded() {
        let text = "return function() local t = {} for i = 1, 100000 do t[i + 0.5] = i end while true do for k in pairs(t) do end end end"
        let clock = ContinuousClock()
        let started = clock.now
        let run = F.run(text)
        let elapsed = started.duration(to: clock.now)
        let kind = run.outcome.failureKind
        #expect(kind == .instructionBudget || kind == .memoryBudget || kind == .timeBudget, "\(run.outcome)")
        #expect(elapsed < .seconds(10), "took \(elapsed)")
    }
}
