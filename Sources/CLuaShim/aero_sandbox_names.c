// aero_sandbox_names.c — how the sandbox names values in text: tostring, print and
// string.format's %s/%p, and print's bounded sink.
//
// Bounds: no text a policy can make shows an address (an address differs between runs and
// reveals host code, tostring(print)); printed output is at most printed_lines_max lines and
// printed_bytes_max bytes, each line cut at printed_line_bytes_max, never written to stdout.
#include "aero_sandbox_internal.h"

#include <string.h>

// ---- Stable names of tables and functions ----------------------------------------------
// Lua names a table, function, thread or userdata by its address ("table: 0x55d0…"): it
// differs between runs (allocation addresses, ASLR) and reveals host addresses
// (tostring(print)). tostring, print and string.format's %s name such a value by its type (or
// __name) and a per-run counter in the order values are first named ("table: 1"), which is the
// same in every run of the same policy on the same facts. A __tostring metamethod is honoured
// as in Lua. The counter map lives in the registry, out of the sandbox's reach.
static char printed_key;  // its address keys the printed-lines table in the registry
static char stable_ids_key;  // registry: object -> integer id; [false] = last id given

static int names_by_address(int type) {
    return type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TTHREAD || type == LUA_TUSERDATA ||
           type == LUA_TLIGHTUSERDATA;
}

lua_Integer aero_stable_id_given(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 2, "stable id");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &stable_ids_key);
    lua_pushvalue(L, idx);
    lua_Integer id = lua_rawget(L, -2) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
    lua_pop(L, 2);
    return id;
}

lua_Integer aero_stable_id(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 4, "stable id");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &stable_ids_key);
    int ids = lua_gettop(L);
    lua_pushvalue(L, idx);
    lua_Integer id;
    if (lua_rawget(L, ids) == LUA_TNUMBER) {
        id = lua_tointeger(L, -1);
    } else {
        lua_pushboolean(L, 0);
        lua_rawget(L, ids);
        id = lua_tointeger(L, -1) + 1;
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
        lua_pushinteger(L, id);
        lua_rawset(L, ids);
        lua_pushvalue(L, idx);
        lua_pushinteger(L, id);
        lua_rawset(L, ids);
    }
    lua_settop(L, ids - 1);
    return id;
}

// Pushes the stable name of the value at idx when Lua would name it by its address; returns
// 0 (pushing nothing) when Lua's own conversion says it without an address.
int aero_push_stable_name(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (!names_by_address(lua_type(L, idx))) return 0;
    if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    luaL_checkstack(L, 4, "tostring");
    const char *kind = luaL_typename(L, idx);
    int name_slot = 0;
    if (luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
        if (lua_type(L, -1) == LUA_TSTRING) {
            kind = lua_tostring(L, -1);
            name_slot = lua_gettop(L);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_Integer id = aero_stable_id(L, idx);
    lua_pushfstring(L, "%s: %I", kind, id);
    if (name_slot) lua_remove(L, name_slot);
    return 1;
}

// luaL_tolstring with stable names: pushes the string and returns it.
static const char *stable_tolstring(lua_State *L, int idx, size_t *length) {
    if (aero_push_stable_name(L, idx)) return lua_tolstring(L, -1, length);
    return luaL_tolstring(L, idx, length);
}

int aero_sandbox_tostring(lua_State *L) {
    luaL_checkany(L, 1);
    stable_tolstring(L, 1, NULL);
    return 1;
}

// ---- print ----------------------------------------------------------------------------

// print(...): as Lua's own print (every argument through luaL_tolstring, which is what
// tostring does, joined by tabs), but the line goes into the registry's printed table, never
// to stdout, within the bounds: a line is cut at printed_line_bytes_max and at what is left
// of printed_bytes_max, and lines past printed_lines_max are dropped; either marks the output
// truncated. Only the kept bytes are copied.
int aero_sandbox_print(lua_State *L) {
    aero_budget *budget = aero_budget_of(L);
    char line[AERO_PRINTED_LINE_BYTES_MAX];
    size_t cap = budget->printed_line_bytes_max < sizeof line ? budget->printed_line_bytes_max : sizeof line;
    size_t kept = 0, total = 0;
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        if (i > 1) {
            if (kept < cap) line[kept++] = '\t';
            total++;
        }
        size_t length = 0;
        const char *text = stable_tolstring(L, i, &length);
        size_t copied = cap - kept < length ? cap - kept : length;
        memcpy(line + kept, text, copied);
        kept += copied;
        total += length;
        lua_pop(L, 1);
    }
    if (budget->printed_lines >= budget->printed_lines_max || budget->printed_bytes >= budget->printed_bytes_max) {
        budget->printed_truncated = 1;
        return 0;
    }
    size_t room = budget->printed_bytes_max - budget->printed_bytes;
    if (room > cap) room = cap;
    size_t length = total;
    if (length > room) {
        length = room;
        budget->printed_truncated = 1;
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &printed_key);
    lua_pushlstring(L, line, length);
    lua_rawseti(L, -2, budget->printed_lines + 1);
    budget->printed_lines++;
    budget->printed_bytes += length;
    return 0;
}

void aero_sandbox_push_printed(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &printed_key);
}

// string.format: '%p' prints an address (different in every run) and is refused; a '%s' of a
// value Lua would name by its address gets its stable name instead (see stable names above).
// The directives are scanned as lstrlib.c reads them; anything malformed is left for the
// original to report.
int aero_sandbox_format(lua_State *L) {
    size_t length = 0;
    const char *format = luaL_checklstring(L, 1, &length);
    int argument = 1;
    for (size_t i = 0; i < length; i++) {
        if (format[i] != '%') continue;
        if (++i >= length) break;
        if (format[i] == '%') continue;
        argument++;
        while (i < length && strchr("-+ #0123456789.", format[i]) != NULL) i++;
        if (i >= length) break;
        if (format[i] == 'p') {
            return luaL_error(L, "bad argument #%d to 'format' ('%%p' shows an address; not in the policy sandbox)", argument);
        }
        if (format[i] == 's' && argument <= lua_gettop(L) && aero_push_stable_name(L, argument)) {
            lua_replace(L, argument);
        }
    }
    return aero_original_format(L);
}

void aero_sandbox_names_prepare(lua_State *L) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &printed_key);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &stable_ids_key);
}
