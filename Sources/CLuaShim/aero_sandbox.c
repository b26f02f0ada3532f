// aero_sandbox.c — the C half of the policy sandbox: read-only facts proxies built from a
// byte tape, the allow-listed environment with its wrappers (print, load, setmetatable,
// bounded pattern functions, string.rep, xpcall, coroutine close/wrap) and library tables
// filled on first use, the answer's validation, and host-only bytecode helpers.
//
// Everything here either is a lua_CFunction (so it runs inside lua_pcall, where raising is
// safe) or is a protected entry point that wraps one in aero_pcall. See aero_lua.h for the
// rule that no Lua error ever longjmps across a Swift frame.
//
// Facts proxies (built lazily)
// ------------------------------
// Each JSON object or array is an empty proxy table. All proxies share one metatable:
//   __index = facts_index, __newindex = refuse, __len = facts_len, __pairs = facts_pairs,
//   __metatable = "facts are read-only" (so getmetatable/setmetatable cannot reach it).
// The host's tape stays where it is (it outlives the run). A proxy starts unmaterialized:
// the raw map gives it the tape offset of its container. The first metamethod call
// on it materializes one level: a raw table holding its scalars, and an unmaterialized
// proxy for each nested container (skipped by its body length). So a policy pays for what
// it reads, not for the size of the document. Maps held as upvalues of the metamethods
// (never reachable from the sandbox) give each proxy its raw table (or tape offset), each
// materialized array proxy its element count, and each object proxy its sorted key list
// (lazily). The candidate's
// and the primary's node proxies are made up front (their tape offsets found by scanning
// the tape, no Lua values made) and kept in an alias map, so root.candidate and the entry
// of root.nodes are the very same proxy whichever is read first. The sandbox has no
// rawget/rawset/rawequal/rawlen/debug, so the raw tables are unreachable. JSON null is absent (nil). Arrays keep their JSON length for #.
// Materialization follows the policy's own reads, so equal runs allocate alike.
//
// Tape format (little-endian, written by FactsTape.swift):
//   'H' u32 c u32 a     first: c objects and arrays, a of them arrays; then the root value
//   'O' u32 count u32 body   an object: count non-null fields; body = bytes through its 'E'
//   'A' u32 count u32 body   an array of count elements; body = bytes through its 'e' u32
//   'E'                 end of an object's fields
//   'e' u32 count       end of an array's elements
//   's' u32 len bytes   a string
//   'i' i64 / 'd' f64   an integer / a float
//   'T' / 'F'           true / false
//   'S'                 after a key string and its value: one object field
//   'I' u32 index       after a value: the array element at index
//   'N' u32 c u32 p     after the root: root.candidate = root.nodes[c], root.primary =
//                       root.nodes[p] (0: none)
#include "aero_lua.h"
#include "aero_tooling.h"

#include <limits.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char *const facts_readonly = "facts are read-only";
static char printed_key;  // its address keys the printed-lines table in the registry

static aero_budget *budget_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (aero_budget *)ud;
}

// ---- Facts proxies --------------------------------------------------------------------

// The facts metamethods are C closures sharing these upvalues (never reachable from the
// sandbox): proxy -> raw table or tape offset, array proxy -> element count, object proxy ->
// sorted key list (built lazily), the tape store, the alias map (tape offset -> the proxy of
// facts.candidate / facts.primary, made up front so that facts.nodes[i] is the very same
// proxy when nodes is materialized later), and the shared metatable. Upvalues rather than
// registry entries: each read of a proxy looks its map up, and every registry key a fresh
// state adds grows the registry. The tape store is also in the registry (tape_key) for
// aero_sandbox_forget_facts.
#define UV_RAW_MAP lua_upvalueindex(1)
#define UV_COUNT_MAP lua_upvalueindex(2)
#define UV_KEYS_MAP lua_upvalueindex(3)
#define UV_STORE lua_upvalueindex(4)
#define UV_ALIAS_MAP lua_upvalueindex(5)
#define UV_PROXY_METATABLE lua_upvalueindex(6)
#define UV_PENDING_MAP lua_upvalueindex(7)  // object proxy -> tape offset while partly read
#define FACTS_UPVALUES 7
static char tape_key;

// The root value starts right after the 'H' header.
#define AERO_TAPE_ROOT_OFFSET 9
// Presizes the registry maps for at most this many proxies (they grow beyond).
#define AERO_PROXY_MAP_PRESIZE 64

// The tape as the state knows it (a userdata in the registry): the host's bytes, which the
// host keeps valid and unchanged for as long as the state's Lua code runs (it is not
// copied: a 1,000-node tape is a few hundred KiB), and the tape offsets of the candidate's
// and the primary's node objects (0: none).
typedef struct facts_store {
    const uint8_t *bytes;
    size_t length;
    size_t alias_offsets[2];
} facts_store;

typedef struct tape_reader {
    const uint8_t *bytes;
    size_t length;
    size_t offset;
    size_t alias_offsets[2];
} tape_reader;

static const uint8_t *tape_take(lua_State *L, tape_reader *tape, size_t count) {
    if (tape->offset > tape->length || tape->length - tape->offset < count) {
        luaL_error(L, "facts tape truncated at %d", (int)tape->offset);
    }
    const uint8_t *at = tape->bytes + tape->offset;
    tape->offset += count;
    return at;
}

static uint32_t tape_u32(lua_State *L, tape_reader *tape) {
    uint32_t value;
    memcpy(&value, tape_take(L, tape, 4), 4);
    return value;
}

static uint64_t tape_u64(lua_State *L, tape_reader *tape) {
    uint64_t value;
    memcpy(&value, tape_take(L, tape, 8), 8);
    return value;
}

static tape_reader tape_at(lua_State *L, size_t offset) {
    const facts_store *store = (const facts_store *)lua_touserdata(L, UV_STORE);
    if (store == NULL || store->bytes == NULL) luaL_error(L, "facts tape missing");
    tape_reader tape = {store->bytes, store->length, offset, {store->alias_offsets[0], store->alias_offsets[1]}};
    return tape;
}

static void skip_value(lua_State *L, tape_reader *tape);

static int facts_newindex(lua_State *L) {
    if (lua_type(L, 2) == LUA_TSTRING) {
        return luaL_error(L, "%s (cannot set field '%s')", facts_readonly, lua_tostring(L, 2));
    }
    return luaL_error(L, "%s", facts_readonly);
}

// Pushes map[proxy at idx] for the map at upvalue index map and returns its type.
static int push_mapped(lua_State *L, int idx, int map) {
    lua_pushvalue(L, idx);
    return lua_rawget(L, map);
}

// Pushes a new unmaterialized proxy for the container at the tape offset.
static void push_lazy_proxy(lua_State *L, size_t offset) {
    lua_createtable(L, 0, 0);
    lua_pushvalue(L, UV_PROXY_METATABLE);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_pushinteger(L, (lua_Integer)offset);
    lua_rawset(L, UV_RAW_MAP);
}

// Reads one value at the reader and pushes it: scalars as themselves, a container as an
// unmaterialized proxy (its body skipped).
static void push_tape_value(lua_State *L, tape_reader *tape) {
    size_t start = tape->offset;
    uint8_t op = *tape_take(L, tape, 1);
    switch (op) {
    case 'O':
    case 'A': {
        tape_u32(L, tape);
        uint32_t body = tape_u32(L, tape);
        tape_take(L, tape, body);
        if (start == tape->alias_offsets[0] || start == tape->alias_offsets[1]) {
            lua_rawgeti(L, UV_ALIAS_MAP, (lua_Integer)start);
        } else {
            push_lazy_proxy(L, start);
        }
        break;
    }
    case 's': {
        uint32_t length = tape_u32(L, tape);
        lua_pushlstring(L, (const char *)tape_take(L, tape, length), length);
        break;
    }
    case 'i': lua_pushinteger(L, (lua_Integer)(int64_t)tape_u64(L, tape)); break;
    case 'd': {
        uint64_t bits = tape_u64(L, tape);
        double number;
        memcpy(&number, &bits, 8);
        lua_pushnumber(L, number);
        break;
    }
    case 'T': lua_pushboolean(L, 1); break;
    case 'F': lua_pushboolean(L, 0); break;
    default: luaL_error(L, "facts tape: unexpected op %d at %d", (int)op, (int)start);
    }
}

