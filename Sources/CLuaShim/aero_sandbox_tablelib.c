// aero_sandbox_tablelib.c — table.insert, table.remove and table.move.
//
// Bounds: Lua's C versions loop over a length a __len metamethod may choose (or over a range
// the caller gives, for move) inside one C call, where no hook fires. Here the arguments are
// checked in C exactly as ltablib.c (Lua 5.4.4) checks them — checktab, luaL_len,
// luaL_checkinteger, the unsigned bounds checks, move's "too many elements to move" and
// "destination wrap around" — so results and messages are Lua's own (the function named as
// the caller named it, the caller's line even in a tail call); only the element loops run as
// Lua (a chunk the host compiles once, upvalues of these C closures), where the instruction
// budget counts every step and the hooks fire. The loops read and write through metamethods
// in the same order as ltablib.c's lua_geti/lua_seti.
#include "aero_sandbox_internal.h"

#define TAB_R 1
#define TAB_W 2
#define TAB_L 4
#define TAB_RW (TAB_R | TAB_W)

// The element loops (the chunk runs with a nil _ENV and reads no global).
const char aero_table_chunk_text[] =
    "local function shift_up(t, e, position)\n"
    "  for i = e, position + 1, -1 do t[i] = t[i - 1] end\n"
    "end\n"
    "local function shift_down(t, position, size)\n"
    "  for i = position, size - 1 do t[i] = t[i + 1] end\n"
    "end\n"
    "local function copy(a1, f, a2, t, n, ascending)\n"
    "  if ascending then\n"
    "    for i = 0, n - 1 do a2[t + i] = a1[f + i] end\n"
    "  else\n"
    "    for i = n - 1, 0, -1 do a2[t + i] = a1[f + i] end\n"
    "  end\n"
    "end\n"
    "return shift_up, shift_down, copy\n";
const size_t aero_table_chunk_text_length = sizeof aero_table_chunk_text - 1;

static int checkfield(lua_State *L, const char *key, int n) {
    lua_pushstring(L, key);
    return (lua_rawget(L, -n) != LUA_TNIL);
}

// ltablib.c's checktab: a table, or a value whose metatable has the required fields.
static void checktab(lua_State *L, int arg, int what) {
    if (lua_type(L, arg) != LUA_TTABLE) {
        int n = 1;
        if (lua_getmetatable(L, arg) && (!(what & TAB_R) || checkfield(L, "__index", ++n)) &&
            (!(what & TAB_W) || checkfield(L, "__newindex", ++n)) && (!(what & TAB_L) || checkfield(L, "__len", ++n))) {
            lua_pop(L, n);
        } else {
            luaL_checktype(L, arg, LUA_TTABLE);
        }
    }
}

static lua_Integer aux_getn(lua_State *L, int n, int what) {
    checktab(L, n, what | TAB_L);
    return luaL_len(L, n);
}

static int sandbox_insert(lua_State *L) {
    lua_Integer e = aux_getn(L, 1, TAB_RW);
    e = (lua_Integer)((lua_Unsigned)e + 1u);  // luaL_intop(+, e, 1): first empty element
    lua_Integer pos;
    switch (lua_gettop(L)) {
    case 2: pos = e; break;
    case 3:
        pos = luaL_checkinteger(L, 2);
        luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2, "position out of bounds");
        if (e > pos) {
            luaL_checkstack(L, 4, "insert");
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_pushvalue(L, 1);
            lua_pushinteger(L, e);
            lua_pushinteger(L, pos);
            lua_call(L, 3, 0);
        }
        break;
    default: return luaL_error(L, "wrong number of arguments to 'insert'");
    }
    lua_seti(L, 1, pos);
    return 0;
}

static int sandbox_remove(lua_State *L) {
    lua_Integer size = aux_getn(L, 1, TAB_RW);
    lua_Integer pos = luaL_optinteger(L, 2, size);
    if (pos != size) luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 1, "position out of bounds");
    lua_geti(L, 1, pos);
    if (pos < size) {
        luaL_checkstack(L, 4, "remove");
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushvalue(L, 1);
        lua_pushinteger(L, pos);
        lua_pushinteger(L, size);
        lua_call(L, 3, 0);
        pos = size;
    }
    lua_pushnil(L);
    lua_seti(L, 1, pos);
    return 1;
}

static int sandbox_move(lua_State *L) {
    lua_Integer f = luaL_checkinteger(L, 2);
    lua_Integer e = luaL_checkinteger(L, 3);
    lua_Integer t = luaL_checkinteger(L, 4);
    int tt = !lua_isnoneornil(L, 5) ? 5 : 1;
    checktab(L, 1, TAB_R);
    checktab(L, tt, TAB_W);
    if (e >= f) {
        luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3, "too many elements to move");
        lua_Integer n = e - f + 1;
        luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4, "destination wrap around");
        int ascending = t > e || t <= f || (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ));
        luaL_checkstack(L, 7, "move");
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_pushvalue(L, 1);
        lua_pushinteger(L, f);
        lua_pushvalue(L, tt);
        lua_pushinteger(L, t);
        lua_pushinteger(L, n);
        lua_pushboolean(L, ascending);
        lua_call(L, 6, 0);
    }
    lua_pushvalue(L, tt);
    return 1;
}

const aero_table_function aero_table_functions[AERO_TABLE_CHUNK_FUNCTIONS] = {
    {"insert", sandbox_insert, 0}, {"remove", sandbox_remove, 1}, {"move", sandbox_move, 2}};
