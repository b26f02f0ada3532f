import AeroCore
import AeroTestSupport
import Foundation
import Testing
@testable import AeroPolicy

/// The sandbox's wrapped and replaced library functions against the real thing: Debian's stock
/// `lua5.4` interpreter (scripts/install-deps installs it) runs the same seeded, generated
/// calls as the sandbox — table.sort/insert/remove/move/concat/unpack, the string and pattern
/// functions, utf8, math, string.pack — with edge cases (float and string positions,
/// wrap-around, bad order functions, metamethods), and the results and error messages must
/// be byte-identical. Divergences that are bounds or determinism by design are listed in
/// docs/sandbox.md ("Lua 5.4 conformance") and not generated here: pairs/next order,
/// tostring of tables and functions, the pattern step bound, the sizes bounds.
///
/// Seed: `AERODB_LUA_DIFF_SEED` replays a run; cases: `AERODB_LUA_DIFF_CASES` (default 1,200).
@Suite struct LuaDifferentialTests {
    /// Where the stock interpreter is, if it is installed.
    static let stockLua: String? = ["/usr/bin/lua5.4", "/usr/local/bin/lua5.4"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Cases per sandbox run: one reason each (the sandbox returns at most 32 reasons).
    static let casesPerBatch = 30

    @Test(.enabled(if: stockLua != nil, "lua5.4 is not installed: run scripts/install-deps (apt package lua5.4); this differential test needs Debian's stock interpreter"))
    func sandboxAgreesWithStockLua() throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["AERODB_LUA_DIFF_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        let count = environment["AERODB_LUA_DIFF_CASES"].flatMap { Int($0) } ?? 1_200
        print("LuaDifferentialTests seed \(seed) (replay: AERODB_LUA_DIFF_SEED=\(seed))")
        var generator = LuaCallGenerator(rng: SeededRandom(seed: seed))
        let cases = (0..<count).map { _ in generator.next() } + LuaCallGenerator.fixedCases
        let batches = stride(from: 0, to: cases.count, by: Self.casesPerBatch).map {
            Array(cases[$0..<min($0 + Self.casesPerBatch, cases.count)])
        }
        let texts = batches.map(LuaCallGenerator.policyText)
        let stock = try runStock(texts)
        #expect(stock.count == texts.count, "stock lua5.4 gave \(stock.count) batches for \(texts.count)")
        var compared = 0
        var differences: [String] = []
        for (index, text) in texts.enumerated() where index < stock.count {
            let run = F.run(text, budget: LuaBudget(instructionsMax: 50_000_000, memoryBytesMax: 64 << 20, cpuTimeMsMax: 60_000, hookIntervalInstructions: 100))
            guard case .refused(let lines) = run.outcome else {
                differences.append("batch \(index): the sandbox gave \(run.outcome)")
                continue
            }
            for (offset, call) in batches[index].enumerated() {
                compared += 1
                let mine = offset < lines.count ? lines[offset] : "<missing>"
                let theirs = offset < stock[index].count ? stock[index][offset] : "<missing>"
                if mine != theirs { differences.append("\(call)\n  sandbox: \(mine)\n  lua5.4:  \(theirs)") }
            }
        }
        print("LuaDifferentialTests: \(compared) calls compared, \(differences.count) differences")
        #expect(compared == cases.count)
        #expect(differences.isEmpty, "seed \(seed): \(differences.count) differences:\n\(differences.prefix(20).joined(separator: "\n"))")
    }

    typealias F = SandboxFixtures

    /// Runs every batch in one lua5.4 process; returns each batch's lines.
    func runStock(_ texts: [String]) throws -> [[String]] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-lua-diff-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for (index, text) in texts.enumerated() {
            let url = directory.appendingPathComponent("batch\(index).lua")
            try text.write(to: url, atomically: true, encoding: .utf8)
            paths.append(url.path)
        }
        let driver = directory.appendingPathComponent("driver.lua")
        try """
        for _, path in ipairs(arg) do
          local lines = assert(loadfile(path))()({})
          print('=== batch')
          for _, line in ipairs(lines) do print(line) end
        end
        """.write(to: driver, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.stockLua ?? "lua5.4")
        process.arguments = [driver.path] + paths
        let output = directory.appendingPathComponent("out.txt")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let exit = ChildProcess.waitOrKill(process, timeoutMs: 60_000)
        try handle.close()
        let text = try String(contentsOf: output, encoding: .utf8)
        #expect(exit == ChildExit(status: 0, signaled: false), "lua5.4 \(exit): \(text.prefix(2_000))")
        var batches: [[String]] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "=== batch" { batches.append([]) } else if !batches.isEmpty, !line.isEmpty { batches[batches.count - 1].append(String(line)) }
        }
        return batches
    }
}

