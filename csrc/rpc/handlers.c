/* Running handlers.
 *
 * server:handle() runs each handler under lua_pcall. An endpoint runs each
 * in a coroutine of its own (from a pool), so that it may wait (call the
 * peer) without holding up other messages. A handler that yields is kept
 * as a job, in a registry table keyed by its thread, and counted in its
 * endpoint's in_flight. When it finishes, whoever resumed it, its runner
 * completes it right there, in C: the answer is written and goes through
 * the endpoint's sink like any other (a batch member's with its batch).
 *
 * The runner is what a handler's thread runs: the handler under a
 * protected call that may yield (lua_pcallk on Lua 5.3+, whose
 * continuation completes a job). Lua 5.1 and LuaJIT have no
 * continuations: there the runner is a two-line Lua function around
 * xpcall (LuaJIT) or a bare call (5.1, which cannot yield across pcall:
 * an error after a yield goes to the resumer, and jr_resume answers it).
 *
 * A host may start handlers itself (an endpoint's start function: in
 * OpenResty, under its own coroutine scheduler). Every handler is then a
 * job from the start: start(run, job, fn, args...) must call run(job, fn,
 * args...) in a coroutine of its own (or directly), and run completes the
 * job when the handler finishes. */
#include "errors.h"
#include "deferral.h"
#include "exchange.h"

#define THREAD_POOL 64      /* handler threads kept for reuse, per server */
#define JOBS_KEY "jsonrpc.jobs"   /* registry: thread -> job */
#define JOB_MT "jsonrpc.job"

/* A handler that waits. Its uservalue holds JOB_EP, JOB_REQ, JOB_ID. */
typedef struct jr_job {
    jr_batch *batch;        /* the batch it belongs to, or NULL */
    long slot;              /* its place in the batch's answer */
    int done;               /* completed (it is completed once) */
    int answers;            /* it owes its message an answer (an id, not in
                               a batch): its completion sends it, and done */
    unsigned long tag;      /* the driver's tag of its message */
} jr_job;

enum { JOB_EP = 1, JOB_REQ, JOB_ID };

static int job_gc(lua_State *L)
{
    jr_job *job = (jr_job *)lua_touserdata(L, 1);
    if (job->batch != NULL)   /* never finished: its batch is let go */
        jr_batch_unref(job->batch);
    job->batch = NULL;
    return 0;
}

/* Pushes the jobs table (weak keys: a thread nobody can resume any more
 * takes its job with it). */
static void push_jobs(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, JOBS_KEY);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, JOBS_KEY);
}

/* Pushes the job of thread co and removes it from the table (it is
 * completed once); returns 0 with nothing pushed when co has none. */
static int take_job(lua_State *L, lua_State *co)
{
    push_jobs(L);
    lua_pushthread(co);
    if (co != L)
        lua_xmove(co, L, 1);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 3);
        return 0;
    }
    lua_insert(L, -3);        /* job, jobs, thread */
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return 1;
}

static void tell_waiting(jr_endpoint *ep)
{
    if (ep->sink != NULL && ep->sink->waiting != NULL)
        ep->sink->waiting(ep->sink, ep->in_flight);
}

