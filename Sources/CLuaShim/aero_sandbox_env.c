// aero_sandbox_env.c — the policy's environment: the allow-list, Lua's library functions
// captured once per process, library tables filled on first use, and preparing a fresh state.
//
// Bounds: a policy sees exactly the allow-listed names (a test checks the lists); where a
// function could run long inside C or break determinism, the environment holds a wrapper
// (the other aero_sandbox_*.c files) that checks and then calls the original.
#include "aero_sandbox_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
// table.insert/remove/move are Lua (see aero_table_chunk_text).
static const char *const allowed_base[] = {
    "_VERSION", "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "xpcall", NULL};
// Originals only the wrappers call, never put in the environment as they are.
static const char *const original_base[] = {"load", "setmetatable", NULL};
static const char *const allowed_string[] = {
    "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "pack",
    "packsize", "rep", "reverse", "sub", "unpack", "upper", NULL};
// insert, move and remove come from aero_table_chunk_text.
static const char *const allowed_table[] = {"concat", "pack", "sort", "unpack", NULL};
static const char *const allowed_math[] = {
    "abs", "acos", "asin", "atan", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log", "max", "maxinteger",
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
lua_CFunction aero_original_load, aero_original_setmetatable, aero_original_getmetatable, aero_original_next, aero_original_pairs,
    aero_original_xpcall,
    aero_original_rep, aero_original_coclose, aero_original_coresume, aero_original_costatus,
    aero_original_cocreate, aero_original_concat, aero_original_unpack, aero_original_format, aero_original_tostring;

static uint8_t *table_chunk = NULL;  // the dump; process lifetime
static size_t table_chunk_length = 0;

static const struct {
    int lib;
    const char *name;
    lua_CFunction wrapper;
} wrappers[] = {
    {LIB_BASE, "getmetatable", aero_sandbox_getmetatable}, {LIB_BASE, "next", aero_sandbox_next},
    {LIB_BASE, "pairs", aero_sandbox_pairs},
    {LIB_BASE, "xpcall", aero_sandbox_xpcall}, {LIB_STRING, "find", aero_bounded_find},
    {LIB_STRING, "match", aero_bounded_match}, {LIB_STRING, "gmatch", aero_bounded_gmatch},
    {LIB_STRING, "gsub", aero_bounded_gsub}, {LIB_STRING, "rep", aero_sandbox_rep},
    {LIB_COROUTINE, "close", aero_sandbox_coclose}, {LIB_COROUTINE, "wrap", aero_sandbox_cowrap},
    {LIB_TABLE, "sort", aero_sandbox_sort}, {LIB_COROUTINE, "create", aero_sandbox_cocreate},
    {LIB_TABLE, "concat", aero_bounded_concat}, {LIB_TABLE, "unpack", aero_bounded_unpack},
    {LIB_STRING, "format", aero_sandbox_format}, {LIB_BASE, "tostring", aero_sandbox_tostring}};

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
    aero_original_load = captured_function(LIB_ORIGINAL, "load");
    aero_original_setmetatable = captured_function(LIB_ORIGINAL, "setmetatable");
    aero_original_getmetatable = captured_function(LIB_BASE, "getmetatable");
    aero_original_next = captured_function(LIB_BASE, "next");
    aero_original_pairs = captured_function(LIB_BASE, "pairs");
    aero_original_xpcall = captured_function(LIB_BASE, "xpcall");
    aero_original_rep = captured_function(LIB_STRING, "rep");
    aero_original_coclose = captured_function(LIB_COROUTINE, "close");
    aero_original_coresume = captured_function(LIB_COROUTINE, "resume");
    aero_original_costatus = captured_function(LIB_COROUTINE, "status");
    aero_original_cocreate = captured_function(LIB_COROUTINE, "create");
    aero_original_concat = captured_function(LIB_TABLE, "concat");
    aero_original_unpack = captured_function(LIB_TABLE, "unpack");
    aero_original_format = captured_function(LIB_STRING, "format");
    aero_original_tostring = captured_function(LIB_BASE, "tostring");
    if (!aero_original_load || !aero_original_setmetatable || !aero_original_getmetatable || !aero_original_next || !aero_original_pairs || !aero_original_xpcall ||
        !aero_original_rep || !aero_original_coclose || !aero_original_coresume ||
        !aero_original_costatus || !aero_original_cocreate || !aero_original_concat || !aero_original_unpack || !aero_original_format ||
        !aero_original_tostring) {
        return luaL_error(L, "a wrapped function is missing");
    }
    if (luaL_loadbufferx(L, aero_table_chunk_text, aero_table_chunk_text_length, AERO_SANDBOX_CHUNK_NAME, "t") != LUA_OK) {
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
void aero_populate_if_library(lua_State *L, int idx) {
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
        lua_call(L, 0, AERO_TABLE_CHUNK_FUNCTIONS);
        int loops = lua_gettop(L) - AERO_TABLE_CHUNK_FUNCTIONS + 1;
        for (int i = 0; i < AERO_TABLE_CHUNK_FUNCTIONS; i++) {
            lua_pushstring(L, aero_table_functions[i].name);
            lua_pushvalue(L, loops + aero_table_functions[i].loop);
            lua_pushcclosure(L, aero_table_functions[i].function, 1);
            lua_rawset(L, idx);
        }
        lua_settop(L, loops - 1);
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
    aero_populate_if_library(L, 1);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

static int library_newindex(lua_State *L) {
    aero_populate_if_library(L, 1);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

static int library_pairs(lua_State *L) {
    aero_populate_if_library(L, 1);
    lua_pushcfunction(L, aero_sandbox_next);
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
    lua_pushcfunction(L, aero_sandbox_print);
    lua_setfield(L, globals, "print");
    lua_pushcfunction(L, aero_sandbox_load);
    lua_setfield(L, globals, "load");
    lua_pushcfunction(L, aero_sandbox_setmetatable);
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
    aero_sandbox_names_prepare(L);
    aero_sandbox_next_prepare(L);
    // [validate, env]
    lua_pushcfunction(L, aero_validate_answer);
    lua_insert(L, globals);
    return 2;
}

int aero_sandbox_prepare(lua_State *L) {
    if (!lua_checkstack(L, 2)) return LUA_ERRMEM;
    lua_pushcfunction(L, prepare_cfunction);
    return aero_pcall(L, 0, 2);
}