// Sets raw_root[field] to the node proxy made up front for the node at offset (if any).
static void alias_node(lua_State *L, int raw_root, const char *field, size_t offset) {
    if (offset == 0) return;
    lua_rawgeti(L, UV_ALIAS_MAP, (lua_Integer)offset);
    lua_setfield(L, raw_root, field);
}

// Builds the raw table of the proxy at idx from the container at offset and pushes it. An
// array is built whole, one level deep: its scalars, and an unmaterialized proxy for each
// nested container. An object starts empty and is read field by field (fetch_field), as
// the policy asks for its keys; it is completed (complete_object) only when all of it is
// needed (pairs, #). Records the raw table in the raw map (and the count map for an array,
// the pending map for an object); the root object also gets facts.candidate/primary.
static void materialize(lua_State *L, int idx, size_t offset) {
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 8, "facts");
    tape_reader tape = tape_at(L, offset);
    uint8_t op = *tape_take(L, &tape, 1);
    uint32_t count = tape_u32(L, &tape);
    uint32_t body = tape_u32(L, &tape);
    size_t end = tape.offset + body;
    if (end > tape.length) luaL_error(L, "facts tape: container past the end at %d", (int)offset);
    int clamped = count > (1u << 24) ? (1 << 24) : (int)count;
    if (op == 'O') {
        lua_createtable(L, 0, clamped);
        lua_pushvalue(L, idx);
        lua_pushinteger(L, (lua_Integer)offset);
        lua_rawset(L, UV_PENDING_MAP);
    } else if (op == 'A') {
        lua_createtable(L, clamped, 0);
        int raw = lua_gettop(L);
        for (;;) {
            if (tape.offset < tape.length && tape.bytes[tape.offset] == 'e') {
                tape.offset++;
                if (tape_u32(L, &tape) != count) luaL_error(L, "facts tape: array count mismatch at %d", (int)offset);
                break;
            }
            push_tape_value(L, &tape);
            if (*tape_take(L, &tape, 1) != 'I') luaL_error(L, "facts tape: bad element at %d", (int)tape.offset - 1);
            lua_rawseti(L, raw, (lua_Integer)tape_u32(L, &tape));
        }
        if (tape.offset != end) luaL_error(L, "facts tape: container body mismatch at %d", (int)offset);
        lua_pushvalue(L, idx);
        lua_pushinteger(L, (lua_Integer)count);
        lua_rawset(L, UV_COUNT_MAP);
    } else {
        luaL_error(L, "facts tape: no container at %d", (int)offset);
    }
    int raw = lua_gettop(L);
    lua_pushvalue(L, idx);
    lua_pushvalue(L, raw);
    lua_rawset(L, UV_RAW_MAP);
    if (offset == AERO_TAPE_ROOT_OFFSET && op == 'O') {
        alias_node(L, raw, "candidate", tape.alias_offsets[0]);
        alias_node(L, raw, "primary", tape.alias_offsets[1]);
    }
}

// The facts do not count against the policy's memory budget (they were built before it
// started when they were built eagerly): the cap is lifted by AERO_FACTS_LEVEL_BYTES_MAX
// while a level or a field is built, then set to the old cap plus what that took. (Should
// building raise, the run fails anyway: a memory error is sticky, and a tape error is a
// host bug.)
#define AERO_FACTS_LEVEL_BYTES_MAX ((size_t)256 << 20)

typedef struct facts_cap {
    size_t limit, before;
} facts_cap;

static facts_cap facts_cap_lift(lua_State *L) {
    aero_budget *budget = budget_of(L);
    facts_cap cap = {budget->memory_limit_bytes, budget->memory_used_bytes};
    if (cap.limit != 0) budget->memory_limit_bytes = cap.limit + AERO_FACTS_LEVEL_BYTES_MAX;
    return cap;
}

static void facts_cap_restore(lua_State *L, facts_cap cap) {
    aero_budget *budget = budget_of(L);
    if (cap.limit == 0) return;
    size_t after = budget->memory_used_bytes;
    budget->memory_limit_bytes = cap.limit + (after > cap.before ? after - cap.before : 0);
}

// Pushes the raw table behind the proxy at idx (materializing it) and returns 1, or
// returns 0 (pushing nothing) if it is no facts proxy.
static int push_raw(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    int type = push_mapped(L, idx, UV_RAW_MAP);
    if (type == LUA_TTABLE) return 1;
    if (type == LUA_TNUMBER) {
        lua_Integer offset = lua_tointeger(L, -1);
        lua_pop(L, 1);
        facts_cap cap = facts_cap_lift(L);
        materialize(L, idx, (size_t)offset);
        facts_cap_restore(L, cap);
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

// The object of the proxy at idx on the tape, positioned at its first field; 0 (and no
// reader) when the object has been completed.
static int pending_object(lua_State *L, int idx, tape_reader *tape) {
    if (push_mapped(L, idx, UV_PENDING_MAP) != LUA_TNUMBER) {
        lua_pop(L, 1);
        return 0;
    }
    size_t offset = (size_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    *tape = tape_at(L, offset);
    if (*tape_take(L, tape, 1) != 'O') luaL_error(L, "facts tape: no object at %d", (int)offset);
    tape_u32(L, tape);
    uint32_t body = tape_u32(L, tape);
    if (tape->offset + body > tape->length) luaL_error(L, "facts tape: object past the end at %d", (int)offset);
    return 1;
}

// UTF-8 byte order, as the tape's keys are sorted (FactsTape.swift).
static int key_order(const uint8_t *a, size_t a_length, const char *b, size_t b_length) {
    size_t shorter = a_length < b_length ? a_length : b_length;
    int order = memcmp(a, b, shorter);
    if (order != 0) return order;
    return (a_length > b_length) - (a_length < b_length);
}

// For the object proxy at idx (raw table at raw) not yet completed: finds the string key at
// key_idx on the tape; if there, sets raw[key] and pushes the value, returning 1. Returns 0
// (pushing nothing) when the object has no such field. Keys on the tape are sorted, so the
// search stops at the first larger key; the key string set is the policy's own.
static int fetch_field(lua_State *L, int idx, int raw, int key_idx) {
    tape_reader tape;
    if (!pending_object(L, idx, &tape)) return 0;
    size_t wanted_length = 0;
    const char *wanted = lua_tolstring(L, key_idx, &wanted_length);
    for (;;) {
        uint8_t next = *tape_take(L, &tape, 1);
        if (next == 'E') return 0;
        if (next != 's') luaL_error(L, "facts tape: bad key at %d", (int)tape.offset - 1);
        uint32_t length = tape_u32(L, &tape);
        const uint8_t *key = tape_take(L, &tape, length);
        int order = key_order(key, length, wanted, wanted_length);
        if (order > 0) return 0;
        if (order == 0) {
            facts_cap cap = facts_cap_lift(L);
            lua_pushvalue(L, key_idx);
            push_tape_value(L, &tape);
            lua_pushvalue(L, -1);
            lua_insert(L, -3);
            lua_rawset(L, raw);
            facts_cap_restore(L, cap);
            return 1;
        }
        skip_value(L, &tape);
        if (*tape_take(L, &tape, 1) != 'S') luaL_error(L, "facts tape: bad field at %d", (int)tape.offset - 1);
    }
}

// Sets every field of the object proxy at idx (raw table at raw) that is not set yet, and
// marks it complete. Fields already read keep their values (and proxies).
static void complete_object(lua_State *L, int idx, int raw) {
    tape_reader tape;
    if (!pending_object(L, idx, &tape)) return;
    luaL_checkstack(L, 4, "facts");
    facts_cap cap = facts_cap_lift(L);
    for (;;) {
        uint8_t next = *tape_take(L, &tape, 1);
        if (next == 'E') break;
        if (next != 's') luaL_error(L, "facts tape: bad key at %d", (int)tape.offset - 1);
        uint32_t length = tape_u32(L, &tape);
        lua_pushlstring(L, (const char *)tape_take(L, &tape, length), length);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, raw) == LUA_TNIL) {
            lua_pop(L, 1);
            push_tape_value(L, &tape);
            lua_rawset(L, raw);
        } else {
            lua_pop(L, 2);
            skip_value(L, &tape);
        }
        if (*tape_take(L, &tape, 1) != 'S') luaL_error(L, "facts tape: bad field at %d", (int)tape.offset - 1);
    }
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, UV_PENDING_MAP);
    facts_cap_restore(L, cap);
}