/* Pushes a new job for the handler of e, counted as waiting. */
static void push_job(jr_exchange *x, const jr_envelope *e)
{
    lua_State *L = x->L;
    int has_id = (e->seen & JR_M_ID) != 0;
    jr_job *job = (jr_job *)lua_newuserdata(L, sizeof *job);
    job->batch = NULL;
    job->done = 0;
    job->answers = has_id && !x->batch;
    job->tag = x->tag;
    if (job->answers)
        x->owed = 1;
    if (luaL_newmetatable(L, JOB_MT)) {
        lua_pushcfunction(L, job_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_createtable(L, 3, 0);
    lua_pushvalue(L, x->epi);
    lua_rawseti(L, -2, JOB_EP);
    lua_pushvalue(L, e->base + JR_S_REQ);
    lua_rawseti(L, -2, JOB_REQ);
    if (has_id) {
        lua_pushlstring(L, e->id, e->id_len);
        lua_rawseti(L, -2, JOB_ID);
    }
    jr_set_uservalue(L, -2);
    if (has_id && x->batch) {
        job->slot = jr_exchange_reserve(x);
        job->batch = x->waiting;
        jr_batch_ref(job->batch);
    }
    x->ep->in_flight++;
    tell_waiting(x->ep);
}

/* Keeps the handler whose thread (at `thread`) yielded as a job. */
static void defer(jr_exchange *x, const jr_envelope *e, int thread)
{
    lua_State *L = x->L;
    push_jobs(L);
    lua_pushvalue(L, thread);
    push_job(x, e);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

int jr_push_outcome(jr_exchange *x, lua_State *co, int ok, int a, int req)
{
    lua_State *L = x->L;
    if (!ok && (jr_is_error(L, a) || jr_is_failure(L, a))) {
        lua_pushvalue(L, a);
        if (!jr_is_error(L, -1)) {
            jr_push_internal_error(x, -1, req);
            lua_remove(L, -2);
        }
        return 1;
    }
    if (!ok) {   /* raised past the runner (Lua 5.1): the thread is dead */
        jr_push_thread_error(x, co, a, req);
        return 1;
    }
    if (lua_isnil(L, a) && jr_is_error(L, a + 1)) {   /* return nil, err */
        lua_pushvalue(L, a + 1);
        return 1;
    }
    lua_pushvalue(L, a);
    return 0;
}

/* Completes the job on top (taken from the table), whose handler ran in
 * co: ok at `ok`, its two results (or what it raised) above. Writes the
 * answer (with its batch's, once the last member is done) and sends it. */
static void complete(lua_State *L, lua_State *co, int ok)
{
    jr_exchange x;
    jr_envelope e;
    jr_job *job = (jr_job *)lua_touserdata(L, -1);
    jr_endpoint *ep;
    int jt, epi, failed, result;
    size_t len;
    luaL_checkstack(L, 24, "jsonrpc dispatch");
    if (job->done) {
        lua_settop(L, ok + 2);
        return;
    }
    job->done = 1;
    jr_get_uservalue(L, -1);
    jt = lua_gettop(L);
    lua_rawgeti(L, jt, JOB_EP);
    epi = lua_gettop(L);
    ep = (jr_endpoint *)lua_touserdata(L, epi);
    jr_get_uservalue(L, epi);
    lua_rawgeti(L, -1, EP_SERVER);                 /* epi + 2 */
    lua_rawgeti(L, -2, EP_CONTEXT);                /* epi + 3 */
    jr_exchange_open(&x, L, (jr_server *)lua_touserdata(L, epi + 2), epi + 2, epi + 3, ep, epi,
                     epi + 1);
    /* a read-back envelope: the raw id and the request (slot JR_S_REQ) */
    lua_rawgeti(L, jt, JOB_REQ);
    e.base = lua_gettop(L) - JR_S_REQ;
    lua_rawgeti(L, jt, JOB_ID);
    e.id = lua_tolstring(L, -1, &len);
    e.id_len = len;
    e.id_ok = 1;
    e.seen = e.id != NULL ? JR_M_ID : 0;
    ep->in_flight--;
    failed = jr_push_outcome(&x, co, lua_toboolean(L, ok), ok + 1, e.base + JR_S_REQ);
    result = lua_gettop(L);
    if (e.id != NULL) {
        if (failed)
            jr_write_error_of(&x, &e, result);
        else
            jr_write_result_of(&x, &e, result);
    }
    x.tag = job->tag;
    x.owed = !job->answers;   /* a notification was done with when it came */
    if (job->batch != NULL) {
        jr_batch *b = job->batch;
        int whole = jr_batch_answer(b, job->slot, x.out->data, x.out->len);
        x.out->len = 0;
        if (whole < 0 || (whole == 1 && jr_buf_add(x.out, b->parts.data, b->parts.len) != 0))
            jr_exchange_error(&x, "not enough memory");
        x.tag = b->tag;
        x.owed = whole != 1;
        job->batch = NULL;
        jr_batch_unref(b);
    }
    jr_endpoint_flush(&x);
    tell_waiting(ep);
    lua_settop(L, ok + 2);
}

/* ---- the runner ---- */

/* In the handler's thread L, with ok, a, b on top: completes its job when
 * it had one (it waited); returns whether it had. */
static int finish_job(lua_State *L)
{
    int ok = lua_gettop(L) - 2;
    if (!take_job(L, L))
        return 0;
    complete(L, L, ok);
    return 1;
}

#if LUA_VERSION_NUM >= 503
static int runner_outcome(lua_State *L, int status)
{
    int ok = status == LUA_OK || status == LUA_YIELD;
    lua_pushboolean(L, ok);
    lua_replace(L, 1);   /* the message handler's slot */
    if (!ok)
        lua_pushnil(L);   /* ok, err, nil */
    lua_settop(L, 3);
    return 3;
}

/* Back from a handler that yielded (or failed: Lua finishes a failed
 * pcallk in a coroutine through its continuation too). */
static int runner_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)ctx;
    runner_outcome(L, status);
    return finish_job(L) ? 0 : 3;
}

/* runner(fn, ...) -> ok, a, b */
static int runner(lua_State *L)
{
    int nargs = lua_gettop(L) - 1, status;
    lua_pushcfunction(L, jr_capture_failure);
    lua_insert(L, 1);
    status = lua_pcallk(L, nargs, 2, 1, 0, runner_resumed);
    return runner_outcome(L, status);
}

void jr_push_runner(lua_State *L)
{
    lua_pushcfunction(L, runner);
}
#else
/* finish(ok, a, b), the Lua runner's tail call. */
static int finish(lua_State *L)
{
    lua_settop(L, 3);
    return finish_job(L) ? 0 : 3;
}

/* A handler that never waited has no job: its outcome goes back to the
 * dispatcher that resumed it, in Lua (a C call per handler would stop
 * LuaJIT's traces); one that waited is completed by the C finish. */
#define RUNNER_FINISH \
    "local running = coroutine.running\n" \
    "local function done(ok, a, b)\n" \
    "  if jobs[running()] == nil then return ok, a, b end\n" \
    "  return finish(ok, a, b)\n" \
    "end\n"
#ifdef LUAJIT_VERSION
static const char runner_chunk[] =
    "local xpcall, msgh, finish, jobs = ...\n" RUNNER_FINISH
    "return function(fn, ...) return done(xpcall(fn, msgh, ...)) end\n";
#else
static const char runner_chunk[] =
    "local _, _, finish, jobs = ...\n" RUNNER_FINISH
    "return function(fn, ...) return done(true, fn(...)) end\n";
#endif

/* Pushes the function a runner chunk returns, made once per Lua state and
 * kept in the registry under key: the chunk gets (first or xpcall, the
 * message handler, last, the jobs table). */
static void push_lua_runner(lua_State *L, const char *key, const char *chunk, size_t size,
                            lua_CFunction first, lua_CFunction last)
{
    lua_getfield(L, LUA_REGISTRYINDEX, key);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, chunk, size, key) != 0)
        lua_error(L);
    if (first != NULL)
        lua_pushcfunction(L, first);
    else
        lua_getglobal(L, "xpcall");
    lua_pushcfunction(L, jr_capture_failure);
    lua_pushcfunction(L, last);
    push_jobs(L);
    lua_call(L, 4, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
}

