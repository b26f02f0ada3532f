// aero_sandbox_tape.c — reading the facts tape, the byte form of the facts document that
// Swift encodes once per decision (FactsTape.swift) and the sandbox reads in place.
//
// Bounds: every read is checked against the tape's length (aero_tape_take raises "facts
// tape truncated at N" rather than read past the end), and containers are skipped by the
// body length they carry, so a policy's reads cost what they touch, not the document's size.
// A malformed tape is a host bug; it raises inside the facts metamethods (under lua_pcall).
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
#include "aero_sandbox_internal.h"

#include <string.h>

const uint8_t *aero_tape_take(lua_State *L, aero_tape_reader *tape, size_t count) {
    if (tape->offset > tape->length || tape->length - tape->offset < count) {
        luaL_error(L, "facts tape truncated at %d", (int)tape->offset);
    }
    const uint8_t *at = tape->bytes + tape->offset;
    tape->offset += count;
    return at;
}

uint32_t aero_tape_u32(lua_State *L, aero_tape_reader *tape) {
    uint32_t value;
    memcpy(&value, aero_tape_take(L, tape, 4), 4);
    return value;
}

uint64_t aero_tape_u64(lua_State *L, aero_tape_reader *tape) {
    uint64_t value;
    memcpy(&value, aero_tape_take(L, tape, 8), 8);
    return value;
}

// Moves the reader past one value (a container by its body length).
void aero_tape_skip_value(lua_State *L, aero_tape_reader *tape) {
    uint8_t op = *aero_tape_take(L, tape, 1);
    switch (op) {
    case 'O':
    case 'A': aero_tape_u32(L, tape); aero_tape_take(L, tape, aero_tape_u32(L, tape)); break;
    case 's': aero_tape_take(L, tape, aero_tape_u32(L, tape)); break;
    case 'i':
    case 'd': aero_tape_take(L, tape, 8); break;
    case 'T':
    case 'F': break;
    default: luaL_error(L, "facts tape: unexpected op %d at %d", (int)op, (int)tape->offset - 1);
    }
}

// The tape offset of root.nodes[index] when it is an object; 0 when there is none. Reads
// only the tape (no Lua values are made).
size_t aero_tape_node_offset(lua_State *L, const uint8_t *bytes, size_t length, uint32_t index) {
    if (index == 0) return 0;
    aero_tape_reader tape = {bytes, length, AERO_TAPE_ROOT_OFFSET, {0, 0}};
    if (*aero_tape_take(L, &tape, 1) != 'O') return 0;
    aero_tape_u32(L, &tape);
    aero_tape_u32(L, &tape);
    for (;;) {
        uint8_t op = *aero_tape_take(L, &tape, 1);
        if (op == 'E') return 0;
        if (op != 's') luaL_error(L, "facts tape: bad key at %d", (int)tape.offset - 1);
        uint32_t key_length = aero_tape_u32(L, &tape);
        const uint8_t *key = aero_tape_take(L, &tape, key_length);
        if (key_length == 5 && memcmp(key, "nodes", 5) == 0 && tape.offset < length && bytes[tape.offset] == 'A') {
            tape.offset += 9;  // 'A' count body
            for (;;) {
                if (tape.offset < length && bytes[tape.offset] == 'e') return 0;
                size_t element = tape.offset;
                aero_tape_skip_value(L, &tape);
                if (*aero_tape_take(L, &tape, 1) != 'I') luaL_error(L, "facts tape: bad element at %d", (int)tape.offset - 1);
                if (aero_tape_u32(L, &tape) == index) return bytes[element] == 'O' ? element : 0;
            }
        }
        aero_tape_skip_value(L, &tape);
        if (*aero_tape_take(L, &tape, 1) != 'S') luaL_error(L, "facts tape: bad field at %d", (int)tape.offset - 1);
    }
}
