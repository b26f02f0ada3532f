// aero_sandbox_bounds.c — wrappers that bound work done inside one C call, where no hook
// fires: string.rep (count and result), load (text only, chunk size), setmetatable (no
// __gc, no weak tables, no callable tables that are not functions), xpcall and coroutine
// close/wrap (no policy code once a budget tripped), coroutine creation (charged to the
// instruction budget), and the __index chains table.concat/unpack/sort follow.
#include "aero_sandbox_internal.h"

#include <string.h>

// The bytes tostring would give for a string or number argument; 0 for anything else.
static size_t rep_length_of(lua_State *L, int idx) {
    int type = lua_type(L, idx);
    if (type == LUA_TSTRING) return lua_rawlen(L, idx);
    if (type != LUA_TNUMBER) return 0;
    lua_pushvalue(L, idx);  // converted in place: a copy
    size_t length = 0;
    lua_tolstring(L, -1, &length);
    lua_pop(L, 1);
    return length;
}

// string.rep copies once per repetition inside one VM instruction, even for an empty string
// (rep("", 2^62) never returns): the count and the result are bounded before it runs.
int aero_sandbox_rep(lua_State *L) {
    // The count as the original's luaL_checkinteger sees it: a numeric string counts too
    // ((''):rep('1e18') would loop forever). Converted into a copy; the argument is unchanged.
    int is_number = 0;
    lua_Number count = lua_tonumberx(L, 2, &is_number);
    if (is_number) {
        if (count > 0) {
            if (count > AERO_REP_COUNT_MAX) {
                return luaL_error(L, "bad argument #2 to 'rep' (more than %d repetitions; the sandbox bound)", AERO_REP_COUNT_MAX);
            }
            lua_Number bytes = (lua_Number)(rep_length_of(L, 1) + rep_length_of(L, 3)) * count;
            if (bytes > AERO_REP_BYTES_MAX) {
                return luaL_error(L, "string.rep: result larger than %d bytes (the sandbox bound)", AERO_REP_BYTES_MAX);
            }
        }
    }
    return aero_original_rep(L);
}

// load(): text chunks only (mode forced to "t"), in the sandbox environment unless the
// caller gives its own table. The parser runs in C where no hook fires: a chunk is bounded
// to AERO_LOAD_BYTES_MAX, whether given as a string or by a reader function.
static int bounded_reader(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 0, 1);
    // A number piece is a string piece to lua_load (it converts it): count it the same way,
    // converted here so that its length is known.
    if (lua_type(L, -1) == LUA_TNUMBER) lua_tolstring(L, -1, NULL);
    if (lua_type(L, -1) == LUA_TSTRING) {
        lua_Integer total = lua_tointeger(L, lua_upvalueindex(2)) + (lua_Integer)lua_rawlen(L, -1);
        if (total > AERO_LOAD_BYTES_MAX) {
            lua_pushfstring(L, "chunk larger than %d bytes (the sandbox bound)", AERO_LOAD_BYTES_MAX);
            return lua_error(L);  // no position, as error(message, 0)
        }
        lua_pushinteger(L, total);
        lua_replace(L, lua_upvalueindex(2));
    }
    return 1;
}

int aero_sandbox_load(lua_State *L) {
    lua_settop(L, 4);
    if (lua_isnil(L, 4)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
        lua_replace(L, 4);
    }
    if (lua_type(L, 1) == LUA_TSTRING) {
        if (lua_rawlen(L, 1) > AERO_LOAD_BYTES_MAX) {
            luaL_pushfail(L);
            lua_pushfstring(L, "chunk larger than %d bytes (the sandbox bound)", AERO_LOAD_BYTES_MAX);
            return 2;
        }
    } else if (lua_type(L, 1) == LUA_TFUNCTION) {
        lua_pushvalue(L, 1);
        lua_pushinteger(L, 0);
        lua_pushcclosure(L, bounded_reader, 2);
        lua_replace(L, 1);
    }
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    return aero_original_load(L);
}

// No finalizers: nothing may run code at garbage collection. No weak tables: an ephemeron
// (weak-keyed) chain makes the collector's atomic phase quadratic, in C, where no hook fires.
// No callable tables: Lua resolves a __call chain in C with no length limit, shifting the
// stack one slot per step (a self-referential __call ran for minutes). These are checked where
// the metatable is set; a field added to a metatable later is not seen here, which the
// supervisor's deadline (PolicyWorker) covers.
int aero_sandbox_setmetatable(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int gc = lua_rawget(L, 2);
        lua_pop(L, 1);
        if (gc != LUA_TNIL) return luaL_error(L, "setmetatable: __gc is not allowed in the policy sandbox");
        lua_pushliteral(L, "__mode");
        int mode = lua_rawget(L, 2);
        lua_pop(L, 1);
        if (mode != LUA_TNIL) return luaL_error(L, "setmetatable: __mode (weak tables) is not allowed in the policy sandbox");
        lua_pushliteral(L, "__call");
        int call = lua_rawget(L, 2);
        lua_pop(L, 1);
        if (call != LUA_TNIL && call != LUA_TFUNCTION) {
            return luaL_error(L, "setmetatable: __call must be a function in the policy sandbox");
        }
    }
    aero_populate_if_library(L, 1);
    return aero_original_setmetatable(L);
}

