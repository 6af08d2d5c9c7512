#include <stdio.h>
#include "response.h"
#include "codec/number.h"

#define OOM(b, mark, err) (b->len = mark, snprintf(err, JR_ERRLEN, "out of memory"), -1)

static int add_id(jr_buf *b, jr_id id)
{
    if (jr_buf_add(b, ",\"id\":", 6) != 0)
        return -1;
    if (id.text == NULL)
        return jr_buf_add(b, "null}", 5);
    if (jr_buf_add(b, id.text, id.len) != 0)
        return -1;
    return jr_buf_addc(b, '}');
}

static int encode(lua_State *L, jr_buf *b, int idx, const jr_kinds *k, char err[JR_ERRLEN])
{
    jr_codec_limits lim;
    lim.max_depth = k->max_depth;
    lim.max_size = (size_t)-1;
    return jr_encode(L, idx, b, &lim, k->mt_array, k->mt_object, err);
}

int jr_write_result(lua_State *L, jr_buf *b, int idx, jr_id id, const jr_kinds *k,
                    char err[JR_ERRLEN])
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"result\":";
    size_t mark = b->len;
    if (jr_buf_add(b, head, sizeof head - 1) != 0)
        return OOM(b, mark, err);
    if (encode(L, b, idx, k, err) != 0) {
        b->len = mark;
        return -1;
    }
    if (add_id(b, id) != 0)
        return OOM(b, mark, err);
    return 0;
}

int jr_write_error(lua_State *L, jr_buf *b, int idx, jr_id id, const jr_kinds *k,
                   char err[JR_ERRLEN])
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":";
    char num[JR_NUMBUF];
    size_t mark = b->len;
    int rc = 0;
    idx = jr_absindex(L, idx);
    lua_getfield(L, idx, "code");
    lua_getfield(L, idx, "message");
    lua_getfield(L, idx, "data");
    if (jr_buf_add(b, head, sizeof head - 1) != 0
        || jr_buf_add(b, num, jr_format_integer(num, (long long)lua_tointeger(L, -3))) != 0
        || jr_buf_add(b, ",\"message\":", 11) != 0)
        rc = OOM(b, mark, err);
    else if (encode(L, b, -2, k, err) != 0)
        rc = -1;
    else if (!lua_isnil(L, -1) && jr_buf_add(b, ",\"data\":", 8) != 0)
        rc = OOM(b, mark, err);
    else if (!lua_isnil(L, -1) && encode(L, b, -1, k, err) != 0)
        rc = -1;
    else if (jr_buf_addc(b, '}') != 0 || add_id(b, id) != 0)
        rc = OOM(b, mark, err);
    lua_pop(L, 3);
    if (rc != 0)
        b->len = mark;
    return rc;
}
