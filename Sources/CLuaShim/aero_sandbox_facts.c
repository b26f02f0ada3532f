// aero_sandbox_facts.c — read-only facts proxies, built lazily from the tape.
//
// Bounds: a policy pays for what it reads (one level or one field at a time), and what the
// facts take is not charged to its memory budget (the cap is lifted while a level is built,
// up to AERO_FACTS_LEVEL_BYTES_MAX, then raised by what that took). Writes raise; the raw
// tables are unreachable. pairs is in UTF-8 key order / index order, so policies are
// deterministic.
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
#include "aero_sandbox_internal.h"
#include "aero_tooling.h"

#include <stdlib.h>
#include <string.h>

static const char *const facts_readonly = "facts are read-only";

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

static aero_tape_reader tape_at(lua_State *L, size_t offset) {
    const facts_store *store = (const facts_store *)lua_touserdata(L, UV_STORE);
    if (store == NULL || store->bytes == NULL) luaL_error(L, "facts tape missing");
    aero_tape_reader tape = {store->bytes, store->length, offset, {store->alias_offsets[0], store->alias_offsets[1]}};
    return tape;
}


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
static void push_tape_value(lua_State *L, aero_tape_reader *tape) {
    size_t start = tape->offset;
    uint8_t op = *aero_tape_take(L, tape, 1);
    switch (op) {
    case 'O':
    case 'A': {
        aero_tape_u32(L, tape);
        uint32_t body = aero_tape_u32(L, tape);
        aero_tape_take(L, tape, body);
        if (start == tape->alias_offsets[0] || start == tape->alias_offsets[1]) {
            lua_rawgeti(L, UV_ALIAS_MAP, (lua_Integer)start);
        } else {
            push_lazy_proxy(L, start);
        }
        break;
    }
    case 's': {
        uint32_t length = aero_tape_u32(L, tape);
        lua_pushlstring(L, (const char *)aero_tape_take(L, tape, length), length);
        break;
    }
    case 'i': lua_pushinteger(L, (lua_Integer)(int64_t)aero_tape_u64(L, tape)); break;
    case 'd': {
        uint64_t bits = aero_tape_u64(L, tape);
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
    aero_tape_reader tape = tape_at(L, offset);
    uint8_t op = *aero_tape_take(L, &tape, 1);
    uint32_t count = aero_tape_u32(L, &tape);
    uint32_t body = aero_tape_u32(L, &tape);
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
                if (aero_tape_u32(L, &tape) != count) luaL_error(L, "facts tape: array count mismatch at %d", (int)offset);
                break;
            }
            push_tape_value(L, &tape);
            if (*aero_tape_take(L, &tape, 1) != 'I') luaL_error(L, "facts tape: bad element at %d", (int)tape.offset - 1);
            lua_rawseti(L, raw, (lua_Integer)aero_tape_u32(L, &tape));
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
    aero_budget *budget = aero_budget_of(L);
    facts_cap cap = {budget->memory_limit_bytes, budget->memory_used_bytes};
    if (cap.limit != 0) budget->memory_limit_bytes = cap.limit + AERO_FACTS_LEVEL_BYTES_MAX;
    return cap;
}

static void facts_cap_restore(lua_State *L, facts_cap cap) {
    aero_budget *budget = aero_budget_of(L);
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
static int pending_object(lua_State *L, int idx, aero_tape_reader *tape) {
    if (push_mapped(L, idx, UV_PENDING_MAP) != LUA_TNUMBER) {
        lua_pop(L, 1);
        return 0;
    }
    size_t offset = (size_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    *tape = tape_at(L, offset);
    if (*aero_tape_take(L, tape, 1) != 'O') luaL_error(L, "facts tape: no object at %d", (int)offset);
    aero_tape_u32(L, tape);
    uint32_t body = aero_tape_u32(L, tape);
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
    aero_tape_reader tape;
    if (!pending_object(L, idx, &tape)) return 0;
    size_t wanted_length = 0;
    const char *wanted = lua_tolstring(L, key_idx, &wanted_length);
    for (;;) {
        uint8_t next = *aero_tape_take(L, &tape, 1);
        if (next == 'E') return 0;
        if (next != 's') luaL_error(L, "facts tape: bad key at %d", (int)tape.offset - 1);
        uint32_t length = aero_tape_u32(L, &tape);
        const uint8_t *key = aero_tape_take(L, &tape, length);
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
        aero_tape_skip_value(L, &tape);
        if (*aero_tape_take(L, &tape, 1) != 'S') luaL_error(L, "facts tape: bad field at %d", (int)tape.offset - 1);
    }
}

// Sets every field of the object proxy at idx (raw table at raw) that is not set yet, and
// marks it complete. Fields already read keep their values (and proxies).
static void complete_object(lua_State *L, int idx, int raw) {
    aero_tape_reader tape;
    if (!pending_object(L, idx, &tape)) return;
    luaL_checkstack(L, 4, "facts");
    facts_cap cap = facts_cap_lift(L);
    for (;;) {
        uint8_t next = *aero_tape_take(L, &tape, 1);
        if (next == 'E') break;
        if (next != 's') luaL_error(L, "facts tape: bad key at %d", (int)tape.offset - 1);
        uint32_t length = aero_tape_u32(L, &tape);
        lua_pushlstring(L, (const char *)aero_tape_take(L, &tape, length), length);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, raw) == LUA_TNIL) {
            lua_pop(L, 1);
            push_tape_value(L, &tape);
            lua_rawset(L, raw);
        } else {
            lua_pop(L, 2);
            aero_tape_skip_value(L, &tape);
        }
        if (*aero_tape_take(L, &tape, 1) != 'S') luaL_error(L, "facts tape: bad field at %d", (int)tape.offset - 1);
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
    if (results == 1 && aero_budget_of(L)->tooling) aero_tooling_facts_read(L, 1, 2);
    return results;
}

static int facts_len(lua_State *L) {
    if (!push_raw(L, 1)) return luaL_error(L, "not a facts table");
    complete_object(L, 1, lua_gettop(L));
    if (aero_budget_of(L)->tooling) aero_tooling_facts_whole(L, 1, 0);  // aerodb-policy tooling
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
        if (aero_budget_of(L)->tooling) aero_tooling_facts_whole(L, 1, raw);  // aerodb-policy tooling
        lua_pushvalue(L, raw);
        lua_pushvalue(L, count);
        lua_pushinteger(L, 0);
        lua_pushcclosure(L, facts_array_next, 3);
    } else {
        lua_pop(L, 1);
        complete_object(L, 1, raw);
        if (aero_budget_of(L)->tooling) aero_tooling_facts_whole(L, 1, raw);  // aerodb-policy tooling
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


// Keeps the host's tape for the state, checks its frame (header, the root container, the
// aliases, nothing after), makes the candidate's and primary's node proxies, and pushes the
// root proxy, unmaterialized.
static int push_facts_cfunction(lua_State *L) {
    const uint8_t *bytes = (const uint8_t *)lua_touserdata(L, 1);
    size_t length = (size_t)lua_tointeger(L, 2);
    lua_settop(L, 0);
    if (length < AERO_TAPE_ROOT_OFFSET || bytes[0] != 'H') luaL_error(L, "facts tape: no header");
    aero_tape_reader tape = {bytes, length, 1, {0, 0}};
    uint32_t containers = aero_tape_u32(L, &tape);
    uint32_t arrays = aero_tape_u32(L, &tape);
    // The root must be an object or array whose body ends just before 'N' u32 u32, the end.
    uint8_t op = *aero_tape_take(L, &tape, 1);
    if (op != 'O' && op != 'A') luaL_error(L, "facts tape: the root is not a container");
    aero_tape_u32(L, &tape);
    uint32_t body = aero_tape_u32(L, &tape);
    aero_tape_take(L, &tape, body);
    if (*aero_tape_take(L, &tape, 1) != 'N') luaL_error(L, "facts tape: no aliases after the root");
    uint32_t candidate = aero_tape_u32(L, &tape);
    uint32_t primary = aero_tape_u32(L, &tape);
    if (tape.offset != length) luaL_error(L, "facts tape: %d bytes after the end", (int)(length - tape.offset));

    facts_store *store = (facts_store *)lua_newuserdatauv(L, sizeof(facts_store), 0);
    store->bytes = bytes;
    store->length = length;
    store->alias_offsets[0] = op == 'O' ? aero_tape_node_offset(L, bytes, length, candidate) : 0;
    store->alias_offsets[1] = op == 'O' ? aero_tape_node_offset(L, bytes, length, primary) : 0;
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
