import AeroCore
import Testing
@testable import AeroPolicy

@Suite struct PolicySandboxTests {
    typealias F = SandboxFixtures

    @Test func nilIsNoObjection() {
        #expect(F.outcome("return function(facts) return nil end") == .noObjection)
        #expect(F.outcome("return function(facts) end") == .noObjection)
    }

    @Test func aStringOrAListOfStringsIsARefusal() {
        #expect(F.outcome("return function() return 'too far behind' end") == .refused(["too far behind"]))
        #expect(F.outcome("return function() return {'one', 'two'} end") == .refused(["one", "two"]))
    }

    @Test(arguments: [
        ("return function() return '' end", "an empty string"),
        ("return function() return 42 end", "a number value"),
        ("return function() return true end", "a boolean value"),
        ("return function() return {} end", "an empty list"),
        ("return function() return {'a', ''} end", "reason 2 is an empty string"),
        ("return function() return {'a', 3} end", "reason 2 is a number value"),
        ("return function() return {'a', x = 'b'} end", "keys other than 1..1"),
        ("return function() return function() end end", "a function value"),
        ("return function() return setmetatable({}, {__len = function() return 3 end, __index = function() return 'x' end}) end", "an empty list"),
    ])
    func wrongReturnTypesFailClosed(text: String, expected: String) throws {
        let failure = try #require(F.failure(text))
        #expect(failure.kind == .wrongReturnType)
        #expect(failure.message.hasPrefix("policies/p.lua: the policy function "))
        #expect(failure.message.contains(expected), "\(failure.message)")
    }

    @Test func aRuntimeErrorNamesFileAndLine() throws {
        let failure = try #require(F.failure("return function(facts)\n  local x = nil\n  return x.y\nend"))
        #expect(failure.kind == .runtime)
        #expect(failure.message.hasPrefix("policies/p.lua:3: attempt to index a nil value"), "\(failure.message)")
    }

    @Test func anErrorWithoutPositionGetsTheLineFromTheHandler() throws {
        let failure = try #require(F.failure("return function(facts)\n\n  error('plain', 0)\nend"))
        #expect(failure.kind == .runtime)
        #expect(failure.message == "policies/p.lua:3: plain")
    }

    @Test func loadFailures() throws {
        let syntax = try #require(F.failure("return function(\n  x = \nend"))
        #expect(syntax.kind == .load)
        #expect(syntax.message == "policies/p.lua:2: ')' expected near '='")
        let notAFunction = try #require(F.failure("return 42"))
        #expect(notAFunction == (.load, "policies/p.lua: the file returned a number value, not a function"))
        let nothing = try #require(F.failure("local x = 1"))
        #expect(nothing == (.load, "policies/p.lua: the file returned nil, not a function"))
        let topLevelError = try #require(F.failure("\nerror('broken at load')"))
        #expect(topLevelError == (.load, "policies/p.lua:2: broken at load"))
    }