static int facts_index_value(lua_State *L) {
    if (!push_raw(L, 1)) return 0;
    int raw = lua_gettop(L);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, raw) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING) return 1;
    lua_pop(L, 1);
    if (fetch_field(L, 1, raw, 2)) return 1;
    lua_pushnil(L);
    return 1;
}

// ---- aerodb-policy tooling: records the read (aero_tooling.h; one NULL test when off). ----
static int facts_index(lua_State *L) {
    int results = facts_index_value(L);
    if (results == 1 && budget_of(L)->tooling) aero_tooling_facts_read(L, 1, 2);
    return results;
}

static int facts_len(lua_State *L) {
    if (!push_raw(L, 1)) return luaL_error(L, "not a facts table");
    complete_object(L, 1, lua_gettop(L));
    if (budget_of(L)->tooling) aero_tooling_facts_whole(L, 1, 0);  // aerodb-policy tooling
    if (push_mapped(L, 1, UV_COUNT_MAP) == LUA_TNUMBER) return 1;
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

// Upvalues: raw, count, position.
static int facts_array_next(lua_State *L) {
    lua_Integer count = lua_tointeger(L, lua_upvalueindex(2));
    lua_Integer position = lua_tointeger(L, lua_upvalueindex(3));
    while (position < count) {
        position++;
        if (lua_rawgeti(L, lua_upvalueindex(1), position) != LUA_TNIL) {
            lua_pushinteger(L, position);
            lua_replace(L, lua_upvalueindex(3));
            lua_pushinteger(L, position);
            lua_insert(L, -2);
            return 2;
        }
        lua_pop(L, 1);
    }
    lua_pushinteger(L, position);
    lua_replace(L, lua_upvalueindex(3));
    return 0;
}

// Upvalues: raw, sorted keys, position.
static int facts_object_next(lua_State *L) {
    lua_Integer position = lua_tointeger(L, lua_upvalueindex(3)) + 1;
    if (lua_rawgeti(L, lua_upvalueindex(2), position) == LUA_TNIL) return 0;
    lua_pushinteger(L, position);
    lua_replace(L, lua_upvalueindex(3));
    lua_pushvalue(L, -1);
    lua_rawget(L, lua_upvalueindex(1));
    return 2;
}

typedef struct key_ref {
    const char *bytes;
    size_t length;
    lua_Integer index;
} key_ref;

static int key_ref_compare(const void *a, const void *b) {
    const key_ref *x = (const key_ref *)a, *y = (const key_ref *)b;
    size_t shorter = x->length < y->length ? x->length : y->length;
    int order = memcmp(x->bytes, y->bytes, shorter);
    if (order != 0) return order;
    return (x->length > y->length) - (x->length < y->length);
}

// Pushes the sorted key list of the object proxy at proxy (raw at raw), cached.
static void push_sorted_keys(lua_State *L, int proxy, int raw) {
    if (push_mapped(L, proxy, UV_KEYS_MAP) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);  // unsorted
    int unsorted = lua_gettop(L);
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, raw) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "facts object with a non-string key");
        lua_pushvalue(L, -1);
        lua_rawseti(L, unsorted, ++count);
    }
    key_ref *refs = (key_ref *)lua_newuserdatauv(L, sizeof(key_ref) * (size_t)(count > 0 ? count : 1), 0);
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, unsorted, i);
        refs[i - 1].bytes = lua_tolstring(L, -1, &refs[i - 1].length);  // anchored by raw
        refs[i - 1].index = i;
        lua_pop(L, 1);
    }
    qsort(refs, (size_t)count, sizeof(key_ref), key_ref_compare);
    lua_createtable(L, (int)count, 0);  // sorted
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, unsorted, refs[i - 1].index);
        lua_rawseti(L, -2, i);
    }
    lua_pushvalue(L, proxy);
    lua_pushvalue(L, -2);
    lua_rawset(L, UV_KEYS_MAP);
    lua_replace(L, unsorted);
    lua_settop(L, unsorted);
}

static int facts_pairs(lua_State *L) {
    if (!push_raw(L, 1)) return luaL_error(L, "not a facts table");
    int raw = lua_gettop(L);
    if (push_mapped(L, 1, UV_COUNT_MAP) == LUA_TNUMBER) {
        int count = lua_gettop(L);
        if (budget_of(L)->tooling) aero_tooling_facts_whole(L, 1, raw);  // aerodb-policy tooling
        lua_pushvalue(L, raw);
        lua_pushvalue(L, count);
        lua_pushinteger(L, 0);
        lua_pushcclosure(L, facts_array_next, 3);
    } else {
        lua_pop(L, 1);
        complete_object(L, 1, raw);
        if (budget_of(L)->tooling) aero_tooling_facts_whole(L, 1, raw);  // aerodb-policy tooling
        lua_pushvalue(L, raw);
        push_sorted_keys(L, 1, raw);
        lua_pushinteger(L, 0);
        lua_pushcclosure(L, facts_object_next, 3);
    }
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

// Pushes the FACTS_UPVALUES values (maps sized for the first proxies of `containers`, of
// which `arrays` are arrays; the store at store_idx; the alias map; the shared metatable)
// and makes the metatable's metamethods closures over them. Leaves the upvalues pushed.
static void push_facts_upvalues(lua_State *L, int store_idx, uint32_t containers, uint32_t arrays) {
    store_idx = lua_absindex(L, store_idx);
    luaL_checkstack(L, 2 * FACTS_UPVALUES + 4, "facts");
    int first = lua_gettop(L) + 1;
    lua_createtable(L, 0, (int)(containers < AERO_PROXY_MAP_PRESIZE ? containers : AERO_PROXY_MAP_PRESIZE));
    lua_createtable(L, 0, (int)(arrays < AERO_PROXY_MAP_PRESIZE ? arrays : AERO_PROXY_MAP_PRESIZE));
    lua_newtable(L);  // keys map
    lua_pushvalue(L, store_idx);
    lua_createtable(L, 0, 2);  // alias map
    lua_createtable(L, 0, 5);  // the metatable
    int metatable = lua_gettop(L);
    lua_createtable(L, 0, (int)(containers < AERO_PROXY_MAP_PRESIZE ? containers : AERO_PROXY_MAP_PRESIZE));  // pending map
    static const struct { const char *name; lua_CFunction function; } methods[] = {
        {"__index", facts_index}, {"__len", facts_len}, {"__pairs", facts_pairs}};
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        for (int k = 0; k < FACTS_UPVALUES; k++) lua_pushvalue(L, first + k);
        lua_pushcclosure(L, methods[m].function, FACTS_UPVALUES);
        lua_setfield(L, metatable, methods[m].name);
    }
    lua_pushcfunction(L, facts_newindex);
    lua_setfield(L, metatable, "__newindex");
    lua_pushstring(L, facts_readonly);
    lua_setfield(L, metatable, "__metatable");
}

// Runs as a closure over the facts upvalues: makes the candidate's and primary's node
// proxies (aliases) and pushes the root proxy, unmaterialized.
static int push_root_proxy(lua_State *L) {
    const facts_store *store = (const facts_store *)lua_touserdata(L, UV_STORE);
    for (int i = 0; i < 2; i++) {
        size_t offset = store->alias_offsets[i];
        if (offset == 0 || lua_rawgeti(L, UV_ALIAS_MAP, (lua_Integer)offset) != LUA_TNIL) {
            if (offset != 0) lua_pop(L, 1);
            continue;
        }
        lua_pop(L, 1);
        push_lazy_proxy(L, offset);
        lua_rawseti(L, UV_ALIAS_MAP, (lua_Integer)offset);
    }
    push_lazy_proxy(L, AERO_TAPE_ROOT_OFFSET);
    return 1;
}

// Moves the reader past one value (a container by its body length).
static void skip_value(lua_State *L, tape_reader *tape) {
    uint8_t op = *tape_take(L, tape, 1);
    switch (op) {
    case 'O':
    case 'A': tape_u32(L, tape); tape_take(L, tape, tape_u32(L, tape)); break;
    case 's': tape_take(L, tape, tape_u32(L, tape)); break;
    case 'i':
    case 'd': tape_take(L, tape, 8); break;
    case 'T':
    case 'F': break;
    default: luaL_error(L, "facts tape: unexpected op %d at %d", (int)op, (int)tape->offset - 1);
    }
}

