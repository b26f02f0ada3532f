// aero_sandbox_patterns.c — string.find/match/gmatch/gsub with bounds.
//
// Bounds: Lua's backtracking matcher runs in C where no hook fires. Each call is checked
// before it runs (subject <= AERO_PATTERN_SUBJECT_BYTES_MAX, pattern <= AERO_PATTERN_BYTES_MAX)
// and then runs on the step-counted copy of Lua's matcher (aero_match.c), which stops it
// after AERO_PATTERN_STEPS_MAX steps. gsub's replacement escapes (work without memory) are
// bounded before the call. docs/sandbox.md lists the values and what they cost.
#include "aero_sandbox_internal.h"

#include <string.h>

// Raises unless the subject and pattern (arguments 1 and 2) are within the size bounds.
static void check_sizes(lua_State *L, const char *name) {
    size_t n = 0, m = 0;
    luaL_checklstring(L, 1, &n);
    luaL_checklstring(L, 2, &m);
    if (n > AERO_PATTERN_SUBJECT_BYTES_MAX) {
        luaL_error(L, "string.%s: subject of %d bytes exceeds the sandbox bound of %d bytes", name, (int)n,
                   AERO_PATTERN_SUBJECT_BYTES_MAX);
    }
    if (m > AERO_PATTERN_BYTES_MAX) {
        luaL_error(L, "string.%s: pattern of %d bytes exceeds the sandbox bound of %d bytes", name, (int)m,
                   AERO_PATTERN_BYTES_MAX);
    }
}

int aero_bounded_find(lua_State *L) { check_sizes(L, "find"); return aero_match_find(L); }
int aero_bounded_match(lua_State *L) { check_sizes(L, "match"); return aero_match_match(L); }
int aero_bounded_gmatch(lua_State *L) { check_sizes(L, "gmatch"); return aero_match_gmatch(L); }
// gsub with a replacement string copies the replacement once per match inside one C call.
// Its literal bytes go into the result, so the memory budget bounds them; but each '%0'..'%9'
// of an empty capture costs work and no memory (a 1 MiB replacement of '%0' over an empty
// pattern's 60,001 matches ran for minutes). The escapes times the most matches there can be
// (subject bytes + 1, or the caller's max_n) is bounded before the call.
int aero_bounded_gsub(lua_State *L) {
    check_sizes(L, "gsub");
    int type = lua_type(L, 3);
    if (type == LUA_TSTRING || type == LUA_TNUMBER) {
        size_t subject = lua_rawlen(L, 1), length = 0;
        lua_pushvalue(L, 3);  // a copy: converting a number in place would change the argument
        const char *replacement = lua_tolstring(L, -1, &length);
        double escapes = 0;
        for (size_t i = 0; i + 1 < length; i++) {
            if (replacement[i] == '%') { escapes++; i++; }
        }
        lua_pop(L, 1);
        double matches = (double)subject + 1;
        int is_number = 0;
        lua_Integer most = lua_tointegerx(L, 4, &is_number);
        if (is_number && (double)most < matches) matches = most < 0 ? 0 : (double)most;
        if (escapes * matches > AERO_GSUB_ESCAPES_MAX) {
            return luaL_error(L, "string.gsub: %d captures in the replacement times up to %d matches exceeds the sandbox "
                                 "bound of %d (use a function replacement)",
                              (int)escapes, (int)matches, AERO_GSUB_ESCAPES_MAX);
        }
    }
    return aero_match_gsub(L);
}