    @Test func factsReadLikePlainTables() {
        let text = """
        return function(facts)
          local out = {}
          out[#out + 1] = facts.schema
          out[#out + 1] = facts.candidate.id .. '/' .. facts.primary.id
          out[#out + 1] = tostring(facts.candidate == facts.nodes[2])
          out[#out + 1] = tostring(#facts.nodes) .. ' ' .. tostring(#facts.cluster.sync_replicas)
          out[#out + 1] = math.type(facts.cluster.epoch) .. ' ' .. math.type(facts.nodes[3].ratio)
          out[#out + 1] = tostring(facts.nodes[1].epoch) .. ' ' .. tostring(facts.nodes[1].wal)
          local ids = {}
          for i, node in ipairs(facts.nodes) do ids[#ids + 1] = i .. '=' .. node.id end
          out[#out + 1] = table.concat(ids, ',')
          local keys = {}
          for k in pairs(facts.cluster) do keys[#keys + 1] = k end
          out[#out + 1] = table.concat(keys, ',')
          local nodeKeys = {}
          for k in pairs(facts.nodes[1]) do nodeKeys[#nodeKeys + 1] = k end
          out[#out + 1] = table.concat(nodeKeys, ',')
          local elements = {}
          for k, v in pairs(facts.cluster.sync_replicas) do elements[#elements + 1] = k .. '=' .. v end
          out[#out + 1] = table.concat(elements, ',')
          out[#out + 1] = tostring(facts.cluster.labels.freeze) .. ' ' .. type(facts.nodes[2].wal.continuous)
          out[#out + 1] = table.concat(facts.cluster.sync_replicas, '+')
          return out
        end
        """
        #expect(F.outcome(text) == .refused([
            "aerodb.facts/1",
            "b/a",
            "true",
            "3 1",
            "integer float",
            "nil nil",
            "1=a,2=b,3=c",
            "commit_mode,epoch,labels,name,primary,sync_replicas",
            "id,labels,reachable,role",
            "1=b",
            "no boolean",
            "b",
        ]))
    }

    @Test func rootPairsIncludeCandidateAndPrimaryInOrder() {
        let text = """
        return function(facts)
          local keys = {}
          for k in pairs(facts) do keys[#keys + 1] = k end
          return table.concat(keys, ',')
        end
        """
        #expect(F.outcome(text) == .refused(["candidate,captured_at,cluster,nodes,primary,request,schema"]))
    }

    @Test func candidateAndPrimaryAreNilWhenAbsent() {
        let facts: JSONValue = .object(["request": .object(["candidate": .string("zz")]),
                                        "nodes": .array([.object(["id": .string("a")])])])
        #expect(F.outcome("return function(f) return tostring(f.candidate) .. tostring(f.primary) end", facts: facts)
                == .refused(["nilnil"]))
    }

    @Test func nullsInArraysKeepTheLength() {
        let facts: JSONValue = .object(["list": .array([.integer(1), .null, .integer(3)])])
        let text = """
        return function(f)
          local seen = {}
          for k, v in pairs(f.list) do seen[#seen + 1] = k .. '=' .. v end
          return #f.list .. ' ' .. table.concat(seen, ',')
        end
        """
        #expect(F.outcome(text, facts: facts) == .refused(["3 1=1,3=3"]))
    }

    @Test func printGoesIntoTheRunBounded() {
        let run = F.run("print('hello', 42, nil, true)\nreturn function(f) print('candidate', f.candidate.id) end")
        #expect(run.outcome == .noObjection)
        #expect(run.printed == ["hello\t42\tnil\ttrue", "candidate\tb"])
        #expect(!run.printedTruncated)
        let flood = F.run("return function() for i = 1, 10000 do print(string.rep('x', 100)) end end")
        #expect(flood.outcome == .noObjection)
        #expect(flood.printedTruncated)
        #expect(flood.printed.count <= PolicySandbox.printedLinesMax)
        #expect(flood.printed.reduce(0) { $0 + $1.utf8.count } <= PolicySandbox.printedBytesMax)
        let long = F.run("return function() print(string.rep('y', 5000)) end")
        #expect(long.printed == [String(repeating: "y", count: PolicySandbox.printedLineBytesMax)])
        #expect(long.printedTruncated)
    }

    @Test func budgetUseIsDeterministic() {
        let text = "return function(f) local n = 0 for i = 1, 5000 do n = n + i end local t = {} for i = 1, 100 do t[i] = tostring(i) end end"
        let first = F.run(text)
        let second = F.run(text)
        #expect(first == second)
        #expect(first.instructionsUsed > 10_000)
        #expect(first.memoryBytesPeak > 0)
    }

    @Test func sandboxLibrariesAreThere() {
        let text = """
        return function(f)
          return string.format('%d %s %s %d %s', math.max(1, 2), string.upper('a'), ('x'):rep(2),
            utf8.len('hé'), select('#', table.unpack({1, 2, 3})))
        end
        """
        #expect(F.outcome(text) == .refused(["2 A xx 2 3"]))
    }

    @Test func objectsReadFieldByFieldThenWholeAreTheSame() {
        // Objects are read from the tape field by field and completed for pairs: a field read
        // first keeps its proxy, absent fields stay nil, and pairs sees every field once.
        let text = """
        return function(f)
          local labels = f.candidate.labels
          local same, count = false, 0
          for k, v in pairs(f.candidate) do
            count = count + 1
            if k == 'labels' then same = (v == labels) end
          end
          local again = 0
          for _ in pairs(f.candidate) do again = again + 1 end
          return tostring(same) .. ' ' .. tostring(f.candidate.nonexistent) .. ' ' .. tostring(count == again and count > 3)
            .. ' ' .. tostring(f.candidate.id == f.request.candidate) .. ' ' .. tostring(f.nodes[2].labels == f.candidate.labels)
        end
        """
        #expect(F.outcome(text) == .refused(["true nil true true true"]))
    }

    @Test func libraryTablesLookFilledBeforeFirstUse() {
        // Library tables are filled on first use (aero_sandbox_env.c); nothing may tell.
        let text = """
        return function()
          local r = {}
          r[#r + 1] = tostring(next(math) ~= nil)
          r[#r + 1] = tostring(getmetatable(string))
          local mt = {}
          r[#r + 1] = tostring(setmetatable(utf8, mt) == utf8 and getmetatable(utf8) == mt and utf8.len('hé') == 2)
          coroutine.extra = 1
          r[#r + 1] = tostring(coroutine.extra == 1 and type(coroutine.wrap) == 'function')
          table.concat = nil
          r[#r + 1] = tostring(table.concat == nil and type(table.insert) == 'function')
          return r
        end
        """
        #expect(F.outcome(text) == .refused(["true", "nil", "true", "true", "true"]))
    }

    @Test func wrappedFunctionsBehaveLikeTheOriginals() {
        let text = """
        return function()
          local r = {}
          r[#r + 1] = select(2, xpcall(error, function(e) return 'handled ' .. e end, 'x'))
          r[#r + 1] = select(2, pcall(coroutine.wrap(function() error('inner', 0) end)))
          local g = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
          r[#r + 1] = g(1) .. ' ' .. g(5)
          r[#r + 1] = select(2, pcall(function() local t = setmetatable(1, {}) return t end)):match('bad argument.*')
          r[#r + 1] = ('ab'):rep(3, '-') .. ' ' .. string.rep(7, 2)
          r[#r + 1] = load('return ...', 'c')(4, 5) .. ''
          return r
        end
        """
        #expect(F.outcome(text) == .refused([
            "handled x", "inner", "2 10", "bad argument #1 to 'setmetatable' (table expected, got number)",
            "ab-ab-ab 77", "4",
        ]))
        let printed = F.run("return function() print(1.5, 2, setmetatable({}, {__tostring = function() return 'T' end})) end")
        #expect(printed.printed == ["1.5\t2\tT"])
    }

    @Test func tableFunctionsWorkLikeTheOriginals() {
        let text = """
        return function(f)
          local t = {1, 2, 3}
          table.insert(t, 4)
          table.insert(t, 1, 0)
          local removed = table.remove(t, 2)
          local last = table.remove(t)
          local moved = table.move({7, 8, 9}, 1, 3, 2, {1})
          table.sort(t, function(a, b) return a > b end)
          return table.concat(t, ',') .. ' ' .. removed .. ' ' .. last .. ' ' .. table.concat(moved, ',')
        end
        """
        #expect(F.outcome(text) == .refused(["3,2,0 1 4 1,7,8,9"]))
    }
}