// The tape offset of root.nodes[index] when it is an object; 0 when there is none. Reads
// only the tape (no Lua values are made).
static size_t node_offset(lua_State *L, const uint8_t *bytes, size_t length, uint32_t index) {
    if (index == 0) return 0;
    tape_reader tape = {bytes, length, AERO_TAPE_ROOT_OFFSET, {0, 0}};
    if (*tape_take(L, &tape, 1) != 'O') return 0;
    tape_u32(L, &tape);
    tape_u32(L, &tape);
    for (;;) {
        uint8_t op = *tape_take(L, &tape, 1);
        if (op == 'E') return 0;
        if (op != 's') luaL_error(L, "facts tape: bad key at %d", (int)tape.offset - 1);
        uint32_t key_length = tape_u32(L, &tape);
        const uint8_t *key = tape_take(L, &tape, key_length);
        if (key_length == 5 && memcmp(key, "nodes", 5) == 0 && tape.offset < length && bytes[tape.offset] == 'A') {
            tape.offset += 9;  // 'A' count body
            for (;;) {
                if (tape.offset < length && bytes[tape.offset] == 'e') return 0;
                size_t element = tape.offset;
                skip_value(L, &tape);
                if (*tape_take(L, &tape, 1) != 'I') luaL_error(L, "facts tape: bad element at %d", (int)tape.offset - 1);
                if (tape_u32(L, &tape) == index) return bytes[element] == 'O' ? element : 0;
            }
        }
        skip_value(L, &tape);
        if (*tape_take(L, &tape, 1) != 'S') luaL_error(L, "facts tape: bad field at %d", (int)tape.offset - 1);
    }
}

// Keeps the host's tape for the state, checks its frame (header, the root container, the
// aliases, nothing after), makes the candidate's and primary's node proxies, and pushes the
// root proxy, unmaterialized.
static int push_facts_cfunction(lua_State *L) {
    const uint8_t *bytes = (const uint8_t *)lua_touserdata(L, 1);
    size_t length = (size_t)lua_tointeger(L, 2);
    lua_settop(L, 0);
    if (length < AERO_TAPE_ROOT_OFFSET || bytes[0] != 'H') luaL_error(L, "facts tape: no header");
    tape_reader tape = {bytes, length, 1, {0, 0}};
    uint32_t containers = tape_u32(L, &tape);
    uint32_t arrays = tape_u32(L, &tape);
    // The root must be an object or array whose body ends just before 'N' u32 u32, the end.
    uint8_t op = *tape_take(L, &tape, 1);
    if (op != 'O' && op != 'A') luaL_error(L, "facts tape: the root is not a container");
    tape_u32(L, &tape);
    uint32_t body = tape_u32(L, &tape);
    tape_take(L, &tape, body);
    if (*tape_take(L, &tape, 1) != 'N') luaL_error(L, "facts tape: no aliases after the root");
    uint32_t candidate = tape_u32(L, &tape);
    uint32_t primary = tape_u32(L, &tape);
    if (tape.offset != length) luaL_error(L, "facts tape: %d bytes after the end", (int)(length - tape.offset));

    facts_store *store = (facts_store *)lua_newuserdatauv(L, sizeof(facts_store), 0);
    store->bytes = bytes;
    store->length = length;
    store->alias_offsets[0] = op == 'O' ? node_offset(L, bytes, length, candidate) : 0;
    store->alias_offsets[1] = op == 'O' ? node_offset(L, bytes, length, primary) : 0;
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tape_key);
    push_facts_upvalues(L, -1, containers, arrays);
    lua_pushcclosure(L, push_root_proxy, FACTS_UPVALUES);
    lua_call(L, 0, 1);
    return 1;
}

void aero_sandbox_forget_facts(lua_State *L) {
    if (!lua_checkstack(L, 1)) return;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &tape_key) == LUA_TUSERDATA) {
        facts_store *store = (facts_store *)lua_touserdata(L, -1);
        store->bytes = NULL;
        store->length = 0;
    }
    lua_pop(L, 1);
}

int aero_sandbox_push_facts(lua_State *L, const uint8_t *tape, size_t length) {
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    lua_pushcfunction(L, push_facts_cfunction);
    lua_pushlightuserdata(L, (void *)tape);
    lua_pushinteger(L, (lua_Integer)length);
    return aero_pcall(L, 2, 1);
}

// ---- Stable names of tables and functions ----------------------------------------------
// Lua names a table, function, thread or userdata by its address ("table: 0x55d0…"): it
// differs between runs (allocation addresses, ASLR) and reveals host addresses
// (tostring(print)). tostring, print and string.format's %s name such a value by its type (or
// __name) and a per-run counter in the order values are first named ("table: 1"), which is the
// same in every run of the same policy on the same facts. A __tostring metamethod is honoured
// as in Lua. The counter map lives in the registry, out of the sandbox's reach.
static char stable_ids_key;  // registry: object -> integer id; [false] = last id given

static int names_by_address(int type) {
    return type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TTHREAD || type == LUA_TUSERDATA ||
           type == LUA_TLIGHTUSERDATA;
}

// Pushes the stable name of the value at idx when Lua would name it by its address; returns
// 0 (pushing nothing) when Lua's own conversion says it without an address.
static int push_stable_name(lua_State *L, int idx) {
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
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: %I", kind, id);
    lua_replace(L, ids);
    if (name_slot) lua_remove(L, name_slot);
    return 1;
}

// luaL_tolstring with stable names: pushes the string and returns it.
static const char *stable_tolstring(lua_State *L, int idx, size_t *length) {
    if (push_stable_name(L, idx)) return lua_tolstring(L, -1, length);
    return luaL_tolstring(L, idx, length);
}