int aero_sandbox_getmetatable(lua_State *L) {
    aero_populate_if_library(L, 1);
    return aero_original_getmetatable(L);
}

// An error raised by the budget hook leaves hooks disabled in its thread until a pcall
// boundary restores them (Lua 5.4 ldo.c). Lua code that runs before that point — an xpcall
// message handler, or __close run by coroutine.close/wrap on the dead thread — would run
// unbudgeted. So once a budget has tripped, these wrappers run no policy code.
static int guarded_handler(lua_State *L) {
    lua_settop(L, 1);
    if (aero_budget_tripped(aero_budget_of(L))) return 1;  // the error object, unchanged
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

int aero_sandbox_xpcall(lua_State *L) {
    if (lua_type(L, 2) == LUA_TFUNCTION) {
        lua_pushvalue(L, 2);
        lua_pushcclosure(L, guarded_handler, 1);
        lua_replace(L, 2);
    }
    return aero_original_xpcall(L);
}

int aero_sandbox_coclose(lua_State *L) {
    if (aero_budget_tripped(aero_budget_of(L))) return luaL_error(L, "policy budget exceeded");
    return aero_original_coclose(L);
}

// Upvalue: the coroutine. Resumes it; on error closes it (unless a budget has tripped) and
// raises the error object as it is.
static int wrapped_coroutine(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checkstack(L, 3, "coroutine.wrap");
    lua_pushcfunction(L, aero_original_coresume);
    lua_insert(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 2);
    lua_call(L, n + 1, LUA_MULTRET);
    if (lua_toboolean(L, 1)) return lua_gettop(L) - 1;
    lua_settop(L, 2);
    if (!aero_budget_tripped(aero_budget_of(L))) {
        lua_pushcfunction(L, aero_original_costatus);
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_call(L, 1, 1);
        int dead = strcmp(lua_tostring(L, -1), "dead") == 0;
        lua_pop(L, 1);
        if (dead) {
            lua_pushcfunction(L, aero_original_coclose);
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_call(L, 1, 0);
        }
    }
    return lua_error(L);
}

// A new coroutine starts a fresh count-hook interval (Lua copies the hook, not the count), so
// up to one interval of its instructions is never counted: many short coroutines hid most of
// their work (4.5 M instructions counted as 360,000). Each new coroutine is charged one
// interval up front, so the count is never below the instructions run.
static void charge_coroutine(lua_State *L) {
    aero_budget *budget = aero_budget_of(L);
    budget->instructions_used += budget->hook_interval;
    if (budget->instruction_limit > 0 && budget->instructions_used > budget->instruction_limit) {
        budget->instructions_exceeded = 1;
    }
    if (aero_budget_tripped(budget)) luaL_error(L, "instruction budget exceeded");
}

int aero_sandbox_cocreate(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    charge_coroutine(L);
    return aero_original_cocreate(L);
}

int aero_sandbox_cowrap(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    charge_coroutine(L);
    lua_State *thread = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, thread, 1);
    lua_pushcclosure(L, wrapped_coroutine, 1);
    return 1;
}

// table.concat, table.unpack and table.sort read elements with lua_geti inside
// one C call: each read follows the table's __index chain, up to Lua's own 2,000 tables, with
// no hook (7 to 20 s over a 2,000-table chain). The chain of tables is bounded before they
// run; an __index function is called like any function, where the hooks fire.
void aero_check_index_chain(lua_State *L, int idx, const char *name) {
    if (lua_type(L, idx) != LUA_TTABLE) return;
    luaL_checkstack(L, 3, name);
    lua_pushvalue(L, idx);
    for (int depth = 0;; depth++) {
        if (!lua_getmetatable(L, -1)) break;
        lua_pushliteral(L, "__index");
        lua_rawget(L, -2);
        lua_remove(L, -2);
        lua_remove(L, -2);
        if (lua_type(L, -1) != LUA_TTABLE) break;
        if (depth + 1 > AERO_INDEX_CHAIN_MAX) {
            luaL_error(L, "bad argument #%d to '%s' (__index chain longer than %d tables; the sandbox bound)",
                       idx, name, AERO_INDEX_CHAIN_MAX);
        }
    }
    lua_pop(L, 1);
}

int aero_bounded_concat(lua_State *L) { aero_check_index_chain(L, 1, "concat"); return aero_original_concat(L); }
int aero_bounded_unpack(lua_State *L) { aero_check_index_chain(L, 1, "unpack"); return aero_original_unpack(L); }
