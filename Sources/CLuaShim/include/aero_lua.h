// aero_lua.h — the C side of AeroDB's Lua binding.
//
// Design notes
// ------------
// Lua reports errors with longjmp. A longjmp that crosses a Swift frame is undefined
// behaviour (Swift cleanups, retains and defers are skipped). The rule, kept by this
// header and by AeroPolicy:
//
//   1. Swift calls directly only the API functions that cannot raise: state creation and
//      closing, stack reads of values that are already strings/numbers/booleans (no
//      conversion), lua_settop/lua_gettop, raw table reads, lua_checkstack, and the
//      protected entry points lua_load and lua_pcall.
//   2. Everything that may raise (allocation, metamethods, conversions) runs inside
//      lua_pcall of a C function defined in this target, so the longjmp lands on the
//      setjmp inside lua_pcall, below any Swift frame.
//   3. Functions that Lua calls (the budget hook, the allocator, the print sink) are C.
//      When one must fail it raises from C, never from a Swift callback.
//
// Budgets (instructions, memory, CPU time) live in one aero_budget that is the
// allocator's user data, so every coroutine (lua_State thread) of one state shares it.
// Exceeding a budget is sticky: once tripped the hook fires on every instruction and raises
// again, so a policy's own pcall cannot swallow it for long, and the host checks the flags.
#ifndef AERODB_LUA_SHIM_H
#define AERODB_LUA_SHIM_H

#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>
#include <lua5.4/lualib.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Size of the fixed buffer that records where an error was raised (no allocation).
#define AERO_WHERE_BYTES_MAX 256
/// Stack levels the message handler inspects to find the line an error came from.
#define AERO_HANDLER_LEVELS_MAX 64

typedef struct aero_budget {
    // Memory: bytes currently allocated, the cap, the peak, and whether a request was refused.
    size_t memory_used_bytes;
    size_t memory_limit_bytes;
    size_t memory_peak_bytes;
    int memory_exceeded;

    // Instructions: counted in steps of hook_interval VM instructions.
    int64_t instructions_used;
    int64_t instruction_limit;
    int hook_interval;
    int instructions_exceeded;

    // Time: CPU time of the thread running the state, at most cpu_limit_ns since
    // cpu_start_ns (CLOCK_THREAD_CPUTIME_ID). The hook compares a cheap CLOCK_MONOTONIC
    // deadline first and reads the thread's CPU clock only once that wall deadline passed:
    // CPU time never runs faster than wall time, so the check costs nothing while the run
    // is within its budget, and a thread that was preempted (a loaded host) is not charged
    // for time it did not run. deadline_ns == 0 means no time budget. Set by
    // aero_start_time_budget.
    uint64_t deadline_ns;
    uint64_t cpu_start_ns;
    uint64_t cpu_limit_ns;
    int time_exceeded;

    // Where the last error was raised: first Lua frame's source and line (filled by the
    // message handler, no allocation). line < 0 when unknown.
    char where_source[AERO_WHERE_BYTES_MAX];
    int where_line;

    // print(): lines kept in a registry table; bounded by these counters (see aero_sandbox_names.c).
    int printed_lines;
    int printed_lines_max;
    size_t printed_bytes;
    size_t printed_bytes_max;
    size_t printed_line_bytes_max;
    int printed_truncated;

    // The state's small-block arena (aero_lua.c); NULL when every block comes from malloc.
    void *arena;
    // Set by the owner of a state in which no finalizer can exist and no to-be-closed
    // variable is pending at close (the policy sandbox): aero_state_close then releases
    // the state's memory in bulk instead of calling lua_close.
    int release_in_bulk;

    // ---- aerodb-policy tooling (aero_tooling.h): NULL except under `aerodb-policy test`. ----
    struct aero_tooling *tooling;
} aero_budget;

/// Resets counters and flags; keeps the limits.
void aero_budget_reset(aero_budget *budget);

/// A new Lua state whose every allocation is charged to `budget` (which must outlive it).
/// Returns NULL if even the initial allocation is refused.
lua_State *aero_state_new(aero_budget *budget);

/// Closes a state made by aero_state_new and releases its arena (in bulk, without lua_close,
/// when budget->release_in_bulk is set and the state has an arena). Never raises.
void aero_state_close(lua_State *L, aero_budget *budget);

/// Installs the instruction/deadline hook on L (threads created later inherit it).
void aero_install_budget_hook(lua_State *L);