static int sandbox_tostring(lua_State *L) {
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
static int sandbox_print(lua_State *L) {
    aero_budget *budget = budget_of(L);
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

// ---- Bounded pattern functions --------------------------------------------------------

enum { PATTERN_FIND = 1, PATTERN_MATCH = 2, PATTERN_GMATCH = 3, PATTERN_GSUB = 4 };

// Index just past the single-character class starting at p[i] (Lua's classend).
static size_t class_end(const char *p, size_t m, size_t i) {
    char c = p[i++];
    if (c == '%') return i + 1;
    if (c == '[') {
        if (i < m && p[i] == '^') i++;
        do {
            if (i >= m) return m;
            if (p[i++] == '%') i++;
        } while (i < m && p[i] != ']');
        return i + 1;
    }
    return i;
}

// Counts the pattern items that can backtrack: quantified classes (* + - ?), %b and back
// references. Mirrors the grammar of Lua's matcher (lstrlib.c: do_match). A leading '^' is
// an anchor only where the caller says so: gmatch has no anchor, its '^' is a plain
// character that a quantifier may follow ('^*').
static int count_quantifiers(const char *p, size_t m, int caret_anchors, int *anchored) {
    size_t i = 0;
    int quantifiers = 0;
    *anchored = 0;
    if (caret_anchors && m > 0 && p[0] == '^') {
        *anchored = 1;
        i = 1;
    }
    while (i < m) {
        char c = p[i];
        if (c == '(' || c == ')') { i++; continue; }
        if (c == '$' && i + 1 == m) { i++; continue; }
        if (c == '%' && i + 1 < m) {
            char d = p[i + 1];
            if (d == 'b') { quantifiers++; i += 4; continue; }
            if (d == 'f') { i = class_end(p, m, i + 2); continue; }
            if (d >= '0' && d <= '9') { quantifiers++; i += 2; continue; }
        }
        i = class_end(p, m, i);
        if (i < m && (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?')) {
            quantifiers++;
            i++;
        }
    }
    return quantifiers;
}

static int has_specials(const char *p, size_t m) {
    for (size_t i = 0; i < m; i++) {
        if (strchr("^$*+?.([%-", p[i]) != NULL && p[i] != '\0') return 1;
    }
    return 0;
}

// Raises unless the call (arguments at 1, 2) is within the bounds for the pattern function
// of this kind; the wrapper then calls the original (bounded_find … below).
static void check_pattern(lua_State *L, int kind) {
    size_t n = 0, m = 0;
    luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &m);
    const char *name = kind == PATTERN_FIND ? "find" : kind == PATTERN_MATCH ? "match"
                     : kind == PATTERN_GMATCH ? "gmatch" : "gsub";
    if (n > AERO_PATTERN_SUBJECT_BYTES_MAX) {
        luaL_error(L, "string.%s: subject of %d bytes exceeds the sandbox bound of %d bytes",
                          name, (int)n, AERO_PATTERN_SUBJECT_BYTES_MAX);
    }
    if (m > AERO_PATTERN_BYTES_MAX) {
        luaL_error(L, "string.%s: pattern of %d bytes exceeds the sandbox bound of %d bytes",
                          name, (int)m, AERO_PATTERN_BYTES_MAX);
    }
    int plain = (kind == PATTERN_FIND && lua_toboolean(L, 4)) || (kind == PATTERN_FIND && !has_specials(p, m));
    int anchored = 0;
    int quantifiers = plain ? 0 : count_quantifiers(p, m, kind != PATTERN_GMATCH, &anchored);
    if (quantifiers > AERO_PATTERN_QUANTIFIERS_MAX) {
        luaL_error(L, "string.%s: pattern has %d quantifiers; the sandbox allows %d",
                          name, quantifiers, AERO_PATTERN_QUANTIFIERS_MAX);
    }
    double base = n < 2 ? 2.0 : (double)n;
    double cost = (double)(m > 0 ? m : 1);
    for (int power = quantifiers + (anchored ? 0 : 1); power > 0 && cost <= AERO_PATTERN_COST_MAX; power--) {
        cost *= base;
    }
    if (cost > AERO_PATTERN_COST_MAX) {
        luaL_error(L, "string.%s: pattern too complex for a %d-byte subject (%d quantifiers%s); "
                          "use a shorter subject or a simpler pattern",
                          name, (int)n, quantifiers, anchored ? ", anchored" : "");
    }
}

// ---- The allow-list -------------------------------------------------------------------
// The environment is built directly from the allowed names: no library is opened in the
// sandbox's state and nothing is narrowed away afterwards (opening the six libraries and
// removing what is not allowed was a third of a fresh sandbox's instructions). The values
// come from Lua's own libraries, captured once per process in a scratch state: every
// library function is a light C function (no upvalues), so its pointer is all there is to
// it; constants (math.pi, utf8.charpattern, _VERSION …) are copied. Keep the global names in
// step with SandboxEnvironment.environmentNames. Where the sandbox changes a function (print,
// load, setmetatable, getmetatable, next, xpcall, string find/match/gmatch/gsub/rep,
// coroutine close/wrap) the environment holds a C wrapper that checks and then calls the
// original directly (same call frame, so argument errors name the function as usual).
// table.insert/remove/move are Lua (see table_chunk_text).
static const char *const allowed_base[] = {
    "_VERSION", "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "xpcall", NULL};
// Originals only the wrappers call, never put in the environment as they are.
static const char *const original_base[] = {"load", "setmetatable", NULL};
static const char *const allowed_string[] = {
    "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "pack",
    "packsize", "rep", "reverse", "sub", "unpack", "upper", NULL};
// insert, move and remove come from table_chunk_text.
static const char *const allowed_table[] = {"concat", "pack", "sort", "unpack", NULL};
static const char *const allowed_math[] = {
    "abs", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log", "max", "maxinteger",
    "min", "mininteger", "modf", "pi", "rad", "sin", "sqrt", "tan", "tointeger", "type", "ult",
    NULL};
static const char *const allowed_utf8[] = {
    "char", "charpattern", "codepoint", "codes", "len", "offset", NULL};
static const char *const allowed_coroutine[] = {
    "close", "create", "isyieldable", "resume", "running", "status", "wrap", "yield", NULL};
// The string metatable's metamethods (string arithmetic coercions); __index is the string
// table. Lua 5.4's lstrlib.c: stringmetamethods.
static const char *const string_metamethods[] = {
    "__add", "__sub", "__mul", "__mod", "__pow", "__div", "__idiv", "__unm", NULL};

#define AERO_CAPTURED_MAX 128
#define AERO_CAPTURED_STRING_BYTES_MAX 64

typedef struct captured_value {
    const char *name;
    size_t name_length;  // pushed with lua_pushlstring: no strlen, no C-string cache lookup
    int type;  // LUA_TFUNCTION, LUA_TNUMBER (integer or float), LUA_TSTRING
    int is_integer;
    lua_CFunction function;
    lua_CFunction wrapper;  // what the environment holds instead of `function`, if not NULL
    lua_Integer integer;
    lua_Number number;
    char string[AERO_CAPTURED_STRING_BYTES_MAX];
    size_t string_length;
} captured_value;

// One captured library: its values in the order of its name list.
typedef struct captured_library {
    const char *global;  // NULL for base (set into the globals) and the originals
    const char *const *names;
    int first, count;
} captured_library;

enum { LIB_BASE, LIB_ORIGINAL, LIB_STRING, LIB_TABLE, LIB_MATH, LIB_UTF8, LIB_COROUTINE, LIB_STRING_META, LIB_COUNT };

static captured_value captured[AERO_CAPTURED_MAX];
static captured_library libraries[LIB_COUNT] = {
    {NULL, allowed_base, 0, 0}, {NULL, original_base, 0, 0},
    {LUA_STRLIBNAME, allowed_string, 0, 0}, {LUA_TABLIBNAME, allowed_table, 0, 0},
    {LUA_MATHLIBNAME, allowed_math, 0, 0}, {LUA_UTF8LIBNAME, allowed_utf8, 0, 0},
    {LUA_COLIBNAME, allowed_coroutine, 0, 0}, {NULL, string_metamethods, 0, 0}};
static int capture_status = -1;  // -1: not yet; 0: ok; 1: failed
static pthread_once_t capture_once = PTHREAD_ONCE_INIT;

// The originals the wrappers call (set once by capture_libraries).
static lua_CFunction original_load, original_setmetatable, original_getmetatable, original_next, original_pairs,
    original_xpcall, original_select, original_error, original_find, original_match, original_gmatch,
    original_gsub, original_rep, original_math_type, original_coclose, original_coresume, original_costatus,
    original_cocreate, original_concat, original_unpack, original_format, original_tostring;

// table.insert, remove and move loop in C over a length a __len metamethod may choose; the
// sandbox's run in Lua instead, where the instruction budget counts every step. They use no
// global (the chunk runs with a nil _ENV): what they need is passed in from the originals.
// Compiled once per process and dumped (stripped) by the host; only the host loads it.
static const char table_chunk_text[] =
    "local select, error, mathtype, maxinteger = ...\n"
    "local function integer_argument(value, position, name)\n"
    "  if mathtype(value) ~= 'integer' then\n"
    "    error('bad argument #' .. position .. \" to '\" .. name .. \"' (integer expected)\", 3)\n"
    "  end\n"
    "end\n"
    "local function insert(t, ...)\n"
    "  local count = select('#', ...)\n"
    "  local last = #t + 1\n"
    "  if count == 1 then\n"
    "    t[last] = ...\n"
    "    return\n"
    "  end\n"
    "  if count ~= 2 then error(\"wrong number of arguments to 'insert'\", 2) end\n"
    "  local position, value = ...\n"
    "  integer_argument(position, 2, 'insert')\n"
    "  if position < 1 or position > last then\n"
    "    error(\"bad argument #2 to 'insert' (position out of bounds)\", 2)\n"
    "  end\n"
    "  for i = last, position + 1, -1 do t[i] = t[i - 1] end\n"
    "  t[position] = value\n"
    "end\n"
    "local function remove(t, position)\n"
    "  local size = #t\n"
    "  if position == nil then position = size end\n"
    "  integer_argument(position, 2, 'remove')\n"
    "  if position ~= size and (position < 1 or position > size + 1) then\n"
    "    error(\"bad argument #2 to 'remove' (position out of bounds)\", 2)\n"
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
    "  if a2 == nil then a2 = a1 end\n"
    "  integer_argument(f, 2, 'move')\n"
    "  integer_argument(e, 3, 'move')\n"
    "  integer_argument(t, 4, 'move')\n"
    "  if e >= f then\n"
    "    if f <= 0 and e >= maxinteger + f then error(\"bad argument #3 to 'move' (too many elements to move)\", 2) end\n"
    "    if t > e or t <= f or a1 ~= a2 then\n"
    "      for i = 0, e - f do a2[t + i] = a1[f + i] end\n"
    "    else\n"
    "      for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end\n"
    "    end\n"
    "  end\n"
    "  return a2\n"
    "end\n"
    "return insert, move, remove\n";
static const char *const table_chunk_names[] = {"insert", "move", "remove"};
static uint8_t *table_chunk = NULL;  // the dump; process lifetime
static size_t table_chunk_length = 0;

static int budget_tripped(const aero_budget *budget) {
    return budget->instructions_exceeded || budget->time_exceeded || budget->memory_exceeded;
}

// ---- Wrappers ----

static int bounded_find(lua_State *L) { check_pattern(L, PATTERN_FIND); return original_find(L); }
static int bounded_match(lua_State *L) { check_pattern(L, PATTERN_MATCH); return original_match(L); }
static int bounded_gmatch(lua_State *L) { check_pattern(L, PATTERN_GMATCH); return original_gmatch(L); }
// gsub with a replacement string copies the replacement once per match inside one C call.
// Its literal bytes go into the result, so the memory budget bounds them; but each '%0'..'%9'
// of an empty capture costs work and no memory (a 1 MiB replacement of '%0' over an empty
// pattern's 60,001 matches ran for minutes). The escapes times the most matches there can be
// (subject bytes + 1, or the caller's max_n) is bounded before the call.
static int bounded_gsub(lua_State *L) {
    check_pattern(L, PATTERN_GSUB);
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
    return original_gsub(L);
}

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
static int sandbox_rep(lua_State *L) {
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
    return original_rep(L);
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

static int sandbox_load(lua_State *L) {
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
    return original_load(L);
}

static void populate_if_library(lua_State *L, int idx);

// No finalizers: nothing may run code at garbage collection. No weak tables: an ephemeron
// (weak-keyed) chain makes the collector's atomic phase quadratic, in C, where no hook fires.
// No callable tables: Lua resolves a __call chain in C with no length limit, shifting the
// stack one slot per step (a self-referential __call ran for minutes). These are checked where
// the metatable is set; a field added to a metatable later is not seen here, which the
// supervisor's deadline (PolicyWorker) covers.
static int sandbox_setmetatable(lua_State *L) {
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
    populate_if_library(L, 1);
    return original_setmetatable(L);
}

static int sandbox_getmetatable(lua_State *L) {
    populate_if_library(L, 1);
    return original_getmetatable(L);
}

static int sandbox_next(lua_State *L) {
    populate_if_library(L, 1);
    return original_next(L);
}

// pairs() of a table without __pairs hands out the original next, which would see a library
// table still empty: it hands out the wrapper instead.
static int sandbox_pairs(lua_State *L) {
    int results = original_pairs(L);
    if (results == 3 && lua_tocfunction(L, -3) == original_next) {
        lua_pushcfunction(L, sandbox_next);
        lua_replace(L, -4);
    }
    return results;
}

// An error raised by the budget hook leaves hooks disabled in its thread until a pcall
// boundary restores them (Lua 5.4 ldo.c). Lua code that runs before that point — an xpcall
// message handler, or __close run by coroutine.close/wrap on the dead thread — would run
// unbudgeted. So once a budget has tripped, these wrappers run no policy code.
static int guarded_handler(lua_State *L) {
    lua_settop(L, 1);
    if (budget_tripped(budget_of(L))) return 1;  // the error object, unchanged
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

static int sandbox_xpcall(lua_State *L) {
    if (lua_type(L, 2) == LUA_TFUNCTION) {
        lua_pushvalue(L, 2);
        lua_pushcclosure(L, guarded_handler, 1);
        lua_replace(L, 2);
    }
    return original_xpcall(L);
}

static int sandbox_coclose(lua_State *L) {
    if (budget_tripped(budget_of(L))) return luaL_error(L, "policy budget exceeded");
    return original_coclose(L);
}

// Upvalue: the coroutine. Resumes it; on error closes it (unless a budget has tripped) and
// raises the error object as it is.
static int wrapped_coroutine(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checkstack(L, 3, "coroutine.wrap");
    lua_pushcfunction(L, original_coresume);
    lua_insert(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 2);
    lua_call(L, n + 1, LUA_MULTRET);
    if (lua_toboolean(L, 1)) return lua_gettop(L) - 1;
    lua_settop(L, 2);
    if (!budget_tripped(budget_of(L))) {
        lua_pushcfunction(L, original_costatus);
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_call(L, 1, 1);
        int dead = strcmp(lua_tostring(L, -1), "dead") == 0;
        lua_pop(L, 1);
        if (dead) {
            lua_pushcfunction(L, original_coclose);
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
    aero_budget *budget = budget_of(L);
    budget->instructions_used += budget->hook_interval;
    if (budget->instruction_limit > 0 && budget->instructions_used > budget->instruction_limit) {
        budget->instructions_exceeded = 1;
    }
    if (budget_tripped(budget)) luaL_error(L, "instruction budget exceeded");
}

static int sandbox_cocreate(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    charge_coroutine(L);
    return original_cocreate(L);
}

static int sandbox_cowrap(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    charge_coroutine(L);
    lua_State *thread = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, thread, 1);
    lua_pushcclosure(L, wrapped_coroutine, 1);
    return 1;
}

// table.concat, table.unpack and the sort's copy loops read elements with lua_geti inside
// one C call: each read follows the table's __index chain, up to Lua's own 2,000 tables, with
// no hook (7 to 20 s over a 2,000-table chain). The chain of tables is bounded before they
// run; an __index function is called like any function, where the hooks fire.
static void check_index_chain(lua_State *L, int idx, const char *name) {
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

static int bounded_concat(lua_State *L) { check_index_chain(L, 1, "concat"); return original_concat(L); }
static int bounded_unpack(lua_State *L) { check_index_chain(L, 1, "unpack"); return original_unpack(L); }

// string.format: '%p' prints an address (different in every run) and is refused; a '%s' of a
// value Lua would name by its address gets its stable name instead (see stable names above).
// The directives are scanned as lstrlib.c reads them; anything malformed is left for the
// original to report.
static int sandbox_format(lua_State *L) {
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
        if (format[i] == 's' && argument <= lua_gettop(L) && push_stable_name(L, argument)) {
            lua_replace(L, argument);
        }
    }
    return original_format(L);
}

// table.sort without Lua's randomized pivot: after an unbalanced partition of more than 100
// elements, ltablib.c picks its pivot from clock() and time() (l_randomizePivot), so the order
// of equal elements and the instructions a policy uses could differ between two runs of one
// decision. This is a stable bottom-up merge sort instead: the same input gives the same
// output and the same comparator calls, always. Elements are read and written with
// lua_geti/lua_seti (metamethods respected, as the original does); the two work arrays are Lua
// tables, charged to the memory budget. Comparator calls fire the call hook; comparisons
// without a comparator check the time budget every AERO_SORT_CHECK_EVERY, since no hook fires
// inside this loop.
#define AERO_SORT_CHECK_EVERY 4096

static void sort_check_budget(lua_State *L, lua_Integer *comparisons) {
    if (++*comparisons % AERO_SORT_CHECK_EVERY != 0) return;
    void *ud = NULL;
    lua_getallocf(L, &ud);
    aero_budget *budget = (aero_budget *)ud;
    if (budget != NULL && aero_time_budget_spent(budget, aero_monotonic_ns())) {
        budget->time_exceeded = 1;
        luaL_error(L, "time budget exceeded");
    }
}

// Whether b < a (the element from the right run goes first only when strictly less: stable).
static int sort_less(lua_State *L, int has_comparator, int right, int left, lua_Integer *comparisons) {
    sort_check_budget(L, comparisons);
    if (!has_comparator) return lua_compare(L, right, left, LUA_OPLT);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, right);
    lua_pushvalue(L, left);
    lua_call(L, 2, 1);
    int less = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return less;
}

static int sandbox_sort(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    check_index_chain(L, 1, "sort");
    lua_Integer n = luaL_len(L, 1);
    int has_comparator = !lua_isnoneornil(L, 2);
    if (has_comparator) luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    if (n < 2) return 0;
    luaL_argcheck(L, n < INT_MAX, 1, "array too big");
    lua_createtable(L, (int)n, 0);  // 3: from
    lua_createtable(L, (int)n, 0);  // 4: to
    lua_Integer comparisons = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        sort_check_budget(L, &comparisons);
        lua_geti(L, 1, i);
        lua_rawseti(L, 3, i);
    }
    for (lua_Integer width = 1; width < n; width *= 2) {
        for (lua_Integer low = 1; low <= n; low += 2 * width) {
            lua_Integer middle = low + width - 1 < n ? low + width - 1 : n;
            lua_Integer high = low + 2 * width - 1 < n ? low + 2 * width - 1 : n;
            lua_Integer left = low, right = middle + 1, out = low;
            while (left <= middle && right <= high) {
                lua_rawgeti(L, 3, left);   // 5
                lua_rawgeti(L, 3, right);  // 6
                if (sort_less(L, has_comparator, 6, 5, &comparisons)) {
                    lua_rawseti(L, 4, out++);  // right
                    lua_pop(L, 1);
                    right++;
                } else {
                    lua_pop(L, 1);
                    lua_rawseti(L, 4, out++);  // left
                    left++;
                }
            }
            for (; left <= middle; left++) { lua_rawgeti(L, 3, left); lua_rawseti(L, 4, out++); }
            for (; right <= high; right++) { lua_rawgeti(L, 3, right); lua_rawseti(L, 4, out++); }
        }
        lua_rotate(L, 3, 1);  // swap from and to
    }
    for (lua_Integer i = 1; i <= n; i++) {
        sort_check_budget(L, &comparisons);
        lua_rawgeti(L, 3, i);
        lua_seti(L, 1, i);
    }
    return 0;
}

// The wrappers, by library and name, recorded in captured[].wrapper.
static const struct {
    int lib;
    const char *name;
    lua_CFunction wrapper;
} wrappers[] = {
    {LIB_BASE, "getmetatable", sandbox_getmetatable}, {LIB_BASE, "next", sandbox_next},
    {LIB_BASE, "pairs", sandbox_pairs},
    {LIB_BASE, "xpcall", sandbox_xpcall}, {LIB_STRING, "find", bounded_find},
    {LIB_STRING, "match", bounded_match}, {LIB_STRING, "gmatch", bounded_gmatch},
    {LIB_STRING, "gsub", bounded_gsub}, {LIB_STRING, "rep", sandbox_rep},
    {LIB_COROUTINE, "close", sandbox_coclose}, {LIB_COROUTINE, "wrap", sandbox_cowrap},
    {LIB_TABLE, "sort", sandbox_sort}, {LIB_COROUTINE, "create", sandbox_cocreate},
    {LIB_TABLE, "concat", bounded_concat}, {LIB_TABLE, "unpack", bounded_unpack},
    {LIB_STRING, "format", sandbox_format}, {LIB_BASE, "tostring", sandbox_tostring}};

// ---- Capturing, once per process ----

// Copies the value on top of the stack into slot; 0 if it is of a kind that cannot be
// captured (a C function with upvalues, a Lua function, a table …).
static int capture_top(lua_State *L, captured_value *slot, const char *name) {
    slot->name = name;
    slot->name_length = strlen(name);
    slot->type = lua_type(L, -1);
    slot->wrapper = NULL;
    switch (slot->type) {
    case LUA_TFUNCTION:
        slot->function = lua_tocfunction(L, -1);
        return slot->function != NULL && lua_getupvalue(L, -1, 1) == NULL;
    case LUA_TNUMBER:
        slot->is_integer = lua_isinteger(L, -1);
        slot->integer = lua_tointeger(L, -1);
        slot->number = lua_tonumber(L, -1);
        return 1;
    case LUA_TSTRING: {
        const char *bytes = lua_tolstring(L, -1, &slot->string_length);
        if (slot->string_length >= AERO_CAPTURED_STRING_BYTES_MAX) return 0;
        memcpy(slot->string, bytes, slot->string_length);
        return 1;
    }
    default:
        return 0;
    }
}

static captured_value *captured_named(int lib, const char *name) {
    const captured_library *library = &libraries[lib];
    for (int i = library->first; i < library->first + library->count; i++) {
        if (strcmp(captured[i].name, name) == 0) return &captured[i];
    }
    return NULL;
}

static lua_CFunction captured_function(int lib, const char *name) {
    captured_value *value = captured_named(lib, name);
    return value != NULL && value->type == LUA_TFUNCTION ? value->function : NULL;
}

static int table_chunk_writer(lua_State *L, const void *p, size_t size, void *ud) {
    (void)L;
    (void)ud;
    uint8_t *grown = (uint8_t *)realloc(table_chunk, table_chunk_length + size);
    if (grown == NULL) return 1;
    table_chunk = grown;
    memcpy(table_chunk + table_chunk_length, p, size);
    table_chunk_length += size;
    return 0;
}

static int capture_cfunction(lua_State *L) {
    luaL_openlibs(L);  // a scratch state of the host's, closed at once; never a sandbox's
    int next = 0;
    for (int lib = 0; lib < LIB_COUNT; lib++) {
        captured_library *library = &libraries[lib];
        if (lib == LIB_STRING_META) {
            lua_pushliteral(L, "");
            if (!lua_getmetatable(L, -1)) return luaL_error(L, "no string metatable");
        } else if (library->global != NULL) {
            if (lua_getglobal(L, library->global) != LUA_TTABLE) return luaL_error(L, "no library %s", library->global);
        } else {
            lua_pushglobaltable(L);
        }
        int table = lua_gettop(L);
        library->first = next;
        for (const char *const *name = library->names; *name != NULL; name++) {
            if (next >= AERO_CAPTURED_MAX) return luaL_error(L, "too many captured names");
            lua_getfield(L, table, *name);
            if (!capture_top(L, &captured[next], *name)) return luaL_error(L, "cannot capture %s", *name);
            lua_settop(L, table);
            next++;
        }
        library->count = next - library->first;
        lua_settop(L, 0);
    }
    for (size_t i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++) {
        captured_value *value = captured_named(wrappers[i].lib, wrappers[i].name);
        if (value == NULL || value->type != LUA_TFUNCTION) return luaL_error(L, "cannot wrap %s", wrappers[i].name);
        value->wrapper = wrappers[i].wrapper;
    }
    original_load = captured_function(LIB_ORIGINAL, "load");
    original_setmetatable = captured_function(LIB_ORIGINAL, "setmetatable");
    original_getmetatable = captured_function(LIB_BASE, "getmetatable");
    original_next = captured_function(LIB_BASE, "next");
    original_pairs = captured_function(LIB_BASE, "pairs");
    original_xpcall = captured_function(LIB_BASE, "xpcall");
    original_select = captured_function(LIB_BASE, "select");
    original_error = captured_function(LIB_BASE, "error");
    original_find = captured_function(LIB_STRING, "find");
    original_match = captured_function(LIB_STRING, "match");
    original_gmatch = captured_function(LIB_STRING, "gmatch");
    original_gsub = captured_function(LIB_STRING, "gsub");
    original_rep = captured_function(LIB_STRING, "rep");
    original_math_type = captured_function(LIB_MATH, "type");
    original_coclose = captured_function(LIB_COROUTINE, "close");
    original_coresume = captured_function(LIB_COROUTINE, "resume");
    original_costatus = captured_function(LIB_COROUTINE, "status");
    original_cocreate = captured_function(LIB_COROUTINE, "create");
    original_concat = captured_function(LIB_TABLE, "concat");
    original_unpack = captured_function(LIB_TABLE, "unpack");
    original_format = captured_function(LIB_STRING, "format");
    original_tostring = captured_function(LIB_BASE, "tostring");
    if (!original_load || !original_setmetatable || !original_getmetatable || !original_next || !original_pairs || !original_xpcall ||
        !original_select || !original_error || !original_find || !original_match || !original_gmatch ||
        !original_gsub || !original_rep || !original_math_type || !original_coclose || !original_coresume ||
        !original_costatus || !original_cocreate || !original_concat || !original_unpack || !original_format ||
        !original_tostring) {
        return luaL_error(L, "a wrapped function is missing");
    }
    if (luaL_loadbufferx(L, table_chunk_text, sizeof table_chunk_text - 1, AERO_SANDBOX_CHUNK_NAME, "t") != LUA_OK) {
        return lua_error(L);
    }
    if (lua_dump(L, table_chunk_writer, NULL, 1) != 0) return luaL_error(L, "cannot dump the table functions");
    return 0;
}

static void capture_libraries(void) {
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        capture_status = 1;
        return;
    }
    lua_pushcfunction(L, capture_cfunction);
    capture_status = lua_pcall(L, 0, 0, 0) == LUA_OK && table_chunk_length > 0 ? 0 : 1;
    lua_close(L);
}

int aero_sandbox_capture_libraries(void) {
    pthread_once(&capture_once, capture_libraries);
    return capture_status == 0;
}

static void push_captured(lua_State *L, const captured_value *value) {
    switch (value->type) {
    case LUA_TFUNCTION: lua_pushcfunction(L, value->wrapper != NULL ? value->wrapper : value->function); break;
    case LUA_TNUMBER:
        if (value->is_integer) lua_pushinteger(L, value->integer);
        else lua_pushnumber(L, value->number);
        break;
    default: lua_pushlstring(L, value->string, value->string_length); break;
    }
}

// Sets every captured value of library lib into the table at idx (raw sets: a library
// table still has its filling metatable).
static void set_captured(lua_State *L, int idx, int lib) {
    idx = lua_absindex(L, idx);
    const captured_library *library = &libraries[lib];
    for (int i = library->first; i < library->first + library->count; i++) {
        lua_pushlstring(L, captured[i].name, captured[i].name_length);
        push_captured(L, &captured[i]);
        lua_rawset(L, idx);
    }
}

// ---- Library tables, filled on first use ----
// Building every library table in every fresh state was a third of its setup, and most
// policies use one library or none. So each library table starts empty, with a metatable
// (in the registry, unreachable from the sandbox) whose __index, __newindex and __pairs
// fill it completely on first use, then remove the metatable: from then on it is a plain
// table, exactly as if it had been built up front. Nothing a policy can do sees the empty
// table: reads, writes, pairs, ipairs, # and the table library go through the metamethods
// (or see the same empty array part), and the wrappers of next, getmetatable and
// setmetatable fill the table first. The filling is charged to the running budget (a few
// KiB; the same in every run).
static char library_metatable_key, library_map_key;  // registry: the metatable; table -> lib

// Fills the library table at idx if it is one not yet filled.
static void populate_if_library(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TTABLE) return;
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 8, "library");
    if (!lua_getmetatable(L, idx)) return;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &library_metatable_key);
    int mine = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!mine) return;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &library_map_key);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, -2) != LUA_TNUMBER) luaL_error(L, "library table without a library");
    int lib = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (lib == LIB_TABLE) {
        if (luaL_loadbufferx(L, (const char *)table_chunk, table_chunk_length, AERO_SANDBOX_CHUNK_NAME, "b") != LUA_OK) {
            lua_error(L);
        }
        lua_pushnil(L);
        lua_setupvalue(L, -2, 1);  // _ENV: the chunk reads no global
        lua_pushcfunction(L, original_select);
        lua_pushcfunction(L, original_error);
        lua_pushcfunction(L, original_math_type);
        lua_pushinteger(L, LUA_MAXINTEGER);
        lua_call(L, 4, 3);
        for (int i = 2; i >= 0; i--) {
            lua_pushstring(L, table_chunk_names[i]);
            lua_insert(L, -2);
            lua_rawset(L, idx);
        }
    }
    set_captured(L, idx, lib);
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setmetatable(L, idx);
}

