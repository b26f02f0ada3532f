// aero_sandbox_sort.c — table.sort: Lua 5.4.4's quicksort without its clock.
//
// Determinism: after a badly unbalanced partition of a large array, ltablib.c picks its next
// pivots from clock() and time() (l_randomizePivot), so the order of equal elements, the
// comparator calls and the instructions a policy uses could differ between two runs of one
// decision. This is ltablib.c's sort step for step (the same comparisons, swaps and "invalid
// order function for sorting" errors, so the same results as Lua's wherever Lua's are
// repeatable) with that one source replaced by a value computed from the interval, so the
// same input gives the same output and the same comparator calls in every run.
//
// Bounds: comparisons without a comparator, and the element reads and writes, happen inside
// this C call, where no hook fires: the time budget is checked every AERO_SORT_CHECK_EVERY
// comparisons (a comparator is a call, where the call hook fires). The table's __index chain
// is bounded first (each read follows it in C). An order function that makes the quicksort
// quadratic is stopped by these checks, within the time budget.
#include "aero_sandbox_internal.h"

#include <limits.h>

#define AERO_SORT_CHECK_EVERY 4096
// Arrays larger than this may use re-chosen pivots (ltablib.c: RANLIMIT).
#define RANLIMIT 100u

typedef unsigned int IdxT;

typedef struct sort_state {
    lua_Integer comparisons;
} sort_state;

static void sort_check_budget(lua_State *L, sort_state *state) {
    if (++state->comparisons % AERO_SORT_CHECK_EVERY != 0) return;
    aero_budget *budget = aero_budget_of(L);
    if (budget != NULL && aero_time_budget_spent(budget, aero_monotonic_ns())) {
        budget->time_exceeded = 1;
        luaL_error(L, "time budget exceeded");
    }
}

// In place of l_randomizePivot: a value of the interval only (Knuth's multiplicative hash), so
// the pivots after an unbalanced partition are the same in every run.
static unsigned int deterministic_pivot_seed(IdxT lo, IdxT up) {
    unsigned int seed = (lo * 2654435761u) ^ (up * 40503u);
    return seed == 0 ? 1 : seed;
}

static void set2(lua_State *L, IdxT i, IdxT j) {
    lua_seti(L, 1, i);
    lua_seti(L, 1, j);
}

static int sort_comp(lua_State *L, sort_state *state, int a, int b) {
    sort_check_budget(L, state);
    if (lua_isnil(L, 2)) return lua_compare(L, a, b, LUA_OPLT);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, a - 1);
    lua_pushvalue(L, b - 2);
    lua_call(L, 2, 1);
    int res = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return res;
}

static IdxT partition(lua_State *L, sort_state *state, IdxT lo, IdxT up) {
    IdxT i = lo;
    IdxT j = up - 1;
    for (;;) {
        while ((void)lua_geti(L, 1, ++i), sort_comp(L, state, -1, -2)) {
            if (i == up - 1) luaL_error(L, "invalid order function for sorting");
            lua_pop(L, 1);
        }
        while ((void)lua_geti(L, 1, --j), sort_comp(L, state, -3, -1)) {
            if (j < i) luaL_error(L, "invalid order function for sorting");
            lua_pop(L, 1);
        }
        if (j < i) {
            lua_pop(L, 1);
            set2(L, up - 1, i);
            return i;
        }
        set2(L, i, j);
    }
}

static IdxT choosePivot(IdxT lo, IdxT up, unsigned int rnd) {
    IdxT r4 = (up - lo) / 4;
    return rnd % (r4 * 2) + (lo + r4);
}

static void auxsort(lua_State *L, sort_state *state, IdxT lo, IdxT up, unsigned int rnd) {
    while (lo < up) {
        IdxT p;
        IdxT n;
        luaL_checkstack(L, 4, "sort");
        lua_geti(L, 1, lo);
        lua_geti(L, 1, up);
        if (sort_comp(L, state, -1, -2)) set2(L, lo, up);
        else lua_pop(L, 2);
        if (up - lo == 1) return;
        if (up - lo < RANLIMIT || rnd == 0) p = (lo + up) / 2;
        else p = choosePivot(lo, up, rnd);
        lua_geti(L, 1, p);
        lua_geti(L, 1, lo);
        if (sort_comp(L, state, -2, -1)) set2(L, p, lo);
        else {
            lua_pop(L, 1);
            lua_geti(L, 1, up);
            if (sort_comp(L, state, -1, -2)) set2(L, p, up);
            else lua_pop(L, 2);
        }
        if (up - lo == 2) return;
        lua_geti(L, 1, p);
        lua_pushvalue(L, -1);
        lua_geti(L, 1, up - 1);
        set2(L, p, up - 1);
        p = partition(L, state, lo, up);
        if (p - lo < up - p) {
            auxsort(L, state, lo, p - 1, rnd);
            n = p - lo;
            lo = p + 1;
        } else {
            auxsort(L, state, p + 1, up, rnd);
            n = up - p;
            up = p - 1;
        }
        if ((up - lo) / 128 > n) rnd = deterministic_pivot_seed(lo, up);
    }
}

int aero_sandbox_sort(lua_State *L) {
    // aux_getn(L, 1, TAB_RW): a table (or a value whose metatable has __index, __newindex and
    // __len), then its length as an integer.
    if (lua_type(L, 1) != LUA_TTABLE) {
        int top = lua_gettop(L);
        int ok = lua_getmetatable(L, 1);
        const char *const fields[] = {"__index", "__newindex", "__len"};
        for (int i = 0; ok && i < 3; i++) {
            lua_pushstring(L, fields[i]);
            ok = lua_rawget(L, -2) != LUA_TNIL;
            lua_pop(L, 1);
        }
        lua_settop(L, top);
        if (!ok) luaL_checktype(L, 1, LUA_TTABLE);
    }
    aero_check_index_chain(L, 1, "sort");
    lua_Integer n = luaL_len(L, 1);
    if (n > 1) {
        luaL_argcheck(L, n < INT_MAX, 1, "array too big");
        if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_settop(L, 2);
        sort_state state = {0};
        auxsort(L, &state, 1, (IdxT)n, 0);
    }
    return 0;
}