/// CLOCK_MONOTONIC now, in nanoseconds.
uint64_t aero_monotonic_ns(void);

/// CPU time used by the calling thread, in nanoseconds (CLOCK_THREAD_CPUTIME_ID).
uint64_t aero_thread_cpu_ns(void);

/// Starts the time budget: at most limit_ms of the calling thread's CPU time from now.
void aero_start_time_budget(aero_budget *budget, uint64_t limit_ms);

/// Whether the time budget is spent at wall time now_ns (the budget hook's check): false
/// while now_ns is within the wall deadline; past it, true only when the thread's CPU time is
/// spent too, else the deadline moves to the earliest moment it could be.
int aero_time_budget_spent(aero_budget *budget, uint64_t now_ns);

/// Fail-closed re-check after a call returned: the hooks only fire between VM instructions
/// and at calls, so work done inside one C call (a library function, a metamethod chain the
/// VM resolves in C) is seen by no hook. This reads the thread's CPU clock and the counters
/// directly and sets the exceeded flags of every budget that is spent. Returns 1 when any
/// budget is (now) exceeded. Never raises; call it after every aero_pcall of policy code.
int aero_budget_recheck(aero_budget *budget);

/// The message handler used by aero_pcall: records where the error was raised into the
/// budget and returns the error object unchanged.
int aero_message_handler(lua_State *L);

/// lua_pcall with aero_message_handler below the function. Same contract as lua_pcall.
int aero_pcall(lua_State *L, int nargs, int nresults);

/// Stops / restarts the garbage collector (lua_gc is variadic, so Swift cannot call it).
/// A sandbox's setup (host code, bounded) runs with the collector stopped: a fresh state
/// would otherwise run several full cycles over the environment while it is being built.
void aero_gc_stop(lua_State *L);
void aero_gc_restart(lua_State *L);

/// Loads a text chunk (binary chunks are refused: mode "t"). Protected by lua_load itself.
int aero_load_text(lua_State *L, const char *bytes, size_t length, const char *chunkname);

/// Opens base, coroutine, table, string, math and utf8 (never io, os, package, debug),
/// protected. Returns a lua_pcall status.
int aero_open_pure_libraries(lua_State *L);

/// Returns the string at idx if it is a string (never converts numbers), else NULL.
const char *aero_string_at(lua_State *L, int idx, size_t *length);

// ---- The policy sandbox (aero_sandbox_*.c). Each entry point is protected (lua_pcall or
// lua_load) and returns a Lua status; on error the error object is on top of the stack. ----

/// Pattern-function bounds (string.find/match/gmatch/gsub run in C, where the hook never
/// fires). A call is refused unless subject <= AERO_PATTERN_SUBJECT_BYTES_MAX and pattern <=
/// AERO_PATTERN_BYTES_MAX; the matcher (aero_match.c) then counts its steps and stops a call
/// (an iterator call for gmatch) after AERO_PATTERN_STEPS_MAX, checking the time budget every
/// AERO_PATTERN_TIME_CHECK_STEPS. Measured in docs/sandbox.md.
#define AERO_PATTERN_SUBJECT_BYTES_MAX (64 * 1024)
#define AERO_PATTERN_BYTES_MAX 256
#define AERO_PATTERN_STEPS_MAX 500000
#define AERO_PATTERN_TIME_CHECK_STEPS 65536
/// string.gsub with a replacement string: '%0'..'%9' escapes in it times the most matches
/// (subject bytes + 1, or max_n) at most this (each escape is work in C that no hook sees and
/// no memory bounds; ~10 ns each, so the bound is ~10 ms).
#define AERO_GSUB_ESCAPES_MAX (1 << 20)
/// table.concat/unpack/sort: an argument's __index chain of tables at most this long (every
/// element read follows it inside one C call).
#define AERO_INDEX_CHAIN_MAX 16

/// A policy's answer: at most this many refusal reasons, each at most this many bytes
/// (checked by the sandbox's validate, aero_sandbox_answer.c).
#define AERO_REASONS_MAX 32
#define AERO_REASON_BYTES_MAX 1024