static int library_index(lua_State *L) {
    populate_if_library(L, 1);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

static int library_newindex(lua_State *L) {
    populate_if_library(L, 1);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

static int library_pairs(lua_State *L) {
    populate_if_library(L, 1);
    lua_pushcfunction(L, sandbox_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

// A new, empty library table for lib, stored as globals[name]; left on the stack. Not
// presized: most are never filled, and one that is grows a few times once.
static void new_library(lua_State *L, int globals, int metatable, int map, int lib) {
    lua_createtable(L, 0, 0);
    lua_pushvalue(L, metatable);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_pushinteger(L, lib);
    lua_rawset(L, map);
    lua_pushvalue(L, -1);
    lua_setfield(L, globals, libraries[lib].global);
}

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
static int validate_answer(lua_State *L) {
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

// ---- Preparing a sandbox --------------------------------------------------------------

// Globals beyond the captured base functions: print, load, setmetatable, _G and the five
// library tables; sizes the globals table so it never rehashes.
#define AERO_EXTRA_GLOBALS 9

static int prepare_cfunction(lua_State *L) {
    if (!aero_sandbox_capture_libraries()) return luaL_error(L, "cannot capture the Lua standard libraries");
    lua_settop(L, 0);
    // The environment: a fresh globals table sized for every name it will hold.
    lua_createtable(L, 0, libraries[LIB_BASE].count + AERO_EXTRA_GLOBALS);
    const int globals = 1;
    lua_pushvalue(L, globals);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    set_captured(L, globals, LIB_BASE);
    lua_pushcfunction(L, sandbox_print);
    lua_setfield(L, globals, "print");
    lua_pushcfunction(L, sandbox_load);
    lua_setfield(L, globals, "load");
    lua_pushcfunction(L, sandbox_setmetatable);
    lua_setfield(L, globals, "setmetatable");
    lua_pushvalue(L, globals);
    lua_setfield(L, globals, LUA_GNAME);
    // The library tables, empty until first used.
    lua_createtable(L, 0, 3);
    const int metatable = 2;
    lua_pushcfunction(L, library_index);
    lua_setfield(L, metatable, "__index");
    lua_pushcfunction(L, library_newindex);
    lua_setfield(L, metatable, "__newindex");
    lua_pushcfunction(L, library_pairs);
    lua_setfield(L, metatable, "__pairs");
    lua_pushvalue(L, metatable);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &library_metatable_key);
    lua_createtable(L, 0, 5);
    const int map = 3;
    lua_pushvalue(L, map);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &library_map_key);
    new_library(L, globals, metatable, map, LIB_COROUTINE);
    new_library(L, globals, metatable, map, LIB_TABLE);
    new_library(L, globals, metatable, map, LIB_MATH);
    new_library(L, globals, metatable, map, LIB_UTF8);
    new_library(L, globals, metatable, map, LIB_STRING);
    // The string metatable, as luaopen_string makes it (__index is the string table), and
    // hidden: getmetatable("") gives a string, setmetatable cannot reach strings.
    lua_createtable(L, 0, libraries[LIB_STRING_META].count + 2);
    set_captured(L, -1, LIB_STRING_META);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "the string metatable is protected");
    lua_setfield(L, -2, "__metatable");
    lua_pushliteral(L, "");
    lua_pushvalue(L, -2);
    lua_setmetatable(L, -2);
    lua_settop(L, globals);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &printed_key);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &stable_ids_key);
    // [validate, env]
    lua_pushcfunction(L, validate_answer);
    lua_insert(L, globals);
    return 2;
}

