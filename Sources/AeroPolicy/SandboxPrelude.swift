// SandboxPrelude.swift — the Lua text that turns a state with the pure libraries into the
// policy sandbox. The host compiles it once, dumps it as bytecode (host-produced only), and
// runs it in every fresh state before any policy code; see docs/sandbox.md.
//
// It receives `host` = { print = <C sink>, bound = <C pattern bounder>, tripped = <C budget
// flag>, validate = <C answer checker>, load/rawget/setmetatable = <the originals,
// kept out of the environment> }
// and returns
//   validate(fn, facts) -> code, payload   (0: no objection; 1: list of reasons; 2: message)
//   env                                    (the policy's _ENV)
// Everything it needs later is captured in locals, so nothing a policy does to its own
// environment (or to the library copies in it) changes how the host reads the answer.

import CLuaShim

enum SandboxPrelude {
    static let chunkName = "=aerodb-sandbox"

    /// Refusal reasons: at most this many, each at most `reasonBytesMax` bytes.
    static let reasonsMax = Int(AERO_REASONS_MAX)
    static let reasonBytesMax = Int(AERO_REASON_BYTES_MAX)
    /// string.rep: at most this many repetitions and this many result bytes per call.
    static let repCountMax = 1 << 20
    static let repBytesMax = 1 << 20
    /// load(): at most this many bytes of Lua text per chunk.
    static let loadBytesMax = 64 << 10

    /// Names the sandbox environment provides (check() reports reads of any other global);
    /// the same list as allowed_globals in aero_sandbox.c.
    static let environmentNames: Set<String> = [
        "_G", "_VERSION", "assert", "error", "getmetatable", "ipairs", "load", "next", "pairs",
        "pcall", "print", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall",
        "coroutine", "math", "string", "table", "utf8",
    ]

