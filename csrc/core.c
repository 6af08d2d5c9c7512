/* The C module jsonrpc.core: gathers the engine's parts into one table. */
#include <signal.h>
#include "common/compat.h"
#include "common/buffer.h"
#include "codec/codec.h"
#include "framing/framing.h"
#include "rpc/deferral.h"
#include "rpc/errors.h"
#include "rpc/endpoint.h"
#include "rpc/request.h"
#include "rpc/server.h"
#include "uv/loop.h"
#include "uv/timer.h"
#include "uv/stream.h"
#include "uv/socket.h"
#include "uv/process.h"

#ifndef JSONRPC_VERSION
#define JSONRPC_VERSION "scm"
#endif

#if defined(_WIN32)
#define JR_EXPORT __declspec(dllexport)
#else
#define JR_EXPORT __attribute__((visibility("default")))
#endif

JR_EXPORT int luaopen_jsonrpc_core(lua_State *L);

/* A peer that closes while we write must cost only its connection: with
 * SIGPIPE at its default, the write would kill the whole process. A host
 * that chose a disposition of its own keeps it. */
static void ignore_sigpipe(void)
{
#ifndef _WIN32
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL
        && !(sa.sa_flags & SA_SIGINFO)) {
        sa.sa_handler = SIG_IGN;
        sa.sa_flags = 0;
        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGPIPE, &sa, NULL);
    }
#endif
}

JR_EXPORT int luaopen_jsonrpc_core(lua_State *L)
{
    ignore_sigpipe();
    lua_newtable(L);
    jr_buf_openlib(L);
    jr_codec_open(L);
    jr_framing_open(L);
    jr_errors_open(L);
    jr_server_open(L);
    jr_deferral_open(L);
    jr_endpoint_open(L);
    jr_request_open(L);
    jr_loop_open(L);
    jr_timer_open(L);
    jr_stream_open(L);
    jr_socket_open(L);
    jr_process_open(L);
    lua_pushliteral(L, JSONRPC_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