void jr_push_runner(lua_State *L)
{
    push_lua_runner(L, "jsonrpc.runner", runner_chunk, sizeof runner_chunk - 1, NULL, finish);
}
#endif

/* ---- the host's runner: run(job, fn, ...) ---- */

/* done(job, ok, a, b): completes the job (a tail call of the Lua runner). */
static int host_done(lua_State *L)
{
    lua_settop(L, 4);
#if LUA_VERSION_NUM < 502 && !defined(LUAJIT_VERSION)
    if (take_job(L, L))   /* filed by bind_job */
        lua_pop(L, 1);
#endif
    lua_pushvalue(L, 1);
    complete(L, L, 2);
    return 0;
}

#if LUA_VERSION_NUM < 502 && !defined(LUAJIT_VERSION)
/* bind(job): files the job under the running thread. */
static int bind_job(lua_State *L)
{
    push_jobs(L);
    lua_pushthread(L);
    lua_pushvalue(L, 1);
    lua_rawset(L, -3);
    return 0;
}
#endif

#if LUA_VERSION_NUM >= 503
static int host_runner_k(lua_State *L, int status, lua_KContext ctx)
{
    int ok = status == LUA_OK || status == LUA_YIELD;   /* job, msgh, results */
    (void)ctx;
    lua_pushboolean(L, ok);
    lua_replace(L, 2);
    if (!ok)
        lua_pushnil(L);
    return host_done(L);
}

