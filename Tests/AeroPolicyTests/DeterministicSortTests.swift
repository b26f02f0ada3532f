import AeroCore
import Testing
@testable import AeroPolicy

/// table.sort in the sandbox is Lua 5.4.4's quicksort (aero_sandbox_sort.c) except where Lua picks
/// a pivot from clock() and time() after an unbalanced partition, which could make the order of
/// equal elements — and the instructions a policy uses — differ between two runs: there the
/// sandbox's pivot is a value of the interval. Its results against stock Lua's are compared in
/// LuaDifferentialTests.
@Suite struct DeterministicSortTests {
    typealias F = SandboxFixtures

    /// Sorts 5,000 records by a key with many ties (and, for Lua's quicksort, the unbalanced
    /// partitions that trigger its randomized pivot) and returns their original positions in
    /// sorted order, as a refusal reason.
    static let tiesPolicy = """
    return function()
      local t = {}
      for i = 1, 5000 do t[i] = {key = (i * 7919) % 3, pos = i} end
      table.sort(t, function(a, b) return a.key < b.key end)
      local out = {}
      for i = 1, #t do
        if i > 1 and t[i - 1].key > t[i].key then return 'unsorted at ' .. i end
        out[#out + 1] = t[i].pos
      end
      return table.concat(out, ',', 1, 50)
    end
    """

    @Test("every run gives the same order of equal elements and the same instruction count")
    func repeatable() {
        let runs = (0..<3).map { _ in F.run(Self.tiesPolicy, budget: LuaBudget(instructionsMax: 50_000_000, memoryBytesMax: 64 << 20, cpuTimeMsMax: 60_000, hookIntervalInstructions: 100)) }
        guard case .refused(let reasons) = runs[0].outcome else {
            Issue.record("expected the order as a reason, got \(runs[0].outcome)")
            return
        }
        #expect(!reasons[0].hasPrefix("unsorted"), "\(reasons)")
        // Key 0 first: positions i with i*7919 % 3 == 0 (in the quicksort's order, not ascending).
        let first = reasons[0].split(separator: ",").compactMap { Int($0) }
        #expect(first.count == 50 && first.allSatisfy { ($0 * 7919) % 3 == 0 }, "\(reasons)")
        for run in runs.dropFirst() {
            #expect(run.outcome == runs[0].outcome)
            #expect(run.instructionsUsed == runs[0].instructionsUsed)
        }
    }

    @Test("sorts like Lua's sort: numbers, strings, a comparator, metamethods, short arrays")
    func behavesLikeTableSort() {
        let text = """
        return function()
          local function same(a, b) if #a ~= #b then return false end for i = 1, #a do if a[i] ~= b[i] then return false end end return true end
          local a = {5, 3, 9, 1, 3, 8.5, -2}
          table.sort(a)
          if not same(a, {-2, 1, 3, 3, 5, 8.5, 9}) then return 'numbers' end
          local s = {'pear', 'apple', 'fig', 'Apple'}
          table.sort(s)
          if not same(s, {'Apple', 'apple', 'fig', 'pear'}) then return 'strings' end
          table.sort(a, function(x, y) return x > y end)
          if not same(a, {9, 8.5, 5, 3, 3, 1, -2}) then return 'comparator' end
          local e, one = {}, {7}
          table.sort(e) table.sort(one)
          if #e ~= 0 or one[1] ~= 7 then return 'short' end
          local backing = {3, 1, 2}
          local proxy = setmetatable({}, {__len = function() return 3 end, __index = backing,
                                         __newindex = function(_, k, v) backing[k] = v end})
          table.sort(proxy)
          if not same(backing, {1, 2, 3}) then return 'metamethods' end
        end
        """
        #expect(F.outcome(text) == .noObjection)
    }

    @Test("errors name the cause: incomparable values, a comparator that raises, a wrong argument")
    func errors() {
        for (text, fragment) in [
            ("return function() table.sort({1, 'x', 2}) end", "compare"),
            ("return function() table.sort({1, 2, 3}, function() error('boom') end) end", "boom"),
            ("return function() table.sort({1, 2}, 42) end", "bad argument #2"),
            ("return function() table.sort('nope') end", "bad argument #1"),
            ("return function() table.sort({5, 2, 8, 1, 9, 3, 7, 4, 6, 0, 11, 15, 13, 12, 14}, function() return true end) end",
             "invalid order function for sorting"),
        ] {
            guard case .failed(let kind, let message) = F.outcome(text) else {
                Issue.record("expected a failure for \(text)")
                continue
            }
            #expect(kind == .runtime, "\(message)")
            #expect(message.contains(fragment), "\(text): \(message)")
        }
    }

    @Test("a sort too large for the budgets is stopped")
    func bounded() {
        // Without a comparator no hook fires inside the C loop: the sort checks the time budget itself.
        let budget = LuaBudget(instructionsMax: Int64.max, memoryBytesMax: 64 << 20, cpuTimeMsMax: 20, hookIntervalInstructions: 1_000)
        let run = F.run("return function() local t = {} for i = 1, 400000 do t[i] = (i * 7919) % 100003 end while true do table.sort(t) end end", budget: budget)
        #expect(run.outcome.failureKind == .timeBudget, "\(run.outcome)")
    }
}
