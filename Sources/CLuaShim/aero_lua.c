// aero_lua.c — allocator, budget hook and protected entry points. See aero_lua.h for the
// rule that no Lua error ever longjmps across a Swift frame.
#include "aero_lua.h"
#include "aero_tooling.h"

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

uint64_t aero_thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void aero_start_time_budget(aero_budget *budget, uint64_t limit_ms) {
    budget->time_exceeded = 0;
    budget->cpu_limit_ns = limit_ms * 1000000ull;
    budget->cpu_start_ns = aero_thread_cpu_ns();
    budget->deadline_ns = aero_monotonic_ns() + budget->cpu_limit_ns;
}

// Once the wall deadline has passed, the budget is spent only when the thread's CPU time is.
// Otherwise the thread was preempted; move the wall deadline to the earliest moment the CPU
// budget could run out (CPU time grows no faster than wall time), so the fast path stays a
// wall-clock comparison.
int aero_time_budget_spent(aero_budget *budget, uint64_t now_ns) {
    if (budget->deadline_ns == 0 || now_ns <= budget->deadline_ns) return 0;
    uint64_t used_ns = aero_thread_cpu_ns() - budget->cpu_start_ns;
    if (used_ns >= budget->cpu_limit_ns) return 1;
    budget->deadline_ns = now_ns + (budget->cpu_limit_ns - used_ns);
    return 0;
}

int aero_budget_recheck(aero_budget *budget) {
    if (budget->instruction_limit > 0 && budget->instructions_used > budget->instruction_limit) {
        budget->instructions_exceeded = 1;
    }
    // The CPU clock itself, not the wall-clock shortcut: a call that returned late must be
    // caught now, whatever the hook last saw.
    if (budget->deadline_ns != 0 && aero_thread_cpu_ns() - budget->cpu_start_ns >= budget->cpu_limit_ns) {
        budget->time_exceeded = 1;
    }
    if (budget->memory_limit_bytes != 0 && budget->memory_used_bytes > budget->memory_limit_bytes) {
        budget->memory_exceeded = 1;
    }
    return budget->instructions_exceeded || budget->time_exceeded || budget->memory_exceeded;
}

// ---- The small-block arena ----------------------------------------------------------
// A fresh state per policy run makes thousands of small allocations and frees them all at
// lua_close; glibc malloc was a quarter of a run's time. Blocks of up to
// AERO_ARENA_SMALL_BYTES_MAX come from one fixed region per state (bump allocation, one free
// list per 16-byte size class); larger blocks, and everything once the region is full, come
// from malloc. The region is reused by the next state on the same thread. Budget accounting
// is unchanged: it charges the sizes Lua asks for, whichever source serves them.
//
// Every block malloc serves is linked into the arena's list of large blocks (a 16-byte
// header), so the arena knows all the memory of its state. A sandbox state, where no
// finalizer can exist (the sandbox refuses __gc, and nothing else in it has one) and no
// to-be-closed variable is pending once its last call has returned, is then released in
// bulk (aero_state_close with budget->release_in_bulk): the large blocks freed and the
// region kept, instead of lua_close visiting and freeing every object one by one (a fifth
// of a fresh sandbox's instructions). Any other state is closed by lua_close.
#define AERO_ARENA_BYTES (256 * 1024)
#define AERO_ARENA_SMALL_BYTES_MAX 256
#define AERO_ARENA_CLASS_BYTES 16
#define AERO_ARENA_CLASSES (AERO_ARENA_SMALL_BYTES_MAX / AERO_ARENA_CLASS_BYTES)

// The header of a block served by malloc: a node of the arena's circular list. 16 bytes,
// so the block after it keeps malloc's alignment.
typedef struct large_block {
    struct large_block *prev, *next;
} large_block;

typedef struct aero_arena {
    uint8_t *base;
    size_t used;
    void *free_lists[AERO_ARENA_CLASSES + 1];
    large_block large;  // sentinel of the list of malloc'd blocks
} aero_arena;

static void large_link(aero_arena *arena, large_block *block) {
    block->next = arena->large.next;
    block->prev = &arena->large;
    arena->large.next->prev = block;
    arena->large.next = block;
}

static void large_unlink(large_block *block) {
    block->prev->next = block->next;
    block->next->prev = block->prev;
}

