// aero_sandbox_answer.c — validating what a policy's function returns.
//
// Bounds: the answer is read with raw reads only (no metamethod of the policy runs in the
// host), at most AERO_REASONS_MAX reasons of at most AERO_REASON_BYTES_MAX bytes each.
#include "aero_sandbox_internal.h"

// ---- The answer ------------------------------------------------------------------------

// Pushes how a value the policy returned is named in messages.
static const char *describe_value(lua_State *L, int idx) {
    int type = lua_type(L, idx);
    if (type == LUA_TSTRING) return lua_pushliteral(L, "an empty string");
    if (type == LUA_TTABLE) return lua_pushliteral(L, "a table that is not a list of non-empty strings");
    return lua_pushfstring(L, "a %s value", lua_typename(L, type));
}

// Answers code 2 with the message on top of the stack: returns exactly [2, message].
static int answer_failure(lua_State *L) {
    lua_pushinteger(L, 2);
    lua_insert(L, -2);
    return 2;
}

// validate(fn, facts) -> code, payload: calls the policy and checks its answer without
// trusting it (raw reads only; no metamethod of the answer runs). 0: no objection; 1: a
// fresh list of the reasons; 2: a message saying what is wrong with the answer. Every
// return leaves exactly the code and the payload as the top two values.
int aero_validate_answer(lua_State *L) {
    lua_settop(L, 2);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);
    const int result = 3;
    int type = lua_type(L, result);
    if (type == LUA_TNIL) {
        lua_pushinteger(L, 0);
        lua_pushnil(L);
        return 2;
    }
    if (type == LUA_TSTRING && lua_rawlen(L, result) > 0) {
        size_t length = lua_rawlen(L, result);
        if (length > AERO_REASON_BYTES_MAX) {
            lua_pushfstring(L, "returned a reason of %I bytes; at most %d", (lua_Integer)length, AERO_REASON_BYTES_MAX);
            return answer_failure(L);
        }
        lua_pushinteger(L, 1);
        lua_createtable(L, 1, 0);
        lua_pushvalue(L, result);
        lua_rawseti(L, -2, 1);
        return 2;
    }
    if (type == LUA_TTABLE) {
        lua_Integer count = (lua_Integer)lua_rawlen(L, result);
        if (count == 0) {
            lua_pushliteral(L, "returned an empty list (return nil for no objection)");
            return answer_failure(L);
        }
        if (count > AERO_REASONS_MAX) {
            lua_pushfstring(L, "returned %I reasons; at most %d", count, AERO_REASONS_MAX);
            return answer_failure(L);
        }
        lua_createtable(L, (int)count, 0);
        int reasons = lua_gettop(L);
        for (lua_Integer i = 1; i <= count; i++) {
            if (lua_rawgeti(L, result, i) != LUA_TSTRING || lua_rawlen(L, -1) == 0) {
                const char *what = describe_value(L, -1);
                lua_pushfstring(L, "reason %I is %s, not a non-empty string", i, what);
                return answer_failure(L);
            }
            size_t length = lua_rawlen(L, -1);
            if (length > AERO_REASON_BYTES_MAX) {
                lua_pushfstring(L, "reason %I has %I bytes; at most %d", i, (lua_Integer)length, AERO_REASON_BYTES_MAX);
                return answer_failure(L);
            }
            lua_rawseti(L, reasons, i);
        }
        lua_Integer keys = 0;
        lua_pushnil(L);
        while (lua_next(L, result) != 0) {
            lua_pop(L, 1);
            if (++keys > count) {
                lua_pushfstring(L, "returned a table with keys other than 1..%I", count);
                return answer_failure(L);
            }
        }
        lua_pushinteger(L, 1);
        lua_pushvalue(L, reasons);
        return 2;
    }
    const char *what = describe_value(L, result);
    lua_pushfstring(L, "returned %s (expected nil, a non-empty string, or a list of non-empty strings)", what);
    return answer_failure(L);
}
