// aero_sandbox_next.c — next and pairs in a defined order.
//
// Determinism: Lua's next follows the hash part's layout, which depends on a per-state seed
// (luai_makeseed: an address and time), so a policy's own string-keyed table would iterate
// differently in two runs of one decision, and so would the reasons built from it. The
// sandbox's next visits the keys of any table in one defined order: numbers ascending
// (integers and floats together, by value), then strings bytewise (memcmp, a prefix first),
// then false, true, then every other key (tables, functions, threads) by its stable id (the
// per-run counter tostring uses, aero_sandbox_names.c, given in order of first naming). Such
// a key that was never named has no order that is the same in every run (its hash is its
// address), so traversing a table holding one raises instead of guessing.
//
// How: next(t, nil) takes a sorted snapshot of t's keys (a key list and a key -> position
// map, Lua tables in the registry, charged to the memory budget; O(n log n) in C, bounded by
// the memory cap and re-checked by the host after the call); next(t, k) continues after k's
// position, skipping keys since removed. A key added during a traversal (undefined in Lua)
// is not visited; next(t, k) for a k the snapshot lacks takes a fresh snapshot, and a k that
// is not in t raises "invalid key to 'next'" as Lua does. The snapshot is dropped when the
// traversal ends. pairs(t) for a table without __pairs hands out this next.
#include "aero_sandbox_internal.h"

#include <stdlib.h>
#include <string.h>

static char snapshot_keys_key, snapshot_positions_key;  // registry: table -> key list / positions

enum { KEY_NUMBER, KEY_STRING, KEY_BOOLEAN, KEY_OTHER };

typedef struct ordered_key {
    int kind;
    int is_integer;
    lua_Integer integer;  // an integer, a boolean (0, 1) or a stable id
    lua_Number number;
    const char *bytes;  // a string key, anchored by the unsorted key list
    size_t length;
    lua_Integer index;  // in the unsorted key list
} ordered_key;

static int number_order(const ordered_key *x, const ordered_key *y) {
    if (x->is_integer && y->is_integer) return (x->integer > y->integer) - (x->integer < y->integer);
    // An integer against a float: long double holds every 64-bit integer exactly.
    long double a = x->is_integer ? (long double)x->integer : (long double)x->number;
    long double b = y->is_integer ? (long double)y->integer : (long double)y->number;
    return (a > b) - (a < b);
}

static int key_compare(const void *left, const void *right) {
    const ordered_key *x = (const ordered_key *)left, *y = (const ordered_key *)right;
    if (x->kind != y->kind) return x->kind - y->kind;
    switch (x->kind) {
    case KEY_NUMBER: return number_order(x, y);
    case KEY_STRING: {
        size_t shorter = x->length < y->length ? x->length : y->length;
        int order = memcmp(x->bytes, y->bytes, shorter);
        if (order != 0) return order;
        return (x->length > y->length) - (x->length < y->length);
    }
    default: return (x->integer > y->integer) - (x->integer < y->integer);
    }
}