static void *large_malloc(aero_arena *arena, size_t bytes) {
    if (arena == NULL) return malloc(bytes);
    if (bytes > SIZE_MAX - sizeof(large_block)) return NULL;
    large_block *block = (large_block *)malloc(sizeof(large_block) + bytes);
    if (block == NULL) return NULL;
    large_link(arena, block);
    return block + 1;
}

static void large_free(aero_arena *arena, void *pointer) {
    if (arena == NULL) {
        free(pointer);
        return;
    }
    large_block *block = (large_block *)pointer - 1;
    large_unlink(block);
    free(block);
}

static void *large_realloc(aero_arena *arena, void *pointer, size_t bytes) {
    if (arena == NULL) return realloc(pointer, bytes);
    if (bytes > SIZE_MAX - sizeof(large_block)) return NULL;
    large_block *block = (large_block *)pointer - 1;
    large_unlink(block);
    large_block *grown = (large_block *)realloc(block, sizeof(large_block) + bytes);
    if (grown == NULL) {
        large_link(arena, block);  // realloc failed: the old block is unchanged
        return NULL;
    }
    large_link(arena, grown);
    return grown + 1;
}

// Frees every malloc'd block of the arena.
static void large_free_all(aero_arena *arena) {
    large_block *block = arena->large.next;
    while (block != &arena->large) {
        large_block *next = block->next;
        free(block);
        block = next;
    }
    arena->large.next = arena->large.prev = &arena->large;
}

// One idle arena per thread, kept for the next state (a state lives on one thread).
static _Thread_local aero_arena *idle_arena = NULL;

static aero_arena *arena_acquire(void) {
    aero_arena *arena = idle_arena;
    if (arena != NULL) {
        idle_arena = NULL;
    } else {
        arena = (aero_arena *)malloc(sizeof(aero_arena));
        if (arena == NULL) return NULL;
        arena->base = (uint8_t *)malloc(AERO_ARENA_BYTES);
        if (arena->base == NULL) {
            free(arena);
            return NULL;
        }
    }
    arena->used = 0;
    memset(arena->free_lists, 0, sizeof(arena->free_lists));
    arena->large.next = arena->large.prev = &arena->large;
    return arena;
}

static void arena_release(aero_arena *arena) {
    if (arena == NULL) return;
    large_free_all(arena);  // none left after lua_close; all of them after a bulk release
    if (idle_arena == NULL) {
        idle_arena = arena;
    } else {
        free(arena->base);
        free(arena);
    }
}

static int arena_owns(const aero_arena *arena, const void *block) {
    return arena != NULL && (const uint8_t *)block >= arena->base &&
           (const uint8_t *)block < arena->base + AERO_ARENA_BYTES;
}

static size_t arena_class(size_t bytes) {
    return (bytes + AERO_ARENA_CLASS_BYTES - 1) / AERO_ARENA_CLASS_BYTES;
}

static void *arena_take(aero_arena *arena, size_t bytes) {
    if (arena == NULL || bytes > AERO_ARENA_SMALL_BYTES_MAX) return NULL;
    size_t size_class = arena_class(bytes);
    void *block = arena->free_lists[size_class];
    if (block != NULL) {
        arena->free_lists[size_class] = *(void **)block;
        return block;
    }
    size_t class_bytes = size_class * AERO_ARENA_CLASS_BYTES;
    if (AERO_ARENA_BYTES - arena->used < class_bytes) return NULL;
    block = arena->base + arena->used;
    arena->used += class_bytes;
    return block;
}

// `bytes` is the size the block was last given as; a block kept on shrinking may be larger
// than its class, which only wastes the difference.
static void arena_give(aero_arena *arena, void *block, size_t bytes) {
    size_t size_class = arena_class(bytes);
    *(void **)block = arena->free_lists[size_class];
    arena->free_lists[size_class] = block;
}

// realloc/free over the arena and malloc. Never fails when shrinking (Lua relies on it).
static void *arena_realloc(aero_arena *arena, void *block, size_t old_bytes, size_t new_bytes) {
    if (new_bytes == 0) {
        if (block == NULL) return NULL;
        if (arena_owns(arena, block)) arena_give(arena, block, old_bytes);
        else large_free(arena, block);
        return NULL;
    }
    if (block == NULL) {
        void *fresh = arena_take(arena, new_bytes);
        return fresh != NULL ? fresh : large_malloc(arena, new_bytes);
    }
    if (arena_owns(arena, block)) {
        if (new_bytes <= old_bytes) return block;
        if (arena_class(new_bytes) == arena_class(old_bytes)) return block;
        void *fresh = arena_take(arena, new_bytes);
        if (fresh == NULL) fresh = large_malloc(arena, new_bytes);
        if (fresh == NULL) return NULL;
        memcpy(fresh, block, old_bytes);
        arena_give(arena, block, old_bytes);
        return fresh;
    }
    return large_realloc(arena, block, new_bytes);
}

