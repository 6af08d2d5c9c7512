/* Frame, idle and send timeouts of a stream (see deadline.h). */
#include <stdio.h>
#include "stream.h"

#define NEVER UINT64_MAX

static uint64_t now_of(const jr_stream *s)
{
    return uv_now(s->h.loop->uv);
}

static uint64_t earliest(const jr_deadline *d)
{
    uint64_t t = NEVER;
    if (d->frame_ms && d->frame_pending && d->frame_since + d->frame_ms < t)
        t = d->frame_since + d->frame_ms;
    if (d->send_ms && d->send_pending && d->send_since + d->send_ms < t)
        t = d->send_since + d->send_ms;
    if (d->idle_ms && d->active_at + d->idle_ms < t)
        t = d->active_at + d->idle_ms;
    return t;
}

static void fired(uv_timer_t *timer);

/* Arms the timer for the earliest deadline, unless it fires before it
 * anyway (it re-checks then). */
static void schedule(jr_stream *s)
{
    jr_deadline *d = &s->deadline;
    uint64_t t, now;
    if (!d->active || uv_is_closing((uv_handle_t *)&d->timer))
        return;
    t = earliest(d);
    if (t == NEVER) {
        uv_timer_stop(&d->timer);
        d->due = 0;
        return;
    }
    if (d->due != 0 && d->due <= t)
        return;
    now = now_of(s);
    d->due = t;
    uv_timer_start(&d->timer, fired, t > now ? t - now : 0, 0);
}

static void expire(jr_stream *s, const char *what, uint64_t ms)
{
    char why[120];
    snprintf(why, sizeof why, "%s timeout: %s within %g s", what,
             what[0] == 'f' ? "no complete frame" : what[0] == 's' ? "the peer read nothing"
                                                                   : "no traffic",
             (double)ms / 1000);
    jr_stream_close(s, why);
}

/* Whether handlers or calls are waiting on the connection's endpoint. */
static int busy(const jr_stream *s)
{
    return s->ep != NULL && jr_endpoint_busy(s->ep);
}

static int idle(jr_stream *s)
{
    return !s->deadline.frame_pending && jr_stream_queued(s) == 0 && s->writes == 0 && !busy(s);
}

static void fired(uv_timer_t *timer)
{
    jr_stream *s = (jr_stream *)timer->data;
    jr_deadline *d = &s->deadline;
    uint64_t now = now_of(s);
    d->due = 0;
    if (d->frame_ms && d->frame_pending) {
        if (!s->reading)
            d->frame_since = now;   /* we hold it back, not the peer */
        else if (now - d->frame_since >= d->frame_ms) {
            expire(s, "frame", d->frame_ms);
            return;
        }
    }
    if (d->send_ms && d->send_pending) {
        size_t q = jr_stream_queued(s);
        if (uv_stream_get_write_queue_size(s->writer) == 0) {
            d->send_pending = 0;   /* the kernel took it all */
        } else if (q < d->send_mark) {   /* it read some: the clock restarts */
            d->send_since = now;
            d->send_mark = q;
        } else if (now - d->send_since >= d->send_ms) {
            expire(s, "send", d->send_ms);
            return;
        }
    }
    if (d->idle_ms && now - d->active_at >= d->idle_ms) {
        int quiet = idle(s);
        if (uv_is_closing(&s->u.handle))
            return;   /* closed meanwhile, from Lua */
        if (quiet) {
            expire(s, "idle", d->idle_ms);
            return;
        }
        d->active_at = now;
    }
    schedule(s);
}

static uint64_t to_ms(double seconds)
{
    if (seconds <= 0)
        return 0;
    return seconds * 1000 < 1 ? 1 : (uint64_t)(seconds * 1000 + 0.5);
}

int jr_deadline_set(jr_stream *s, double frame, double idle_s, double send)
{
    jr_deadline *d = &s->deadline;
    d->frame_ms = to_ms(frame);
    d->idle_ms = to_ms(idle_s);
    d->send_ms = to_ms(send);
    if (!d->active && (d->frame_ms || d->idle_ms || d->send_ms)) {
        int rc = uv_timer_init(s->h.loop->uv, &d->timer);
        if (rc != 0)
            return rc;
        d->timer.data = s;
        uv_unref((uv_handle_t *)&d->timer);   /* it never keeps the loop alive */
        d->active = 1;
        s->handles++;
    }
    d->active_at = now_of(s);
    d->due = 0;
    schedule(s);
    return 0;
}

void jr_deadline_read(jr_stream *s, int took)
{
    jr_deadline *d = &s->deadline;
    if (!d->active)
        return;
    d->active_at = now_of(s);
    if (s->layer->ops->partial(s->layer) == 0) {
        d->frame_pending = 0;
    } else if (!d->frame_pending || took) {   /* a new frame began in this read */
        d->frame_pending = 1;
        d->frame_since = d->active_at;
    }
    schedule(s);
}

void jr_deadline_wrote(jr_stream *s)
{
    jr_deadline *d = &s->deadline;
    if (!d->active)
        return;
    d->active_at = now_of(s);
    if (d->send_pending) {
        d->send_since = d->active_at;
        d->send_mark = jr_stream_queued(s);
    }
}

void jr_deadline_blocked(jr_stream *s)
{
    jr_deadline *d = &s->deadline;
    if (!d->active || d->send_pending)
        return;
    d->send_pending = 1;
    d->send_since = now_of(s);
    d->send_mark = jr_stream_queued(s);
    schedule(s);
}

void jr_deadline_resumed(jr_stream *s)
{
    jr_deadline *d = &s->deadline;
    if (d->active && d->frame_pending)
        d->frame_since = now_of(s);
}

int jr_deadline_close(jr_stream *s, uv_close_cb cb)
{
    jr_deadline *d = &s->deadline;
    if (!d->active || uv_is_closing((uv_handle_t *)&d->timer))
        return 0;
    uv_close((uv_handle_t *)&d->timer, cb);
    return 1;
}
