// aero_lua.c — allocator, budget hook and protected entry points. See aero_lua.h for the
// rule that no Lua error ever longjmps across a Swift frame.
#include "aero_lua.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void aero_budget_reset(aero_budget *budget) {
    budget->memory_used_bytes = 0;
    budget->memory_peak_bytes = 0;
    budget->memory_exceeded = 0;
    budget->instructions_used = 0;
    budget->instructions_exceeded = 0;
    budget->time_exceeded = 0;
    budget->where_source[0] = '\0';
    budget->where_line = -1;
    budget->printed_lines = 0;
    budget->printed_bytes = 0;
    budget->printed_truncated = 0;
}

uint64_t aero_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// The lua_Alloc contract: nsize == 0 frees; otherwise (re)allocate. When ptr is NULL,
// osize encodes the object type, not a size, so it is not subtracted.
static void *aero_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    aero_budget *budget = (aero_budget *)ud;
    size_t old_bytes = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        budget->memory_used_bytes -= old_bytes;
        return NULL;
    }
    if (nsize > old_bytes) {
        size_t growth = nsize - old_bytes;
        if (budget->memory_limit_bytes != 0 &&
            (growth > budget->memory_limit_bytes ||
             budget->memory_used_bytes > budget->memory_limit_bytes - growth)) {
            // Refused: Lua raises a memory error. Sticky, so a pcall in the policy that
            // catches it does not make the policy pass.
            budget->memory_exceeded = 1;
            return NULL;
        }
    }
    void *block = realloc(ptr, nsize);
    if (block == NULL) {
        budget->memory_exceeded = 1;
        return NULL;
    }
    budget->memory_used_bytes = budget->memory_used_bytes - old_bytes + nsize;
    if (budget->memory_used_bytes > budget->memory_peak_bytes) {
        budget->memory_peak_bytes = budget->memory_used_bytes;
    }
    return block;
}

static int aero_panic(lua_State *L) {
    // Reached only if an error escapes every protected call: a bug in the host, never a
    // policy's doing. Crashing is right; continuing would be undefined behaviour.
    (void)L;
    abort();
}

lua_State *aero_state_new(aero_budget *budget) {
    lua_State *L = lua_newstate(aero_alloc, budget);
    if (L != NULL) {
        lua_atpanic(L, aero_panic);
    }
    return L;
}

static aero_budget *aero_budget_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (aero_budget *)ud;
}

static void aero_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    aero_budget *budget = aero_budget_of(L);
    budget->instructions_used += budget->hook_interval;
    if (budget->instruction_limit > 0 && budget->instructions_used > budget->instruction_limit) {
        budget->instructions_exceeded = 1;
    }
    if (budget->deadline_ns != 0 && aero_monotonic_ns() > budget->deadline_ns) {
        budget->time_exceeded = 1;
    }
    if (budget->instructions_exceeded || budget->time_exceeded || budget->memory_exceeded) {
        // Fire on every instruction from now on, in this thread, so the error cannot be
        // outrun by a policy that keeps catching it.
        lua_sethook(L, aero_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, budget->instructions_exceeded ? "instruction budget exceeded"
                      : budget->time_exceeded       ? "time budget exceeded"
                                                    : "memory budget exceeded");
    }
}

void aero_install_budget_hook(lua_State *L) {
    aero_budget *budget = aero_budget_of(L);
    int interval = budget->hook_interval > 0 ? budget->hook_interval : 1000;
    budget->hook_interval = interval;
    lua_sethook(L, aero_hook, LUA_MASKCOUNT, interval);
}

int aero_message_handler(lua_State *L) {
    aero_budget *budget = aero_budget_of(L);
    lua_Debug ar;
    int found = 0;
    // The first Lua frame, preferring code that is not the host's own prelude (whose chunk
    // names start with "=aerodb-"), so that errors point at the policy's line.
    for (int level = 0; lua_getstack(L, level, &ar) && level < AERO_HANDLER_LEVELS_MAX; level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline >= 0) {
            int host_code = strncmp(ar.source, "=aerodb-", 8) == 0;
            if (found && host_code) continue;
            strncpy(budget->where_source, ar.short_src, AERO_WHERE_BYTES_MAX - 1);
            budget->where_source[AERO_WHERE_BYTES_MAX - 1] = '\0';
            budget->where_line = ar.currentline;
            if (!host_code) break;
            found = 1;
        }
    }
    return 1; // the error object, unchanged
}

int aero_pcall(lua_State *L, int nargs, int nresults) {
    int function_index = lua_gettop(L) - nargs;
    // A light C function: pushing it allocates nothing and cannot raise.
    lua_pushcfunction(L, aero_message_handler);
    lua_insert(L, function_index);
    int status = lua_pcall(L, nargs, nresults, function_index);
    lua_remove(L, function_index);
    return status;
}

int aero_load_text(lua_State *L, const char *bytes, size_t length, const char *chunkname) {
    return luaL_loadbufferx(L, bytes, length, chunkname, "t");
}

const char *aero_string_at(lua_State *L, int idx, size_t *length) {
    if (lua_type(L, idx) != LUA_TSTRING) {
        if (length) *length = 0;
        return NULL;
    }
    return lua_tolstring(L, idx, length);
}

// Opens the libraries a sandbox may start from (never io, os, package or debug).
// Runs as a lua_CFunction under aero_pcall because luaL_requiref allocates.
static int aero_open_pure_libraries_cfunction(lua_State *L) {
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    lua_settop(L, 0);
    return 0;
}

int aero_open_pure_libraries(lua_State *L) {
    lua_pushcfunction(L, aero_open_pure_libraries_cfunction);
    return aero_pcall(L, 0, 0);
}