// The lua_Alloc contract: nsize == 0 frees; otherwise (re)allocate. When ptr is NULL,
// osize encodes the object type, not a size, so it is not subtracted.
static void *aero_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    aero_budget *budget = (aero_budget *)ud;
    aero_arena *arena = (aero_arena *)budget->arena;
    size_t old_bytes = ptr ? osize : 0;
    if (nsize == 0) {
        arena_realloc(arena, ptr, old_bytes, 0);
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
    void *block = arena_realloc(arena, ptr, old_bytes, nsize);
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
    budget->arena = arena_acquire();
    lua_State *L = lua_newstate(aero_alloc, budget);
    if (L != NULL) {
        lua_atpanic(L, aero_panic);
    } else {
        arena_release((aero_arena *)budget->arena);
        budget->arena = NULL;
    }
    return L;
}

void aero_state_close(lua_State *L, aero_budget *budget) {
    if (budget->release_in_bulk && budget->arena != NULL) {
        // Every block of the state is in the region or the large list: drop them all.
        budget->memory_used_bytes = 0;
    } else {
        lua_close(L);
    }
    arena_release((aero_arena *)budget->arena);
    budget->arena = NULL;
}

static aero_budget *aero_budget_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (aero_budget *)ud;
}

// A cheap clock for the call hook: CLOCK_MONOTONIC_COARSE (same origin as CLOCK_MONOTONIC,
// a few ms coarser) where there is one.
static uint64_t aero_coarse_ns(void) {
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#else
    return aero_monotonic_ns();
#endif
}

// Count events charge instructions and check the clock. Call events (every Lua and C
// function call) check only the coarse clock: one C library call is one VM instruction, so
// without them a loop of slow C calls (a 16 MiB sort, a large load) could run many times
// between two count events before the deadline is noticed.
static void aero_hook(lua_State *L, lua_Debug *ar) {
    // Line events exist only while aerodb-policy measures coverage (aero_tooling.c).
    if (ar->event == LUA_HOOKLINE) {
        aero_tooling_line(L, ar);
        return;
    }
    aero_budget *budget = aero_budget_of(L);
    if (ar->event == LUA_HOOKCOUNT) {
        budget->instructions_used += budget->hook_interval;
        if (budget->instruction_limit > 0 && budget->instructions_used > budget->instruction_limit) {
            budget->instructions_exceeded = 1;
        }
        if (budget->deadline_ns != 0 && aero_time_budget_spent(budget, aero_monotonic_ns())) {
            budget->time_exceeded = 1;
        }
    } else if (budget->deadline_ns != 0 && aero_time_budget_spent(budget, aero_coarse_ns())) {
        budget->time_exceeded = 1;
    }
    if (budget->instructions_exceeded || budget->time_exceeded || budget->memory_exceeded) {
        // Fire on every instruction from now on, in this thread, so the error cannot be
        // outrun by a policy that keeps catching it.
        lua_sethook(L, aero_hook, LUA_MASKCOUNT | LUA_MASKCALL, 1);
        luaL_error(L, budget->instructions_exceeded ? "instruction budget exceeded"
                      : budget->time_exceeded       ? "time budget exceeded"
                                                    : "memory budget exceeded");
    }
}

void aero_install_budget_hook(lua_State *L) {
    aero_budget *budget = aero_budget_of(L);
    int interval = budget->hook_interval > 0 ? budget->hook_interval : 1000;
    budget->hook_interval = interval;
    lua_sethook(L, aero_hook, LUA_MASKCOUNT | LUA_MASKCALL | aero_tooling_hook_mask(L), interval);
}

int aero_message_handler(lua_State *L) {
    aero_budget *budget = aero_budget_of(L);
    lua_Debug ar;
    int found = 0;
    // The first Lua frame, preferring code that is not the host's own (whose chunk
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

// Neither call raises (no collection step runs; lua_gc only sets the collector's state).
void aero_gc_stop(lua_State *L) { lua_gc(L, LUA_GCSTOP); }
void aero_gc_restart(lua_State *L) { lua_gc(L, LUA_GCRESTART); }

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
