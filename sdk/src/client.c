/*
 * The client: connect and hello, the event queue and dispatch, heartbeats
 * that hold the session's lease, and what happens when the daemon restarts
 * or goes away.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_RUNTIME_DIR "/run/semdraw"

/* ---- events ---- */

void sdk_queue_event(semdraw_client *c, const semdraw_event *ev, const char *message)
{
    if (ev->type == SEMDRAW_EVENT_FRAME_READY) /* only the newest hint per canvas matters */
        for (int i = 0; i < c->n_events; i++)
            if (c->events[i].ev.type == SEMDRAW_EVENT_FRAME_READY && c->events[i].ev.canvas == ev->canvas) {
                if (ev->seq > c->events[i].ev.seq) c->events[i].ev = *ev;
                return;
            }
    if (c->n_events == c->cap_events) {
        const int cap = c->cap_events ? 2 * c->cap_events : 16;
        sdk_event *p = realloc(c->events, (size_t)cap * sizeof *p);
        if (!p) return; /* an event lost to memory pressure; the state it reports is still queryable */
        c->events = p, c->cap_events = cap;
    }
    sdk_event *e = &c->events[c->n_events++];
    e->ev = *ev;
    e->ev.struct_size = sizeof e->ev;
    e->message = message ? strdup(message) : NULL;
}

void sdk_heard(semdraw_client *c, uint64_t instance_id)
{
    c->last_heard_ms = sdk_now_ms();
    c->disconnected_reported = 0;
    if (!instance_id || instance_id == c->instance_id) return;
    if (c->instance_id) { /* 0 only before the hello */
        c->restart_pending = 1;
        semdraw_event ev = {.type = SEMDRAW_EVENT_DAEMON_RESTARTED};
        sdk_queue_event(c, &ev, "the daemon restarted");
    }
    c->instance_id = instance_id;
}

void sdk_on_event(semdraw_client *c, const Semdraw__V1__Event *e)
{
    semdraw_event ev = {0};
    switch (e->kind_case) {
    case SEMDRAW__V1__EVENT__KIND_FRAME_READY: {
        const Semdraw__V1__FrameReady *f = e->frame_ready;
        semdraw_canvas *cv = sdk_find_canvas(c, f->canvas_id);
        if (!cv) return;
        ev = (semdraw_event){.type = SEMDRAW_EVENT_FRAME_READY, .canvas = cv, .canvas_id = f->canvas_id,
                             .seq = f->seq, .input_seq = f->input_seq};
        return sdk_queue_event(c, &ev, NULL);
    }
    case SEMDRAW__V1__EVENT__KIND_MODEL: {
        const Semdraw__V1__ModelEvent *m = e->model;
        c->model_state = m->has_state ? (uint32_t)m->state : c->model_state;
        c->load_progress = m->has_progress ? m->progress : c->load_progress;
        free(c->model_message);
        c->model_message = m->message ? strdup(m->message) : NULL;
        ev = (semdraw_event){.type = SEMDRAW_EVENT_MODEL_STATE, .model_state = c->model_state,
                             .progress = c->load_progress};
        return sdk_queue_event(c, &ev, m->message);
    }
    case SEMDRAW__V1__EVENT__KIND_CANVAS_CLOSED: {
        const Semdraw__V1__CanvasClosed *cc = e->canvas_closed;
        semdraw_canvas *cv = sdk_find_canvas(c, cc->canvas_id);
        if (!cv || cv->dead) return;
        sdk_canvas_mark_dead(cv, SEMDRAW_E_CLOSED);
        ev = (semdraw_event){.type = SEMDRAW_EVENT_CANVAS_CLOSED, .canvas = cv, .canvas_id = cc->canvas_id};
        return sdk_queue_event(c, &ev, cc->reason);
    }
    case SEMDRAW__V1__EVENT__KIND_CANVAS_ERROR: {
        const Semdraw__V1__CanvasError *ce = e->canvas_error;
        semdraw_canvas *cv = sdk_find_canvas(c, ce->canvas_id);
        if (!cv || cv->dead) return;
        const int status = ce->has_code && ce->code < 0 ? ce->code : SEMDRAW_E_BACKEND;
        const uint32_t kind = ce->has_kind && ce->kind == SEMDRAW__V1__CANVAS_ERROR_KIND__CANVAS_ERROR_FRAME
                                  ? SEMDRAW_CANVAS_ERROR_FRAME : SEMDRAW_CANVAS_ERROR_EDIT;
        if (kind == SEMDRAW_CANVAS_ERROR_FRAME) { /* the daemon stopped the stream */
            cv->streaming = 0;
            cv->frame_failures++;
            cv->frame_failure_status = status;
            free(cv->frame_failure);
            cv->frame_failure = ce->message ? strdup(ce->message) : NULL;
        }
        snprintf(cv->last_error, sizeof cv->last_error, "%s", ce->message ? ce->message : "");
        ev = (semdraw_event){.type = SEMDRAW_EVENT_CANVAS_ERROR, .canvas = cv, .canvas_id = ce->canvas_id,
                             .input_seq = ce->input_seq, .status = status, .error_kind = kind};
        return sdk_queue_event(c, &ev, ce->message);
    }
    default: return; /* an event kind of a newer daemon */
    }
}