static int host_runner(lua_State *L)
{
    int nargs = lua_gettop(L) - 2, status;
    lua_pushcfunction(L, jr_capture_failure);
    lua_insert(L, 2);                          /* job, msgh, fn, args */
    status = lua_pcallk(L, nargs, 2, 2, 0, host_runner_k);
    return host_runner_k(L, status, 0);
}

void jr_push_host_runner(lua_State *L)
{
    lua_pushcfunction(L, host_runner);
}
#else
#ifdef LUAJIT_VERSION
static const char host_runner_chunk[] =
    "local xpcall, msgh, done = ...\n"
    "return function(job, fn, ...) return done(job, xpcall(fn, msgh, ...)) end\n";
#else
/* plain 5.1: an error after a yield kills the thread and goes to whoever
 * resumed it; the job is filed under its thread, for jr_resume to answer */
static const char host_runner_chunk[] =
    "local bind, _, done = ...\n"
    "return function(job, fn, ...) bind(job) return done(job, true, fn(...)) end\n";
#endif

void jr_push_host_runner(lua_State *L)
{
#ifdef LUAJIT_VERSION
    lua_CFunction first = NULL;   /* xpcall */
#else
    lua_CFunction first = bind_job;
#endif
    push_lua_runner(L, "jsonrpc.host_runner", host_runner_chunk, sizeof host_runner_chunk - 1,
                    first, host_done);
}
#endif

/* jr_invoke when the host starts handlers: start(run, job, fn, args...).
 * A start that raises before the handler finished answers its error. */
static int invoke_by_host(jr_exchange *x, const jr_envelope *e, int nargs)
{
    lua_State *L = x->L;
    int first = lua_gettop(L) - nargs;         /* the fn is at first */
    push_job(x, e);
    lua_insert(L, first);                      /* job, fn, args */
    lua_pushvalue(L, first);
    lua_insert(L, first);                      /* the job kept, job, fn, args */
    lua_rawgeti(L, x->epv, EP_START);
    lua_insert(L, first + 1);
    lua_rawgeti(L, x->data, D_HOST_RUNNER);
    lua_insert(L, first + 2);                  /* job, start, run, job, fn, args */
    if (lua_pcall(L, nargs + 3, 0, x->msgh) != 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        lua_pushnil(L);                        /* job, false, err, nil */
        lua_pushvalue(L, first);
        complete(L, L, first + 1);
    }
    lua_settop(L, first - 1);
    return 2;
}

/* ---- running a handler ---- */

/* lua_resume across versions; *nres gets the number of results. */
static int resume_thread(lua_State *co, lua_State *from, int nargs, int *nres)
{
#if LUA_VERSION_NUM >= 504
    return lua_resume(co, from, nargs, nres);
#elif LUA_VERSION_NUM >= 502
    int status = lua_resume(co, from, nargs);
    *nres = lua_gettop(co);
    return status;
#else
    int status;
    (void)from;
    status = lua_resume(co, nargs);
    *nres = lua_gettop(co);
    return status;
#endif
}

/* Pushes a thread from the server's pool, or a new one. */
static lua_State *pooled_thread(jr_exchange *x)
{
    lua_State *L = x->L;
    int pooled;
    lua_rawgeti(L, x->data, D_THREADS);
    pooled = (int)lua_rawlen(L, -1);
    if (pooled == 0) {
        lua_pop(L, 1);
        return lua_newthread(L);
    }
    lua_rawgeti(L, -1, pooled);
    lua_pushnil(L);
    lua_rawseti(L, -3, pooled);
    lua_remove(L, -2);
    return lua_tothread(L, -1);
}

/* A thread whose handler finished without waiting can start another. */
static void pool_thread(jr_exchange *x, int thread)
{
    lua_State *L = x->L;
    int pooled;
    lua_rawgeti(L, x->data, D_THREADS);
    pooled = (int)lua_rawlen(L, -1);
    if (pooled < THREAD_POOL) {
        lua_pushvalue(L, thread);
        lua_rawseti(L, -2, pooled + 1);
    }
    lua_pop(L, 1);
}