// Pushes the sorted key list and the position map of the table at 1 and records them.
static void take_snapshot(lua_State *L) {
    luaL_checkstack(L, 8, "next");
    lua_newtable(L);  // unsorted keys
    int unsorted = lua_gettop(L);
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, unsorted, ++count);
    }
    ordered_key *keys = (ordered_key *)lua_newuserdatauv(L, sizeof(ordered_key) * (size_t)(count > 0 ? count : 1), 0);
    for (lua_Integer i = 1; i <= count; i++) {
        ordered_key *key = &keys[i - 1];
        memset(key, 0, sizeof *key);
        key->index = i;
        int type = lua_rawgeti(L, unsorted, i);
        if (type == LUA_TNUMBER) {
            key->kind = KEY_NUMBER;
            key->is_integer = lua_isinteger(L, -1);
            key->integer = lua_tointeger(L, -1);
            key->number = lua_tonumber(L, -1);
        } else if (type == LUA_TSTRING) {
            key->kind = KEY_STRING;
            key->bytes = lua_tolstring(L, -1, &key->length);
        } else if (type == LUA_TBOOLEAN) {
            key->kind = KEY_BOOLEAN;
            key->integer = lua_toboolean(L, -1);
        } else {
            // A table, function or thread key has no value to order by, only its stable id,
            // given when it is first named: giving ids here would follow the hash order.
            key->kind = KEY_OTHER;
            key->integer = aero_stable_id_given(L, -1);
            if (key->integer == 0) {
                luaL_error(L, "next: a %s key has no defined order in the policy sandbox (name it with tostring "
                              "first, in the order wanted, or key the table by strings or numbers)",
                           luaL_typename(L, -1));
            }
        }
        lua_pop(L, 1);
    }
    qsort(keys, (size_t)count, sizeof(ordered_key), key_compare);
    luaL_argcheck(L, count < INT32_MAX, 1, "table too big");
    lua_createtable(L, (int)count, 0);  // sorted keys
    int sorted = lua_gettop(L);
    lua_createtable(L, 0, (int)count);  // key -> position
    int positions = lua_gettop(L);
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, unsorted, keys[i - 1].index);
        lua_pushvalue(L, -1);
        lua_rawseti(L, sorted, i);
        lua_pushinteger(L, i);
        lua_rawset(L, positions);
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &snapshot_keys_key);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, sorted);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &snapshot_positions_key);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, positions);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_replace(L, unsorted + 1);  // positions over the userdata
    lua_replace(L, unsorted);      // sorted over the unsorted list
    lua_settop(L, unsorted + 1);
}

// Drops the snapshot of the table at 1 (its traversal ended).
static void drop_snapshot(lua_State *L) {
    void *const keys[] = {&snapshot_keys_key, &snapshot_positions_key};
    for (int i = 0; i < 2; i++) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, keys[i]);
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
}

// Pushes the snapshot (sorted keys at 3, positions at 4) of the table at 1; 0 if none.
static int push_snapshot(lua_State *L) {
    lua_settop(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &snapshot_keys_key);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &snapshot_positions_key);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    if (lua_type(L, 3) == LUA_TTABLE && lua_type(L, 4) == LUA_TTABLE) return 1;
    lua_settop(L, 2);
    return 0;
}

// The position of the key at 2 in the snapshot (positions at 4); 0 if it has none.
static lua_Integer position_of_key(lua_State *L) {
    lua_pushvalue(L, 2);
    lua_rawget(L, 4);
    lua_Integer position = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return position;
}

int aero_sandbox_next(lua_State *L) {
    aero_populate_if_library(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    lua_Integer position = 0;
    if (lua_isnil(L, 2)) {
        take_snapshot(L);
    } else {
        if (!push_snapshot(L) || (position = position_of_key(L)) == 0) {
            lua_settop(L, 2);
            take_snapshot(L);
            position = position_of_key(L);
        }
        if (position == 0) {
            lua_pushliteral(L, "invalid key to 'next'");
            return lua_error(L);
        }
    }
    lua_Integer count = (lua_Integer)lua_rawlen(L, 3);
    while (position < count) {
        position++;
        lua_rawgeti(L, 3, position);  // the key
        lua_pushvalue(L, -1);
        if (lua_rawget(L, 1) != LUA_TNIL) return 2;
        lua_pop(L, 2);
    }
    drop_snapshot(L);
    lua_pushnil(L);
    return 1;
}

// pairs() of a table without __pairs hands out the original next, which would see a library
// table still empty and follow the hash order: it hands out the ordered next instead.
int aero_sandbox_pairs(lua_State *L) {
    int results = aero_original_pairs(L);
    if (results == 3 && lua_tocfunction(L, -3) == aero_original_next) {
        lua_pushcfunction(L, aero_sandbox_next);
        lua_replace(L, -4);
    }
    return results;
}

void aero_sandbox_next_prepare(lua_State *L) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &snapshot_keys_key);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &snapshot_positions_key);
}
