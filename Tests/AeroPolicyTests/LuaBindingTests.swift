import Testing
@testable import AeroPolicy

@Suite struct LuaBindingTests {
    @Test func evaluatesAChunkAndReturnsItsValue() throws {
        let lua = try LuaState()
        #expect(try lua.evaluate("return 40 + 2", chunkName: "sum") == .integer(42))
        #expect(try lua.evaluate("return 'aero' .. 'db'", chunkName: "concat") == .string("aerodb"))
        #expect(try lua.evaluate("return 1.5", chunkName: "float") == .number(1.5))
        #expect(try lua.evaluate("return nil", chunkName: "nothing") == .nil)
        #expect(try lua.evaluate("return {}", chunkName: "table") == .other(typeName: "table"))
    }

    @Test func aRuntimeErrorComesBackWithChunkNameAndLine() throws {
        let lua = try LuaState()
        let error = #expect(throws: LuaError.self) {
            try lua.evaluate("local t = nil\n\nreturn t.field", chunkName: "policy.lua")
        }
        #expect(error?.kind == .runtime)
        #expect(error?.chunkName == "policy.lua")
        #expect(error?.line == 3)
        #expect(error?.message.contains("attempt to index a nil value") == true)
    }

    @Test func aSyntaxErrorNamesTheLine() throws {
        let lua = try LuaState()
        let error = #expect(throws: LuaError.self) {
            try lua.evaluate("return 1\nend end", chunkName: "broken.lua")
        }
        #expect(error?.kind == .syntax)
        #expect(error?.chunkName == "broken.lua")
        #expect(error?.line == 2)
    }

    @Test func aNonStringErrorObjectIsDescribedNotConverted() throws {
        let lua = try LuaState()
        try lua.openPureLibraries()
        let error = #expect(throws: LuaError.self) {
            try lua.evaluate("error(setmetatable({}, {__tostring = function() while true do end end}))",
                             chunkName: "obj.lua")
        }
        #expect(error?.kind == .runtime)
        #expect(error?.message == "error object is a table value")
        #expect(error?.line == 1)
    }

    @Test func anInfiniteLoopStopsAtTheInstructionBudget() throws {
        let lua = try LuaState(budget: LuaBudget(instructionsMax: 100_000))
        let error = #expect(throws: LuaError.self) {
            try lua.evaluate("while true do end", chunkName: "spin.lua")
        }
        #expect(error?.kind == .instructionBudget)
        // The state is still usable for a new call with a fresh budget.
        #expect(try lua.evaluate("return 7", chunkName: "after") == .integer(7))
    }

    @Test func aMemoryBombStopsAtTheMemoryBudget() throws {
        let lua = try LuaState(budget: LuaBudget(memoryBytesMax: 1 << 20))
        let error = #expect(throws: LuaError.self) {
            try lua.evaluate("local t = {} for i = 1, 1e9 do t[i] = i end", chunkName: "bomb.lua")
        }
        #expect(error?.kind == .memory)
        #expect(lua.memoryBytesPeak <= 1 << 20)
    }
}