/* jr_invoke for endpoints: the handler (at top - nargs) in a coroutine. */
static int invoke_in_thread(jr_exchange *x, const jr_envelope *e, int nargs)
{
    lua_State *L = x->L, *co;
    int first = lua_gettop(L) - nargs, nres, status;   /* the fn is at first */
    co = pooled_thread(x);
    lua_insert(L, first);                      /* thread, fn, args */
    lua_rawgeti(L, x->data, D_RUNNER);
    lua_insert(L, first + 1);                  /* thread, runner, fn, args */
    lua_xmove(L, co, nargs + 2);
    status = resume_thread(co, L, nargs + 1, &nres);
    if (status == LUA_OK) {                    /* ok, a, b */
        int res = lua_gettop(L) + 1, ok;
        lua_xmove(co, L, nres);
        lua_settop(co, 0);
        lua_settop(L, res + 2);
        ok = lua_toboolean(L, res);
        lua_remove(L, res);
        pool_thread(x, first);
        lua_remove(L, first);                  /* the thread */
        if (!ok) {                             /* an error value or a failure */
            lua_pop(L, 1);
            if (!jr_is_error(L, -1)) {
                jr_push_internal_error(x, -1, e->base + JR_S_REQ);
                lua_remove(L, -2);
            }
            return 1;
        }
        if (lua_isnil(L, -2) && jr_is_error(L, -1)) {
            lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1);
        return 0;
    }
    if (status == LUA_YIELD) {
        lua_settop(co, 0);                     /* what it yielded is not ours */
        defer(x, e, first);
        lua_settop(L, first - 1);
        return 2;
    }
    lua_xmove(co, L, 1);
    jr_push_thread_error(x, co, -1, e->base + JR_S_REQ);
    lua_replace(L, first);
    lua_settop(L, first);
    return 1;
}

int jr_invoke(jr_exchange *x, const jr_envelope *e, int entry, int nargs)
{
    lua_State *L = x->L;
    int first = lua_gettop(L) - nargs;
    luaL_checkstack(L, 12, "jsonrpc dispatch");   /* fn, a job, start, run, results */
    if (lua_istable(L, entry))
        lua_rawgeti(L, entry, JR_E_FN);
    else
        lua_pushvalue(L, entry);
    lua_insert(L, first + 1);
    if (x->deferral != NULL)
        return jr_defer(x, e, nargs);
    if (x->ep != NULL)
        return x->ep->host_starts ? invoke_by_host(x, e, nargs) : invoke_in_thread(x, e, nargs);
    /* a notification's results go nowhere: none are asked for */
    if (lua_pcall(L, nargs, (e->seen & JR_M_ID) ? 2 : 0, x->msgh) != 0) {
        if (!jr_is_error(L, -1)) {
            jr_push_internal_error(x, -1, e->base + JR_S_REQ);
            lua_remove(L, -2);
        }
        return 1;
    }
    if (!(e->seen & JR_M_ID))
        return 0;
    if (lua_isnil(L, -2) && jr_is_error(L, -1)) {   /* return nil, err */
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

/* ---- resuming ---- */

/* Whether co can be resumed: it yielded, or it has not started (a fresh
 * coroutine, as a host's start makes for a handler). */
static int resumable(lua_State *L, lua_State *co)
{
    lua_Debug ar;
    if (co == L)
        return 0;
    if (lua_status(co) == LUA_YIELD)
        return 1;
    return lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar) == 0 && lua_gettop(co) > 0;
}

int jr_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    int nargs = lua_gettop(L) - 1, status, nres;
    luaL_argcheck(L, co != NULL, 1, "coroutine expected");
    if (!resumable(L, co)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "cannot resume non-suspended coroutine");
        return 2;
    }
    if (!lua_checkstack(co, nargs))
        return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, nargs);
    status = resume_thread(co, L, nargs, &nres);
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1))
            return luaL_error(L, "too many results to resume");
        lua_pushboolean(L, 1);
        lua_xmove(co, L, nres);
        return nres + 1;
    }
    lua_settop(L, 0);
    lua_pushboolean(L, 0);
    lua_xmove(co, L, 1);                  /* false, what it raised */
    lua_pushnil(L);
    if (take_job(L, co)) {                /* a handler: answered now */
        complete(L, co, 1);
        lua_settop(L, 0);
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_settop(L, 2);
    return 2;
}
