// aero_tooling.c — line coverage and facts-read recording for `aerodb-policy` (see
// aero_tooling.h). Runs inside the budget hook and the facts metamethods: nothing here
// raises or allocates; it writes only into the host's buffers, within their sizes.
#include "aero_lua.h"
#include "aero_tooling.h"

#include <string.h>

static aero_tooling *tooling_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud ? ((aero_budget *)ud)->tooling : NULL;
}

int aero_tooling_hook_mask(lua_State *L) {
    aero_tooling *tooling = tooling_of(L);
    return tooling && tooling->coverage_source ? LUA_MASKLINE : 0;
}

void aero_tooling_line(lua_State *L, lua_Debug *ar) {
    aero_tooling *tooling = tooling_of(L);
    if (!tooling || !tooling->coverage_source || !tooling->line_counts) return;
    int line = ar->currentline;
    if (line < 0 || line >= tooling->lines_max) return;
    if (!lua_getinfo(L, "S", ar) || strcmp(ar->source, tooling->coverage_source) != 0) return;
    if (tooling->line_counts[line] < UINT32_MAX) tooling->line_counts[line]++;
}

// Appends one read; the key (a string at key_idx, or an integer) and the child (a table on
// the stack at value_idx, or none) as given.
static void record(lua_State *L, aero_tooling *tooling, int proxy, int key_idx, int value_idx, int kind) {
    if (tooling->reads_count >= tooling->reads_max) {
        tooling->reads_truncated = 1;
        return;
    }
    aero_facts_read read = {0};
    read.parent = lua_topointer(L, proxy);
    read.kind = kind;
    if (value_idx != 0 && lua_type(L, value_idx) == LUA_TTABLE) read.child = lua_topointer(L, value_idx);
    if (kind != AERO_READ_WHOLE) {
        int type = lua_type(L, key_idx);
        if (type == LUA_TSTRING) {
            size_t length = 0;
            const char *key = lua_tolstring(L, key_idx, &length);  // a string: no conversion
            if (length > tooling->key_bytes_max - tooling->key_bytes_used) {
                tooling->reads_truncated = 1;
                return;
            }
            memcpy(tooling->key_bytes + tooling->key_bytes_used, key, length);
            read.kind = AERO_READ_MEMBER;
            read.key_offset = tooling->key_bytes_used;
            read.key_length = length;
            tooling->key_bytes_used += length;
        } else if (type == LUA_TNUMBER && lua_isinteger(L, key_idx)) {
            read.kind = AERO_READ_INDEX;
            read.index = (int64_t)lua_tointegerx(L, key_idx, NULL);
        } else {
            return;  // no JSON path has such a key; the read gives nil
        }
    }
    tooling->reads[tooling->reads_count++] = read;
}

void aero_tooling_facts_read(lua_State *L, int proxy, int key) {
    aero_tooling *tooling = tooling_of(L);
    if (!tooling || !tooling->reads) return;
    record(L, tooling, lua_absindex(L, proxy), lua_absindex(L, key), lua_gettop(L), AERO_READ_MEMBER);
}

void aero_tooling_facts_whole(lua_State *L, int proxy, int raw) {
    aero_tooling *tooling = tooling_of(L);
    if (!tooling || !tooling->reads) return;
    proxy = lua_absindex(L, proxy);
    record(L, tooling, proxy, 0, 0, AERO_READ_WHOLE);
    if (raw == 0 || !lua_checkstack(L, 3)) return;
    raw = lua_absindex(L, raw);
    lua_pushnil(L);
    while (lua_next(L, raw) != 0) {  // a raw table with string or integer keys: never raises
        record(L, tooling, proxy, lua_gettop(L) - 1, lua_gettop(L), AERO_READ_MEMBER);
        lua_pop(L, 1);
    }
}