/// Sandbox bounds enforced by the C wrappers (aero_sandbox_bounds.c, aero_sandbox_patterns.c): load() takes at most
/// AERO_LOAD_BYTES_MAX bytes of Lua text per chunk; string.rep at most AERO_REP_COUNT_MAX
/// repetitions and AERO_REP_BYTES_MAX result bytes per call; a printed line is kept up to
/// AERO_PRINTED_LINE_BYTES_MAX bytes (the budget's printed_line_bytes_max, at most this).
#define AERO_LOAD_BYTES_MAX (64 * 1024)
#define AERO_REP_COUNT_MAX (1 << 20)
#define AERO_REP_BYTES_MAX (1 << 20)
#define AERO_PRINTED_LINE_BYTES_MAX 1024
/// The chunk name of the host's own Lua code in a sandbox (table.insert/remove/move).
#define AERO_SANDBOX_CHUNK_NAME "=aerodb-sandbox"

/// Expects an empty stack. Builds the allow-listed environment in C (no library is opened
/// in the state; library tables are filled on first use), the protected string metatable
/// and the print table, and leaves [validate, env]: the C function that calls a policy
/// function and checks its answer, and the policy's _ENV.
int aero_sandbox_prepare(lua_State *L);

/// Captures, once per process, the standard library functions the sandbox environment is
/// built from (a scratch state; thread-safe). Returns 1 when they are available. Called
/// before a run's deadline starts so the one-time cost is never charged to a policy.
int aero_sandbox_capture_libraries(void);

/// Pushes the root proxy of read-only facts read lazily from a tape (format in
/// aero_sandbox_facts.c). The tape is not copied: the caller keeps it valid and unchanged until it
/// runs no more Lua code in this state.
int aero_sandbox_push_facts(lua_State *L, const uint8_t *tape, size_t length);

/// Drops the state's pointer to the tape (raw registry access; cannot raise): any later
/// read of unmaterialized facts raises "facts tape missing" instead of reading freed memory.
void aero_sandbox_forget_facts(lua_State *L);

/// Pushes the table of printed lines (raw registry read; cannot raise).
void aero_sandbox_push_printed(lua_State *L);

/// Loads a binary chunk that the host itself dumped. Never for policy text.
int aero_load_host_binary(lua_State *L, const uint8_t *bytes, size_t length, const char *chunkname);

/// For the policy worker process: be killed (SIGKILL) when the parent process ends, so a
/// worker stuck in a runaway C call never outlives its host (Linux; elsewhere a no-op).
/// Returns 0 when the parent is already gone.
int aero_die_with_parent(void);

/// A growable byte buffer filled by aero_dump_top (free with aero_bytes_free).
typedef struct aero_bytes {
    uint8_t *data;
    size_t length;
    size_t capacity;
    int failed;
} aero_bytes;

/// Dumps the Lua function on top of the stack (with debug info unless strip) into out.
/// Returns a lua_pcall status; out->failed is set when the buffer could not grow.
int aero_dump_top(lua_State *L, aero_bytes *out, int strip);
void aero_bytes_free(aero_bytes *bytes);

// ---- Static inline wrappers for the API's macros (Swift cannot import C macros). ----
static inline int aero_registry_index(void) { return LUA_REGISTRYINDEX; }
static inline int aero_multret(void) { return LUA_MULTRET; }
static inline void aero_lua_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void aero_lua_newtable(lua_State *L) { lua_newtable(L); }
static inline int aero_lua_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    return lua_pcall(L, nargs, nresults, msgh);
}
static inline const char *aero_lua_tostring(lua_State *L, int idx) { return lua_tostring(L, idx); }
static inline int aero_lua_isnil(lua_State *L, int idx) { return lua_isnil(L, idx); }
static inline int aero_lua_istable(lua_State *L, int idx) { return lua_istable(L, idx); }
static inline int aero_lua_isfunction(lua_State *L, int idx) { return lua_isfunction(L, idx); }
static inline void aero_lua_pushcfunction(lua_State *L, lua_CFunction f) { lua_pushcfunction(L, f); }
static inline lua_Integer aero_lua_tointeger(lua_State *L, int idx, int *isnum) { return lua_tointegerx(L, idx, isnum); }
static inline lua_Number aero_lua_tonumber(lua_State *L, int idx, int *isnum) { return lua_tonumberx(L, idx, isnum); }
static inline int aero_lua_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline void aero_lua_insert(lua_State *L, int idx) { lua_insert(L, idx); }
static inline void aero_lua_remove(lua_State *L, int idx) { lua_remove(L, idx); }

#ifdef __cplusplus
}
#endif
#endif