int aero_sandbox_prepare(lua_State *L) {
    if (!lua_checkstack(L, 2)) return LUA_ERRMEM;
    lua_pushcfunction(L, prepare_cfunction);
    return aero_pcall(L, 0, 2);
}

// ---- Host-only bytecode ---------------------------------------------------------------

int aero_load_host_binary(lua_State *L, const uint8_t *bytes, size_t length, const char *chunkname) {
    return luaL_loadbufferx(L, (const char *)bytes, length, chunkname, "b");
}

static int bytes_writer(lua_State *L, const void *p, size_t size, void *ud) {
    (void)L;
    aero_bytes *out = (aero_bytes *)ud;
    if (out->length + size > out->capacity) {
        size_t capacity = out->capacity ? out->capacity : 4096;
        while (capacity < out->length + size) capacity *= 2;
        uint8_t *grown = (uint8_t *)realloc(out->data, capacity);
        if (grown == NULL) {
            out->failed = 1;
            return 1;
        }
        out->data = grown;
        out->capacity = capacity;
    }
    memcpy(out->data + out->length, p, size);
    out->length += size;
    return 0;
}

static int dump_cfunction(lua_State *L) {
    aero_bytes *out = (aero_bytes *)lua_touserdata(L, 2);
    int strip = lua_toboolean(L, 3);
    lua_settop(L, 1);
    if (lua_dump(L, bytes_writer, out, strip) != 0 || out->failed) return luaL_error(L, "cannot dump the chunk");
    return 0;
}

int aero_dump_top(lua_State *L, aero_bytes *out, int strip) {
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    lua_pushcfunction(L, dump_cfunction);
    lua_pushvalue(L, -2);
    lua_pushlightuserdata(L, out);
    lua_pushboolean(L, strip);
    return aero_pcall(L, 3, 0);
}

void aero_bytes_free(aero_bytes *bytes) {
    free(bytes->data);
    bytes->data = NULL;
    bytes->length = bytes->capacity = 0;
}