/// Generates Lua calls over the functions the sandbox wraps or replaces. Each case is the
/// body of a function whose results (or error) are serialised the same way on both sides.
struct LuaCallGenerator {
    var rng: SeededRandom

    /// Serialises results without addresses (no tostring of tables or functions) and with
    /// every byte outside printable ASCII escaped; an error's position is kept as "@:".
    static let prelude = #"""
    local function esc(s)
      return (string.gsub(s, '[^ -~]', function(c) return string.format('\\%03d', string.byte(c)) end))
    end
    local ser
    local function key_less(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return ta < tb end
      if ta == 'number' or ta == 'string' then return a < b end
      return tostring(a) < tostring(b)
    end
    ser = function(v, depth)
      local t = type(v)
      if t == 'string' then return '"' .. esc(v) .. '"' end
      if t == 'number' then return math.type(v) .. ':' .. string.format(math.type(v) == 'float' and '%.17g' or '%d', v) end
      if t == 'table' then
        if depth > 2 then return 'table' end
        local keys = {}
        local k = next(v)
        while k ~= nil do keys[#keys + 1] = k k = next(v, k) end
        table.sort(keys, key_less)
        local parts = {}
        for i = 1, #keys do parts[i] = ser(keys[i], depth + 1) .. '=' .. ser(v[keys[i]], depth + 1) end
        return '{' .. table.concat(parts, ',') .. '}'
      end
      if t == 'function' or t == 'thread' or t == 'userdata' then return t end
      return tostring(v)
    end
    local function run(f)
      local r = table.pack(pcall(f))
      local out = {}
      for i = 1, r.n do
        local v = r[i]
        if i == 2 and not r[1] and type(v) == 'string' then
          v = string.gsub(v, '^[^:]*:%d+: ', '@:')
        end
        out[#out + 1] = ser(v, 0)
      end
      local line = table.concat(out, ' ')
      if #line > 900 then line = string.sub(line, 1, 900) .. '...' end
      return line
    end
    """#

    static func policyText(_ cases: [String]) -> String {
        var text = prelude + "\nlocal cases = {\n"
        for body in cases { text += "  function() \(body) end,\n" }
        text += """
        }
        return function()
          local lines = {}
          for i = 1, #cases do lines[i] = run(cases[i]) end
          return lines
        end
        """
        return text
    }

    mutating func pick<T>(_ values: [T]) -> T { values[rng.next(below: values.count)] }
    mutating func chance(_ percent: Int) -> Bool { rng.next(below: 100) < percent }

    // MARK: Pools (edge cases first-class)

    static let positions = ["1", "2", "3", "4", "5", "0", "-1", "-2", "6", "2.0", "1.0", "2.5", "-0.0", "'2'", "' 3 '", "'2.0'",
                            "'x'", "nil", "true", "{}", "math.maxinteger", "math.mininteger", "1e100", "0/0", "math.huge",
                            "setmetatable({}, {__name = 'Thing'})"]
    static let smallPositions = ["1", "2", "3", "0", "-1", "4", "2.0", "3.0", "'2'", "1.5", "nil"]
    static let values = ["'v'", "42", "2.5", "true", "false", "{}"]
    static let subjects = ["'2026-11-26T10:00:00Z'", "'a,b,,c'", "'key = 10, other=20'", "'hello world'", "''",
                           "'aaa'", "'(foo(bar))baz'", "'THE (quick) fox'", "'x=1;y=22;z=333'", "'  trim me  '",
                           "'h\\195\\169llo'", "'\\255\\000x'", "'one two  three'", "'%d'", "'abc123def'"]
    static let patterns = ["'%d+'", "'(%d+)-(%d+)-(%d+)'", "'^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)Z$'", "'[^,]+'",
                           "'[^,]*'", "'(%w+)%s*=%s*(%w+)'", "'%a+'", "'^%s*(.-)%s*$'", "'%bxy'", "'%b()'",
                           "'%f[%w]%w+'", "'()a()'", "'(a*(.)%w(%s*))'", "'a-b'", "'a?a?a'", "'.-'", "''", "'^'",
                           "'$'", "'%'", "'[a'", "'(()'", "'%1'", "'(a)%1'", "'[%a-z]'", "'[]]'", "'[^%s]+'",
                           "'%z'", "'%g+'", "'(%d)(%d)(%d)'", "'x*'", "'^x*'", "'%s+'", "'%p'", "'%f[%a]'",
                           "'%'", "'(%'", "'%b'", "'%ba'", "'[a-]'", "'[-a]'", "'(h)(e)(l)(l)(o)'", "'%w-%d'"]
    static let replacements = ["'<%0>'", "'%1-%1'", "'%2'", "'%%'", "'x'", "''", "5", "'%'", "'%9'",
                               "function(c) return c:upper() end", "function() return false end",
                               "function() return {} end", "{a = 'A', ['1'] = 'one'}", "true", "'%1'"]
    static let tables = ["{1, 2, 3}", "{}", "{'a', 'b', 'c', 'd'}", "{3, 1, 2}", "{1, 2, nil, 4}",
                         "setmetatable({}, {__index = function(_, i) return 'v' .. i end, __len = function() return 3 end})",
                         "setmetatable({1, 2}, {__len = function() return 2.0 end})",
                         "setmetatable({1, 2}, {__len = function() return 2.5 end})",
                         "setmetatable({1, 2}, {__len = function() return '2' end})",
                         "setmetatable({}, {__index = {10, 20, 30}})",
                         "setmetatable({1, 2, 3}, {__newindex = function(t, k, v) end})",
                         "'not a table'", "nil", "42"]
    static let packFormats = ["'i4'", "'<i8'", "'>I2'", "'z'", "'s1'", "'d'", "'j'", "'b'", "'B'", "'i17'", "'!4 i3'",
                              "'<!8 i1 i8'", "'c5'", "'x'", "'Xi4'", "'='", "'i0'", "'n'", "'T'"]
    static let packValues = ["1", "-1", "255", "256", "65535", "'abc'", "3.5", "math.maxinteger", "math.mininteger", "'12'", "''"]
    static let utf8Subjects = ["'h\\195\\169llo'", "'abc'", "''", "'\\255'", "'\\228\\184\\173\\230\\150\\135'", "'\\237\\160\\128'",
                               "'\\244\\144\\128\\128'", "'a\\128b'"]
    /// No tables or functions: %s names them by their stable name in the sandbox (by design).
    static let formatArguments = ["0", "1", "-1", "0.5", "3.7", "1e308", "math.huge", "0/0", "'10'", "'x'", "'a\\0b'", "nil",
                                  "true", "math.mininteger", "2^53", "255"]
    static let numbers = ["0", "1", "-1", "0.5", "-0.5", "2", "1e308", "-1e308", "math.huge", "-math.huge", "0/0", "3.7", "-3.7",
                          "'10'", "'0x10'", "' 2 '", "'x'", "math.maxinteger", "math.mininteger", "nil", "{}", "2^53"]

    mutating func array() -> String {
        let length = pick([0, 1, 2, 3, 5, 8, 13, 20, 40, 70])
        let range = pick([3, 10, 1000])
        return "{" + (0..<length).map { _ in String(rng.next(below: range)) }.joined(separator: ", ") + "}"
    }

    mutating func next() -> String {
        switch rng.next(below: 16) {
        case 0:
            let position = pick(Self.positions)
            return chance(30)
                ? "local t = \(pick(Self.tables)) table.insert(t, \(pick(Self.values))) return t"
                : "local t = \(pick(Self.tables)) table.insert(t, \(position), \(pick(Self.values))) return t"
        case 1:
            return chance(20)
                ? "local t = \(pick(Self.tables)) return table.remove(t), t"
                : "local t = \(pick(Self.tables)) return table.remove(t, \(pick(Self.positions))), t"
        case 2:
            let (f, e, t) = chance(25) ? pick(Self.moveEdges) : (pick(Self.smallPositions), pick(Self.smallPositions), pick(Self.smallPositions))
            let destination = chance(40) ? ", \(pick(["{}", "a", "{9, 9}", "nil", "'s'"]))" : ""
            return "local a = \(pick(Self.tables)) return table.move(a, \(f), \(e), \(t)\(destination)), a"
        case 3:
            let sep = pick(["", ", ','", ", ''", ", 1", ", nil"])
            let range = sep.isEmpty || chance(50) ? "" : ", \(pick(Self.smallPositions)), \(pick(Self.smallPositions + ["10"]))"
            return "return table.concat(\(pick(Self.tables))\(sep.isEmpty && !range.isEmpty ? ", ''" : sep)\(range))"
        case 4:
            let range = chance(30) ? "" : ", \(pick(Self.smallPositions)), \(pick(Self.smallPositions + ["math.maxinteger", "math.mininteger"]))"
            return "return table.unpack(\(pick(Self.tables))\(range))"
        case 5:
            let comparator = pick(["", ", function(a, b) return a > b end", ", function(a, b) return true end",
                                   ", function(a, b) return a <= b end", ", function(a, b) return false end", ", 42",
                                   ", function(a, b) return (a % 7) < (b % 7) end"])
            let source = chance(85) ? array() : pick(["{3, 'x', 1}", "{1, nil, 3}", "'abc'", "{2.5, 1, 3.0, -1}", "{'b', 'a', 'B', 'A'}"])
            return "local t = \(source) table.sort(t\(comparator)) return t"
        case 6, 7:
            let function = pick(["find", "match"])
            let initial = chance(40) ? ", \(pick(Self.positions))" : ""
            let plain = function == "find" && !initial.isEmpty && chance(30) ? ", true" : ""
            return "return string.\(function)(\(pick(Self.subjects)), \(pick(Self.patterns))\(initial)\(plain))"
        case 8:
            let initial = chance(20) ? ", \(pick(Self.smallPositions))" : ""
            return "local r = {} for a, b in string.gmatch(\(pick(Self.subjects)), \(pick(Self.patterns))\(initial)) do r[#r + 1] = {a, b} end return r"
        case 9:
            let limit = chance(30) ? ", \(pick(Self.smallPositions))" : ""
            return "return string.gsub(\(pick(Self.subjects)), \(pick(Self.patterns)), \(pick(Self.replacements))\(limit))"
        case 10:
            let format = pick(Self.packFormats)
            return chance(60)
                ? "return string.pack(\(format), \(pick(Self.packValues)))"
                : "return string.unpack(\(format), string.pack(\(format), \(pick(Self.packValues)))\(chance(30) ? ", \(pick(Self.smallPositions))" : ""))"
        case 11:
            switch rng.next(below: 5) {
            case 0: return "return utf8.len(\(pick(Self.utf8Subjects))\(chance(40) ? ", \(pick(Self.smallPositions)), \(pick(Self.smallPositions))" : ""))"
            case 1: return "return utf8.codepoint(\(pick(Self.utf8Subjects)), \(pick(Self.smallPositions)), \(pick(Self.smallPositions)))"
            case 2: return "return utf8.offset(\(pick(Self.utf8Subjects)), \(pick(Self.smallPositions))\(chance(50) ? ", \(pick(Self.smallPositions))" : ""))"
            case 3: return "return utf8.char(\(pick(["72", "233", "0x10FFFF", "0x7FFFFFFF", "-1", "'65'", "2.0", "2.5"])), \(pick(["105", "0", "0x80000000"])))"
            default: return "local r = {} for p, c in utf8.codes(\(pick(Self.utf8Subjects))) do r[#r + 1] = p .. ':' .. c end return r"
            }
        case 12, 13:
            let unary = ["floor", "ceil", "abs", "tointeger", "type", "sqrt", "exp", "log", "sin", "cos", "tan", "asin",
                         "acos", "atan", "deg", "rad", "modf"]
            switch rng.next(below: 4) {
            case 0: return "return math.\(pick(unary))(\(pick(Self.numbers)))"
            case 1: return "return math.\(pick(["fmod", "atan", "log", "max", "min", "ult"]))(\(pick(Self.numbers)), \(pick(Self.numbers)))"
            case 2: return "return math.\(pick(["max", "min"]))(\(pick(Self.numbers)), \(pick(Self.numbers)), \(pick(Self.numbers)))"
            default: return "return \(pick(Self.numbers)) // \(pick(["0", "1", "-1", "2", "0.0"])), \(pick(Self.numbers)) % \(pick(["0", "1", "-1", "2", "0.0"]))"
            }
        case 14:
            return "return string.rep(\(pick(["'ab'", "''", "'x'", "5"])), \(pick(["3", "0", "-1", "2.0", "'2'", "2.5"]))\(chance(40) ? ", \(pick(["','", "''", "1"]))" : ""))"
        default:
            switch rng.next(below: 5) {
            case 0: return "return string.sub(\(pick(Self.subjects)), \(pick(Self.positions))\(chance(60) ? ", \(pick(Self.positions))" : ""))"
            case 1: return "return string.byte(\(pick(Self.subjects)), \(pick(Self.smallPositions)), \(pick(Self.smallPositions)))"
            case 2: return "return string.char(\(pick(["72", "0", "255", "256", "-1", "'65'", "2.5"])))"
            case 3: return "return string.format(\(pick(["'%5.2f|%d'", "'%q'", "'%x'", "'%s|%s'", "'%10s'", "'%-5d|'", "'%c'", "'%i'", "'%a'"])), \(pick(Self.formatArguments)), \(pick(Self.formatArguments)))"
            default: return "return string.\(pick(["upper", "lower", "reverse", "len"]))(\(pick(Self.subjects)))"
            }
        }
    }

    static let moveEdges: [(String, String, String)] = [
        ("math.mininteger", "0", "1"), ("0", "math.maxinteger", "1"), ("1", "3", "math.maxinteger"),
        ("1", "3", "math.maxinteger - 1"), ("1", "3", "math.maxinteger - 2"), ("-1", "1", "1"), ("2", "1", "1"),
        ("1", "0", "math.maxinteger"), ("math.mininteger + 1", "1", "1"), ("1", "2", "math.mininteger"),
        ("1.0", "3.0", "2.0"), ("'1'", "'3'", "'2'"), ("1.5", "3", "2"), ("1", "3", "'x'"),
    ]

    /// Cases the issue names, run with every seed.
    static let fixedCases = [
        "local t = {1, 2, 3, 4} table.insert(t, #t / 2 + 1, 'x') return t",
        "local t = {1, 2, 3, 4} return table.remove(t, #t / 2), t",
        "local t = {1, 2, 3} return table.move(t, 1.0, 3.0, 2.0), t",
        "local r = table.move({1, 2, 3}, 1, 3, math.maxinteger) return r",
        "local t = {5, 2, 8, 1, 9, 3, 7, 4, 6, 0, 11, 15, 13, 12, 14} table.sort(t, function(a, b) return true end) return t",
        "return math.atan(1, 2), math.asin(1), math.acos(0), math.atan(1)",
        "return ('2026-11-26T10:00:00Z'):match('^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)Z$')",
        "return ('k = 10'):match('(%d+)%s*=%s*(%d+)')",
        "local n = 0 for _ in (('abc,'):rep(225)):gmatch('[^,]+') do n = n + 1 end return n",
    ]
}
