// aero_sandbox_bytecode.c — host-only bytecode: loading the host's own dumps (binary chunks
// are never accepted from a policy: its load is text-only) and dumping a compiled chunk.
#include "aero_sandbox_internal.h"

#include <stdlib.h>
#include <string.h>

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