    static let text = """
    local host = ...
    local type, select, error, pcall, tostring = type, select, error, pcall, tostring
    local rawget, setmetatable, getmetatable = host.rawget, host.setmetatable, getmetatable
    local load, xpcall, mathtype, concat, maxinteger = host.load, xpcall, math.type, table.concat, math.maxinteger
    local sink, bound, tripped = host.print, host.bound, host.tripped

    -- The globals and library tables were built by C from the allow-list (aero_sandbox.c)
    -- and are the state's own. The host's own code below uses only the locals captured above.
    local env = _G

    -- No finalizers: nothing may run code at garbage collection.
    env.setmetatable = function(t, mt)
      if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
        error("setmetatable: __gc is not allowed in the policy sandbox", 2)
      end
      local ok, result = pcall(setmetatable, t, mt)
      if not ok then error(result, 2) end
      return result
    end

    -- Text chunks only, in the sandbox environment unless the policy gives its own table.
    -- The parser runs in C where no hook fires: chunks are bounded to LOAD_BYTES_MAX.
    local LOAD_BYTES_MAX = \(loadBytesMax)
    env.load = function(chunk, name, mode, chunkenv)
      if chunkenv == nil then chunkenv = env end
      if type(chunk) == "string" then
        if #chunk > LOAD_BYTES_MAX then
          return nil, "chunk larger than " .. LOAD_BYTES_MAX .. " bytes (the sandbox bound)"
        end
      elseif type(chunk) == "function" then
        local reader, total = chunk, 0
        chunk = function()
          local piece = reader()
          if type(piece) == "string" then
            total = total + #piece
            if total > LOAD_BYTES_MAX then
              error("chunk larger than " .. LOAD_BYTES_MAX .. " bytes (the sandbox bound)", 0)
            end
          end
          return piece
        end
      end
      return load(chunk, name, "t", chunkenv)
    end

    env.print = function(...)
      local n = select("#", ...)
      local parts = {}
      for i = 1, n do parts[i] = tostring((select(i, ...))) end
      sink(concat(parts, "\\t"))
    end

    -- Pattern functions run in C where no hook fires: bounded before each call.
    string.find = bound(string.find, 1)
    string.match = bound(string.match, 2)
    string.gmatch = bound(string.gmatch, 3)
    string.gsub = bound(string.gsub, 4)
    -- string.rep copies once per repetition inside one VM instruction, even for an empty
    -- string (rep("", 2^62) never returns): bound the count and the result.
    local rep = string.rep
    local REP_COUNT_MAX, REP_BYTES_MAX = \(repCountMax), \(repBytesMax)
    local function length_of(value)
      local kind = type(value)
      if kind == "string" or kind == "number" then return #tostring(value) end
      return 0
    end
    string.rep = function(s, n, sep)
      if type(n) == "number" and n > 0 then
        if n > REP_COUNT_MAX then
          error("bad argument #2 to 'rep' (more than " .. REP_COUNT_MAX .. " repetitions; the sandbox bound)", 2)
        end
        if (length_of(s) + length_of(sep)) * n > REP_BYTES_MAX then
          error("string.rep: result larger than " .. REP_BYTES_MAX .. " bytes (the sandbox bound)", 2)
        end
      end
      return rep(s, n, sep)
    end
    -- Methods on strings ("x"):find(...) use this same table; the metatable is hidden.
    getmetatable("").__metatable = "the string metatable is protected"

    -- insert, remove and move loop in C over a length a __len metamethod may choose; they
    -- run here in Lua instead, where the instruction budget counts every step.
    local function integer_argument(value, position, name)
      if mathtype(value) ~= "integer" then
        error("bad argument #" .. position .. " to '" .. name .. "' (integer expected)", 3)
      end
    end
    table.insert = function(t, ...)
      local count = select("#", ...)
      local last = #t + 1
      if count == 1 then
        t[last] = ...
        return
      end
      if count ~= 2 then error("wrong number of arguments to 'insert'", 2) end
      local position, value = ...
      integer_argument(position, 2, "insert")
      if position < 1 or position > last then
        error("bad argument #2 to 'insert' (position out of bounds)", 2)
      end
      for i = last, position + 1, -1 do t[i] = t[i - 1] end
      t[position] = value
    end
    table.remove = function(t, position)
      local size = #t
      if position == nil then position = size end
      integer_argument(position, 2, "remove")
      if position ~= size and (position < 1 or position > size + 1) then
        error("bad argument #2 to 'remove' (position out of bounds)", 2)
      end
      local value = t[position]
      while position < size do
        t[position] = t[position + 1]
        position = position + 1
      end
      t[position] = nil
      return value
    end
    table.move = function(a1, f, e, t, a2)
      if a2 == nil then a2 = a1 end
      integer_argument(f, 2, "move")
      integer_argument(e, 3, "move")
      integer_argument(t, 4, "move")
      if e >= f then
        if f <= 0 and e >= maxinteger + f then error("bad argument #3 to 'move' (too many elements to move)", 2) end
        if t > e or t <= f or a1 ~= a2 then
          for i = 0, e - f do a2[t + i] = a1[f + i] end
        else
          for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end
        end
      end
      return a2
    end

    -- An error raised by the budget hook leaves hooks disabled in its thread until a pcall
    -- boundary restores them (Lua 5.4 ldo.c). Lua code that runs before that point — an
    -- xpcall message handler, or __close run by coroutine.close/wrap on the dead thread —
    -- would run unbudgeted. So once a budget has tripped, these wrappers run no policy code.
    env.xpcall = function(f, handler, ...)
      if type(handler) ~= "function" then return xpcall(f, handler, ...) end
      return xpcall(f, function(e)
        if tripped() then return e end
        return handler(e)
      end, ...)
    end
    local create, resume, costatus, coclose = coroutine.create, coroutine.resume, coroutine.status, coroutine.close
    coroutine.close = function(co)
      if tripped() then error("policy budget exceeded", 2) end
      return coclose(co)
    end
    local function wrap_results(co, ok, ...)
      if ok then return ... end
      local e = ...
      if not tripped() and costatus(co) == "dead" then coclose(co) end
      error(e, 0)
    end
    coroutine.wrap = function(f)
      local co = create(f)
      return function(...) return wrap_results(co, resume(co, ...)) end
    end

    -- host.validate (C) calls the policy and checks its answer without trusting it: raw
    -- reads only, the reasons copied into a fresh table.
    return host.validate, env
    """
}