/* ---- connection ---- */

static int say_hello(semdraw_client *c)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT, *r;
    Semdraw__V1__Hello h = SEMDRAW__V1__HELLO__INIT;
    h.has_min_version = h.has_max_version = 1, h.min_version = h.max_version = SDK_PROTOCOL_VERSION;
    h.client_name = c->name;
    h.sdk_version = (char *)semdraw_version_string();
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_HELLO, e.hello = &h;
    int rc = sdk_call(c, &e, &r);
    if (rc == SEMDRAW_E_UNSUPPORTED) return sdk_fail(SEMDRAW_E_VERSION, "%s", semdraw_last_error());
    if (rc) return rc;
    const Semdraw__V1__HelloReply *hr = r->reply->result_case == SEMDRAW__V1__REPLY__RESULT_HELLO ? r->reply->hello : NULL;
    if (!hr) rc = sdk_fail(SEMDRAW_E_PROTO, "semdrawd answered the hello with something else");
    else {
        c->protocol_version = hr->chosen_version;
        c->session_id = hr->session_id;
        c->lease_ms = hr->has_lease_ms && hr->lease_ms ? hr->lease_ms : 5000;
    }
    sdk_envelope_free(r);
    return rc;
}

static int heartbeat_interval_ms(const semdraw_client *c)
{
    int every = (int)c->lease_ms / 4;
    return every < 50 ? 50 : every > 1000 ? 1000 : every;
}

static void arm_timer(semdraw_client *c)
{
    struct itimerspec t = {0};
    double in = c->heartbeat_due_ms - sdk_now_ms();
    if (in < 1) in = 1;
    t.it_value.tv_sec = (time_t)(in / 1000), t.it_value.tv_nsec = (long)((in - 1000.0 * (double)t.it_value.tv_sec) * 1e6);
    timerfd_settime(c->timerfd, 0, &t, NULL);
}

static void free_client(semdraw_client *c)
{
    sdk_transport_close(c);
    for (int i = 0; i < c->n_events; i++) free(c->events[i].message);
    free(c->events), free(c->runtime_dir), free(c->name), free(c->model_message), free(c);
}

void sdk_client_unref(semdraw_client *c)
{
    if (!c->connected && c->n_handles == 0) free_client(c);
}

SEMDRAW_API int semdraw_connect(const semdraw_connect_opts *o, semdraw_client **out)
{
    if (!out) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_connect: out is NULL");
    *out = NULL;
    if (o && o->struct_size < offsetof(semdraw_connect_opts, flags) + sizeof o->flags)
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_connect: opts.struct_size %u is too small", (unsigned)o->struct_size);
    semdraw_client *c = calloc(1, sizeof *c);
    if (!c) return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    const char *dir = o && o->runtime_dir ? o->runtime_dir : getenv("SEMDRAW_RUNTIME_DIR");
    c->runtime_dir = strdup(dir && *dir ? dir : DEFAULT_RUNTIME_DIR);
    c->name = strdup(o && o->client_name ? o->client_name : "libsemdraw");
    c->timeout_ms = o && o->timeout_ms ? o->timeout_ms : SDK_DEFAULT_TIMEOUT_MS;
    c->flags = o ? o->flags : 0;
    c->epfd = c->timerfd = c->wakefd = -1;
    c->connected = 1;
    int rc = c->runtime_dir && c->name ? sdk_transport_open(c) : sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    if (!rc) rc = say_hello(c);
    if (rc == SEMDRAW_E_TIMEDOUT)
        rc = sdk_fail(SEMDRAW_E_TIMEDOUT, "no semdrawd answers at %s/control.sock (is it running? is the runtime "
                                          "directory right?)", c->runtime_dir);
    if (!rc) {
        semdraw_status_info st = {.struct_size = sizeof st};
        rc = semdraw_status_get(c, &st); /* the model state */
        semdraw_status_free(&st);
    }
    if (rc) {
        c->connected = 0;
        free_client(c);
        return rc;
    }
    c->heartbeat_due_ms = sdk_now_ms() + heartbeat_interval_ms(c);
    arm_timer(c);
    *out = c;
    return SEMDRAW_OK;
}

