// aero_tooling.h — instrumentation for `aerodb-policy` only (test --coverage, and the facts a
// failing case read). Off unless the host attaches an aero_tooling to a state's budget
// (aero_budget.tooling); off, it costs nothing: no line mask is set and each facts read
// tests one NULL pointer. Everything is recorded into buffers the host owns and sized
// (bounded, never charged to the Lua memory budget, never allocated here), so a run with
// tooling attached allocates, counts and decides exactly as one without.
#ifndef AERODB_TOOLING_H
#define AERODB_TOOLING_H

#include <lua5.4/lua.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The kind of one facts read.
#define AERO_READ_MEMBER 1  // proxy[key] with a string key
#define AERO_READ_INDEX 2   // proxy[index] with an integer key
#define AERO_READ_WHOLE 3   // #proxy or pairs(proxy): the whole container

/// One read of a facts proxy. Proxies are named by address (lua_topointer); the host
/// rebuilds JSON paths from the root's address and the reads in order.
typedef struct aero_facts_read {
    const void *parent;  // the proxy read
    const void *child;   // the proxy the read returned (a nested container), else NULL
    int64_t index;       // AERO_READ_INDEX: the key
    size_t key_offset;   // AERO_READ_MEMBER: the key's bytes in key_bytes
    size_t key_length;
    int kind;
} aero_facts_read;

typedef struct aero_tooling {
    // Line coverage of one chunk: line events of functions whose source equals
    // coverage_source ("=NAME") add 1 to line_counts[line] for line < lines_max.
    // coverage_source NULL: no line hook.
    const char *coverage_source;
    uint32_t *line_counts;
    int lines_max;

    // Facts reads, in order; reads beyond reads_max or keys beyond key_bytes_max set
    // reads_truncated. reads NULL: not recorded.
    aero_facts_read *reads;
    size_t reads_max;
    size_t reads_count;
    char *key_bytes;
    size_t key_bytes_max;
    size_t key_bytes_used;
    int reads_truncated;
} aero_tooling;

/// The hook mask tooling adds to the budget hook's: LUA_MASKLINE when coverage is on, else 0.
int aero_tooling_hook_mask(lua_State *L);

/// A line event (called by the budget hook, aero_lua.c). Never raises, never allocates.
void aero_tooling_line(lua_State *L, lua_Debug *ar);

/// Records proxy[key] (stack indices) that gave the value on top of the stack, when reads are
/// recorded. Never raises, never allocates.
void aero_tooling_facts_read(lua_State *L, int proxy, int key);

/// Records that the whole container behind the proxy was read (#, pairs) and, for pairs,
/// each field of its raw table `raw` (0: none), so nested proxies it yields stay named.
void aero_tooling_facts_whole(lua_State *L, int proxy, int raw);

#ifdef __cplusplus
}
#endif
#endif
