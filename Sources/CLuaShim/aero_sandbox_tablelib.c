// aero_sandbox_tablelib.c — table.insert, table.remove and table.move, in Lua.
//
// Bounds: the C versions loop over a length a __len metamethod may choose, inside one C call
// where no hook fires; these run as Lua, where the instruction budget counts every step.
//
// Semantics: Lua 5.4.4's ltablib.c, step for step: the same argument conversions (a float
// with an integral value or a numeric string is an integer position, as luaL_checkinteger
// takes it), the same unsigned bounds checks, table.move's "too many elements to move" and
// "destination wrap around", the same reads and writes through metamethods, and the same
// messages with the caller's position (error level 2, as luaL_argerror's level 1 in C). The
// checks that need the C API (raw metatable fields, luaL_checkinteger's conversion) are done
// by table_check below, which returns a message rather than raising, so the position is
// the policy's. Two differences stay (docs/sandbox.md): the function is named 'insert' /
// 'remove' / 'move' in messages whatever name the caller used (Lua takes it from the call
// site), and an error of a tail call (return table.insert(...)) names no policy line, as the
// caller's frame is gone (Lua keeps it for a C function).
#include "aero_sandbox_internal.h"

#include <string.h>

// The type name luaL_typeerror uses: a string __name, "light userdata", or the type. May
// push the __name (the caller's results are the top values, so it does no harm).
static const char *type_name(lua_State *L, int idx) {
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) return lua_tostring(L, -1);
    if (lua_type(L, idx) == LUA_TLIGHTUSERDATA) return "light userdata";
    return luaL_typename(L, idx);
}

// check(what, value, argument, name) -> value, or nil and a message:
//   "i": luaL_checkinteger's conversion of an argument;  "o": the same, nil when absent;
//   "l": luaL_len's check of a length value (an integer, or a float with an integral value);
//   "r", "w", "rwl": checktab (a table, or a value whose metatable has __index / __newindex /
//   __len raw fields as asked).
static int table_check(lua_State *L) {
    const char *what = luaL_checkstring(L, 1);
    int argument = (int)luaL_checkinteger(L, 3);
    const char *name = luaL_checkstring(L, 4);
    lua_settop(L, 4);
    if (what[0] == 'i' || what[0] == 'o' || what[0] == 'l') {
        if (what[0] == 'o' && lua_isnil(L, 2)) {
            lua_pushnil(L);
            return 1;
        }
        int is_integer = 0;
        lua_Integer value = lua_tointegerx(L, 2, &is_integer);
        if (is_integer) {
            lua_pushinteger(L, value);
            return 1;
        }
        if (what[0] == 'l') {
            luaL_pushfail(L);
            lua_pushliteral(L, "object length is not an integer");
        } else if (lua_isnumber(L, 2)) {
            luaL_pushfail(L);
            lua_pushfstring(L, "bad argument #%d to '%s' (number has no integer representation)", argument, name);
        } else {
            const char *type = type_name(L, 2);
            luaL_pushfail(L);
            lua_pushfstring(L, "bad argument #%d to '%s' (number expected, got %s)", argument, name, type);
        }
        return 2;
    }
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushboolean(L, 1);
        return 1;
    }
    int ok = lua_getmetatable(L, 2);
    static const struct { char flag; const char *field; } fields[] = {{'r', "__index"}, {'w', "__newindex"}, {'l', "__len"}};
    for (int i = 0; ok && i < 3; i++) {
        if (strchr(what, fields[i].flag) == NULL) continue;
        lua_pushstring(L, fields[i].field);
        ok = lua_rawget(L, 5) != LUA_TNIL;
        lua_pop(L, 1);
    }
    if (ok) {
        lua_pushboolean(L, 1);
        return 1;
    }
    const char *type = type_name(L, 2);
    luaL_pushfail(L);
    lua_pushfstring(L, "bad argument #%d to '%s' (table expected, got %s)", argument, name, type);
    return 2;
}

lua_CFunction aero_table_check = table_check;

// table.insert, remove and move loop in C over a length a __len metamethod may choose; the
// sandbox's run in Lua instead, where the instruction budget counts every step. They use no
// global (the chunk runs with a nil _ENV): what they need is passed in (the check above and
// the originals). Compiled once per process and dumped (stripped) by the host; only the host
// loads it.
const char aero_table_chunk_text[] =
    "local select, error, check, ult, maxinteger = ...\n"
    "local function argument(what, value, position, name, level)\n"
    "  local converted, message = check(what, value, position, name)\n"
    "  if message then error(message, level or 3) end\n"
    "  return converted\n"
    "end\n"
    "local function length(t, name)\n"
    "  argument('rwl', t, 1, name, 4)\n"
    "  local n = argument('l', #t, 1, name, 4)\n"
    "  return n\n"
    "end\n"
    "local function insert(t, ...)\n"
    "  local e = length(t, 'insert') + 1\n"
    "  local count = select('#', ...)\n"
    "  local position, value\n"
    "  if count == 1 then\n"
    "    position, value = e, ...\n"
    "  elseif count == 2 then\n"
    "    position, value = ...\n"
    "    position = argument('i', position, 2, 'insert')\n"
    "    if not ult(position - 1, e) then error(\"bad argument #2 to 'insert' (position out of bounds)\", 2) end\n"
    "    for i = e, position + 1, -1 do t[i] = t[i - 1] end\n"
    "  else\n"
    "    error(\"wrong number of arguments to 'insert'\", 2)\n"
    "  end\n"
    "  t[position] = value\n"
    "end\n"
    "local function remove(t, position)\n"
    "  local size = length(t, 'remove')\n"
    "  position = argument('o', position, 2, 'remove')\n"
    "  if position == nil then position = size end\n"
    "  if position ~= size and not (position - 1 == size or ult(position - 1, size)) then\n"
    "    error(\"bad argument #1 to 'remove' (position out of bounds)\", 2)\n"
    "  end\n"
    "  local value = t[position]\n"
    "  while position < size do\n"
    "    t[position] = t[position + 1]\n"
    "    position = position + 1\n"
    "  end\n"
    "  t[position] = nil\n"
    "  return value\n"
    "end\n"
    "local function move(a1, f, e, t, a2)\n"
    "  f = argument('i', f, 2, 'move')\n"
    "  e = argument('i', e, 3, 'move')\n"
    "  t = argument('i', t, 4, 'move')\n"
    "  local other = a2 ~= nil\n"
    "  if not other then a2 = a1 end\n"
    "  argument('r', a1, 1, 'move')\n"
    "  argument('w', a2, other and 5 or 1, 'move')\n"
    "  if e >= f then\n"
    "    if not (f > 0 or e < maxinteger + f) then error(\"bad argument #3 to 'move' (too many elements to move)\", 2) end\n"
    "    local n = e - f + 1\n"
    "    if not (t <= maxinteger - n + 1) then error(\"bad argument #4 to 'move' (destination wrap around)\", 2) end\n"
    "    if t > e or t <= f or (other and a1 ~= a2) then\n"
    "      for i = 0, n - 1 do a2[t + i] = a1[f + i] end\n"
    "    else\n"
    "      for i = n - 1, 0, -1 do a2[t + i] = a1[f + i] end\n"
    "    end\n"
    "  end\n"
    "  return a2\n"
    "end\n"
    "return insert, move, remove\n";
const size_t aero_table_chunk_text_length = sizeof aero_table_chunk_text - 1;
const char *const aero_table_chunk_names[AERO_TABLE_CHUNK_FUNCTIONS] = {"insert", "move", "remove"};