SEMDRAW_API void semdraw_disconnect(semdraw_client *c)
{
    if (!c || !c->connected) return;
    /* close what this client owns now rather than when the lease runs out; stop at the first timeout */
    int reachable = 1;
    for (semdraw_canvas *cv = c->canvases; cv; cv = cv->next) {
        if (reachable && cv->created && !cv->detached && !cv->dead)
            reachable = semdraw_canvas_close(cv) != SEMDRAW_E_TIMEDOUT;
        if (!cv->dead) sdk_canvas_mark_dead(cv, SEMDRAW_E_CLOSED);
    }
    if (reachable) { /* end the session now rather than when the lease runs out */
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT, *r;
        Semdraw__V1__Goodbye bye = SEMDRAW__V1__GOODBYE__INIT;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_GOODBYE, e.goodbye = &bye;
        if (sdk_call(c, &e, &r) == SEMDRAW_OK) sdk_envelope_free(r);
    }
    c->connected = 0;
    sdk_transport_close(c);
    sdk_client_unref(c);
}

SEMDRAW_API int semdraw_client_info_get(semdraw_client *c, semdraw_client_info *info)
{
    if (!c || !info || info->struct_size < sizeof *info)
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_client_info_get: NULL argument or struct_size too small");
    if (!c->connected) return sdk_fail(SEMDRAW_E_CLOSED, "the client is disconnected");
    *info = (semdraw_client_info){sizeof *info, c->protocol_version, c->instance_id, c->session_id,
                                  c->lease_ms, c->model_state, c->load_progress};
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_wait_ready(semdraw_client *c, int timeout_ms)
{
    if (!c) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_wait_ready: client is NULL");
    const double deadline = sdk_now_ms() + timeout_ms;
    for (;;) {
        semdraw_status_info st = {.struct_size = sizeof st};
        int rc = semdraw_status_get(c, &st);
        semdraw_status_free(&st);
        if (rc) return rc;
        if (c->model_state == SEMDRAW_MODEL_READY) return SEMDRAW_OK;
        if (c->model_state == SEMDRAW_MODEL_FAILED)
            return sdk_fail(SEMDRAW_E_NOMODEL, "semdrawd: %s", c->model_message ? c->model_message : "the model failed to load");
        if (timeout_ms >= 0 && sdk_now_ms() >= deadline)
            return sdk_fail(SEMDRAW_E_TIMEDOUT, "the model is still loading (%.0f%%) after %d ms",
                            100.0 * c->load_progress, timeout_ms);
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
}

/* ---- the event loop ---- */

SEMDRAW_API int semdraw_set_event_callback(semdraw_client *c, semdraw_event_fn fn, void *user)
{
    if (!c) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_set_event_callback: client is NULL");
    c->fn = fn, c->user = user;
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_get_fd(semdraw_client *c)
{
    if (!c) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_get_fd: client is NULL");
    if (!c->connected) return sdk_fail(SEMDRAW_E_CLOSED, "the client is disconnected");
    return c->epfd;
}

SEMDRAW_API int semdraw_get_timeout_ms(semdraw_client *c)
{
    if (!c || !c->connected) return 1000;
    if (c->n_events) return 0;
    const double left = c->heartbeat_due_ms - sdk_now_ms();
    return left <= 0 ? 0 : (int)left + 1;
}

/* Heartbeats hold the lease; silence past it means the daemon is gone (reported once). */
static void keep_alive(semdraw_client *c)
{
    const double now = sdk_now_ms();
    if (c->heartbeat_outstanding && !c->disconnected_reported && now - c->last_heard_ms > c->lease_ms) {
        c->disconnected_reported = 1;
        semdraw_event ev = {.type = SEMDRAW_EVENT_DISCONNECTED};
        sdk_queue_event(c, &ev, "the daemon stopped answering");
    }
    if (now >= c->heartbeat_due_ms) {
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__Heartbeat hb = SEMDRAW__V1__HEARTBEAT__INIT;
        e.body_case = SEMDRAW__V1__ENVELOPE__BODY_HEARTBEAT, e.heartbeat = &hb;
        if (sdk_send(c, &e) == SEMDRAW_OK && !c->heartbeat_outstanding) {
            c->heartbeat_outstanding = 1;
            if (c->last_heard_ms < now - heartbeat_interval_ms(c)) c->last_heard_ms = now - heartbeat_interval_ms(c);
        } else if (!c->heartbeat_outstanding) {
            c->heartbeat_outstanding = 1; /* not even sent: the clock for DISCONNECTED runs from here */
        }
        c->heartbeat_due_ms = now + heartbeat_interval_ms(c);
    }
}

void sdk_handle_restart(semdraw_client *c)
{
    if (!c->restart_pending || !c->connected) return;
    if (say_hello(c) != SEMDRAW_OK) return; /* try again at the next dispatch */
    int restore = (c->flags & SEMDRAW_CONNECT_AUTO_RESTORE) != 0;
    if (restore) { /* the new daemon may still be loading: canvases can wait for it */
        semdraw_status_info st = {.struct_size = sizeof st};
        int rc = semdraw_status_get(c, &st);
        semdraw_status_free(&st);
        if (rc || c->model_state == SEMDRAW_MODEL_LOADING) return;
        restore = c->model_state == SEMDRAW_MODEL_READY;
    }
    c->restart_pending = 0;
    for (semdraw_canvas *cv = c->canvases; cv; cv = cv->next) {
        if (cv->dead && cv->dead_status != SEMDRAW_E_DAEMON_RESTARTED) continue;
        const uint64_t old_id = cv->id;
        if (restore && cv->created) {
            int rc = sdk_canvas_restore(cv);
            semdraw_event ev = {.type = rc ? SEMDRAW_EVENT_ERROR : SEMDRAW_EVENT_CANVAS_RESTORED, .canvas = cv,
                                .canvas_id = rc ? old_id : cv->id, .status = rc};
            sdk_queue_event(c, &ev, rc ? semdraw_last_error() : "recreated after a daemon restart");
            if (!rc) continue;
        }
        sdk_canvas_mark_dead(cv, SEMDRAW_E_DAEMON_RESTARTED);
    }
}

SEMDRAW_API int semdraw_dispatch(semdraw_client *c)
{
    if (!c) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_dispatch: client is NULL");
    if (!c->connected) return sdk_fail(SEMDRAW_E_CLOSED, "the client is disconnected");
    uint64_t expirations;
    while (read(c->timerfd, &expirations, sizeof expirations) > 0) {
    }
    sdk_drain(c);
    sdk_handle_restart(c);
    keep_alive(c);
    sdk_drain(c); /* requests above may have left messages behind */
    arm_timer(c);
    /* callbacks may call into the API and queue new events: run a snapshot of the queue */
    sdk_event *batch = c->events;
    const int n = c->n_events;
    c->events = NULL, c->n_events = c->cap_events = 0;
    for (int i = 0; i < n; i++) {
        batch[i].ev.message = batch[i].message ? batch[i].message : "";
        if (c->fn) c->fn(c->user, &batch[i].ev);
        free(batch[i].message);
    }
    free(batch);
    return n;
}

/* ---- status ---- */

SEMDRAW_API int semdraw_status_get(semdraw_client *c, semdraw_status_info *st)
{
    if (!c || !st || st->struct_size < sizeof *st)
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_status_get: NULL argument or struct_size too small");
    *st = (semdraw_status_info){.struct_size = sizeof *st};
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT, *r;
    Semdraw__V1__GetStatus gs = SEMDRAW__V1__GET_STATUS__INIT;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_GET_STATUS, e.get_status = &gs;
    int rc = sdk_call(c, &e, &r);
    if (rc) return rc;
    const Semdraw__V1__Status *s = r->reply->result_case == SEMDRAW__V1__REPLY__RESULT_STATUS ? r->reply->status : NULL;
    if (!s) {
        sdk_envelope_free(r);
        return sdk_fail(SEMDRAW_E_PROTO, "semdrawd answered a status request with something else");
    }
    st->model_state = s->has_model_state ? (uint32_t)s->model_state : SEMDRAW_MODEL_READY;
    st->load_progress = s->load_progress;
    st->clients = s->clients, st->queue_depth = s->queue_depth;
    st->device_memory_bytes = s->device_memory_bytes;
    c->model_state = st->model_state, c->load_progress = st->load_progress;
    if (s->n_canvases && !(st->canvases = calloc(s->n_canvases, sizeof *st->canvases))) {
        sdk_envelope_free(r);
        return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->n_canvases; i++) {
        const Semdraw__V1__CanvasInfo *ci = s->canvases[i];
        st->canvases[i] = (semdraw_status_canvas){ci->canvas_id, ci->width, ci->height, ci->seed,
                                                  ci->streaming, ci->fps, ci->latency_ms};
        semdraw_canvas *cv = sdk_find_canvas(c, ci->canvas_id);
        if (cv) cv->fps = ci->fps, cv->latency_ms = ci->latency_ms, cv->streaming = ci->streaming;
        if (cv && ci->last_error) snprintf(cv->last_error, sizeof cv->last_error, "%s", ci->last_error);
    }
    st->n_canvases = (uint32_t)s->n_canvases;
    sdk_envelope_free(r);
    return SEMDRAW_OK;
}

SEMDRAW_API void semdraw_status_free(semdraw_status_info *st)
{
    if (!st) return;
    free(st->canvases);
    st->canvases = NULL, st->n_canvases = 0;
}
