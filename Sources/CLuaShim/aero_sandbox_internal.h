// aero_sandbox_internal.h — what the files of the policy sandbox share (not part of the
// public header include/aero_lua.h, which is the Swift side's API and stays as it was).
//
// The sandbox is split along its bounds, one file each, every file's head saying what it
// bounds and why:
//   aero_sandbox_tape.c      the facts tape reader (format, checked reads)
//   aero_sandbox_facts.c     read-only facts proxies built lazily from the tape
//   aero_sandbox_names.c     stable names (tostring, print, string.format) and print's sink
//   aero_match.c             Lua 5.4.4's pattern matcher, step-counted
//   aero_sandbox_patterns.c  string.find/match/gmatch/gsub on that matcher, their bounds
//   aero_sandbox_bounds.c    wrappers bounding work inside one C call (load, rep,
//                            setmetatable, xpcall, coroutines, __index chains)
//   aero_sandbox_next.c      next/pairs in a defined order (determinism)
//   aero_sandbox_sort.c      table.sort: a stable merge sort (determinism, time checks)
//   aero_sandbox_tablelib.c  table.insert/remove/move in Lua (the instruction budget counts)
//   aero_sandbox_env.c       the allow-list, library capture, library tables, prepare
//   aero_sandbox_answer.c    validation of the policy's answer
//   aero_sandbox_bytecode.c  host-only bytecode load and dump
//
// Everything here either is a lua_CFunction (so it runs inside lua_pcall, where raising is
// safe) or is a protected entry point that wraps one in aero_pcall. See aero_lua.h for the
// rule that no Lua error ever longjmps across a Swift frame.
#ifndef AERODB_SANDBOX_INTERNAL_H
#define AERODB_SANDBOX_INTERNAL_H

#include "aero_lua.h"

#include <stddef.h>
#include <stdint.h>

static inline aero_budget *aero_budget_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (aero_budget *)ud;
}

static inline int aero_budget_tripped(const aero_budget *budget) {
    return budget->instructions_exceeded || budget->time_exceeded || budget->memory_exceeded;
}

// ---- The facts tape (aero_sandbox_tape.c) ----

// The root value starts right after the 'H' header.
#define AERO_TAPE_ROOT_OFFSET 9

typedef struct aero_tape_reader {
    const uint8_t *bytes;
    size_t length;
    size_t offset;
    size_t alias_offsets[2];
} aero_tape_reader;

const uint8_t *aero_tape_take(lua_State *L, aero_tape_reader *tape, size_t count);
uint32_t aero_tape_u32(lua_State *L, aero_tape_reader *tape);
uint64_t aero_tape_u64(lua_State *L, aero_tape_reader *tape);
void aero_tape_skip_value(lua_State *L, aero_tape_reader *tape);
size_t aero_tape_node_offset(lua_State *L, const uint8_t *bytes, size_t length, uint32_t index);

// ---- Stable names and print (aero_sandbox_names.c) ----

// Pushes the stable name ("table: N") of the value at idx when Lua would name it by its
// address and returns 1; returns 0 (pushing nothing) otherwise.
int aero_push_stable_name(lua_State *L, int idx);
// The per-run id of the table/function/thread/userdata at idx, given on first request.
lua_Integer aero_stable_id(lua_State *L, int idx);
// The id already given to the value at idx, or 0 (gives none).
lua_Integer aero_stable_id_given(lua_State *L, int idx);
int aero_sandbox_tostring(lua_State *L);
int aero_sandbox_print(lua_State *L);
int aero_sandbox_format(lua_State *L);
// Makes the registry tables of the printed lines and the stable ids (prepare).
void aero_sandbox_names_prepare(lua_State *L);

// ---- Patterns (aero_match.c, aero_sandbox_patterns.c) ----

// Lua 5.4.4's string.find/match/gmatch/gsub on the step-counted matcher (aero_match.c).
int aero_match_find(lua_State *L);
int aero_match_match(lua_State *L);
int aero_match_gmatch(lua_State *L);
int aero_match_gsub(lua_State *L);
// The same, after the size bounds (aero_sandbox_patterns.c).
int aero_bounded_find(lua_State *L);
int aero_bounded_match(lua_State *L);
int aero_bounded_gmatch(lua_State *L);
int aero_bounded_gsub(lua_State *L);

// ---- Bounds inside one C call (aero_sandbox_bounds.c) ----

int aero_sandbox_rep(lua_State *L);
int aero_sandbox_load(lua_State *L);
int aero_sandbox_setmetatable(lua_State *L);
int aero_sandbox_getmetatable(lua_State *L);
int aero_sandbox_xpcall(lua_State *L);
int aero_sandbox_coclose(lua_State *L);
int aero_sandbox_cocreate(lua_State *L);
int aero_sandbox_cowrap(lua_State *L);
int aero_bounded_concat(lua_State *L);
int aero_bounded_unpack(lua_State *L);
// Raises unless the __index chain of tables from the table at idx is within the bound.
void aero_check_index_chain(lua_State *L, int idx, const char *name);

// ---- Ordered traversal (aero_sandbox_next.c) and sort (aero_sandbox_sort.c) ----

int aero_sandbox_next(lua_State *L);
int aero_sandbox_pairs(lua_State *L);
// Makes the registry tables of the traversal snapshots (prepare).
void aero_sandbox_next_prepare(lua_State *L);
int aero_sandbox_sort(lua_State *L);

// ---- table.insert/remove/move (aero_sandbox_tablelib.c) ----

// The element loops, in Lua: the chunk returns AERO_TABLE_CHUNK_FUNCTIONS functions.
extern const char aero_table_chunk_text[];
extern const size_t aero_table_chunk_text_length;
#define AERO_TABLE_CHUNK_FUNCTIONS 3
// Each table function: its name, the C closure made over the loop the chunk returns at
// position loop (0-based).
typedef struct aero_table_function {
    const char *name;
    lua_CFunction function;
    int loop;
} aero_table_function;
extern const aero_table_function aero_table_functions[AERO_TABLE_CHUNK_FUNCTIONS];

// ---- The environment (aero_sandbox_env.c) ----

// Fills the library table at idx if it is one not yet filled.
void aero_populate_if_library(lua_State *L, int idx);

// The originals the wrappers call (set once per process by the library capture).
extern lua_CFunction aero_original_load, aero_original_setmetatable, aero_original_getmetatable,
    aero_original_next, aero_original_pairs, aero_original_xpcall,
    aero_original_rep, aero_original_coclose, aero_original_coresume,
    aero_original_costatus, aero_original_cocreate, aero_original_concat, aero_original_unpack,
    aero_original_format, aero_original_tostring;

// ---- The answer (aero_sandbox_answer.c) ----

int aero_validate_answer(lua_State *L);

#endif
