/*
 * The two ZeroMQ sockets: a DEALER for requests (one outstanding at a time,
 * plus heartbeats whose replies nobody waits for) and a SUB for events. Both
 * ZMQ_FDs, a timerfd for heartbeats and an eventfd for events found while a
 * request waited sit in one epoll fd, which is what semdraw_get_fd() returns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <zmq.h>

#include "internal.h"

#define MAX_REPLY (96 << 20) /* a status of many canvases is far below this */
#define CONNECT_WAIT_MS 2000 /* an ipc connection is up within milliseconds when the daemon is there */

static int add_fd(int epfd, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int socket_fd(void *sock)
{
    int fd = -1;
    size_t len = sizeof fd;
    return zmq_getsockopt(sock, ZMQ_FD, &fd, &len) == 0 ? fd : -1;
}

int sdk_transport_open(semdraw_client *c)
{
    char control[4200], events[4200];
    if (snprintf(control, sizeof control, "ipc://%s/control.sock", c->runtime_dir) >= (int)sizeof control ||
        snprintf(events, sizeof events, "ipc://%s/events.sock", c->runtime_dir) >= (int)sizeof events)
        return sdk_fail(SEMDRAW_E_INVAL, "runtime directory path too long");
    c->epfd = c->timerfd = c->wakefd = -1;
    if (!(c->zctx = zmq_ctx_new())) return sdk_fail(SEMDRAW_E_NOMEM, "zmq: %s", zmq_strerror(zmq_errno()));
    c->dealer = zmq_socket(c->zctx, ZMQ_DEALER);
    c->sub = zmq_socket(c->zctx, ZMQ_SUB);
    if (!c->dealer || !c->sub) return sdk_fail(SEMDRAW_E_NOMEM, "zmq: %s", zmq_strerror(zmq_errno()));
    int linger = 0, immediate = 1;
    int64_t maxmsg = MAX_REPLY;
    zmq_setsockopt(c->dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->dealer, ZMQ_IMMEDIATE, &immediate, sizeof immediate); /* nothing queued to a dead daemon */
    zmq_setsockopt(c->dealer, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(c->sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sub, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(c->sub, ZMQ_SUBSCRIBE, "M", 1);
    if (zmq_connect(c->dealer, control) != 0 || zmq_connect(c->sub, events) != 0)
        return sdk_fail(SEMDRAW_E_IO, "%s: cannot connect: %s", control + 6, zmq_strerror(zmq_errno()));
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    c->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const int dfd = socket_fd(c->dealer), sfd = socket_fd(c->sub);
    if (c->epfd < 0 || c->timerfd < 0 || c->wakefd < 0 || dfd < 0 || sfd < 0 || add_fd(c->epfd, dfd) ||
        add_fd(c->epfd, sfd) || add_fd(c->epfd, c->timerfd) || add_fd(c->epfd, c->wakefd))
        return sdk_fail(SEMDRAW_E_IO, "cannot set up the client's event fd: %s", strerror(errno));
    return SEMDRAW_OK;
}

void sdk_transport_close(semdraw_client *c)
{
    if (c->dealer) zmq_close(c->dealer);
    if (c->sub) zmq_close(c->sub);
    if (c->zctx) zmq_ctx_term(c->zctx);
    c->dealer = c->sub = c->zctx = NULL;
    if (c->epfd >= 0) close(c->epfd);
    if (c->timerfd >= 0) close(c->timerfd);
    if (c->wakefd >= 0) close(c->wakefd);
    c->epfd = c->timerfd = c->wakefd = -1;
}

void sdk_envelope_free(Envelope *e)
{
    if (e) semdraw__v1__envelope__free_unpacked(e, NULL);
}

static int has_input(void *sock)
{
    int ev = 0;
    size_t len = sizeof ev;
    return zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN);
}

/*
 * A request left the DEALER's fd quiet even if more arrived meanwhile (edge
 * semantics): wake the application's poll through the eventfd instead.
 */
static void rearm_wakeup(semdraw_client *c)
{
    if (c->n_events || has_input(c->dealer) || has_input(c->sub)) {
        const uint64_t one = 1;
        if (write(c->wakefd, &one, sizeof one) < 0) { /* the counter is already non-zero */
        }
    }
}

static int pack_and_send(semdraw_client *c, Envelope *req, int flags)
{
    req->has_protocol_version = 1, req->protocol_version = SDK_PROTOCOL_VERSION;
    size_t n = semdraw__v1__envelope__get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    semdraw__v1__envelope__pack(req, buf);
    int rc = zmq_send(c->dealer, buf, n, flags);
    free(buf);
    return rc < 0 ? -1 : 0;
}

int sdk_send(semdraw_client *c, Envelope *req)
{
    req->has_request_id = 1, req->request_id = ++c->next_request;
    if (pack_and_send(c, req, ZMQ_DONTWAIT) != 0)
        return sdk_fail(SEMDRAW_E_TIMEDOUT, "semdrawd at %s is not connected", c->runtime_dir);
    return SEMDRAW_OK;
}

static Envelope *recv_envelope(void *sock)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    Envelope *e = NULL;
    if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0)
        e = semdraw__v1__envelope__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    int more = 0;
    size_t len = sizeof more;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
    while (more) { /* never more than one part from the daemon: drop the rest */
        zmq_msg_t rest;
        zmq_msg_init(&rest);
        zmq_msg_recv(&rest, sock, ZMQ_DONTWAIT);
        zmq_msg_close(&rest);
        zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len);
    }
    zmq_msg_close(&msg);
    return e;
}

/* A DEALER message that is not the reply a request waits for: a heartbeat's reply. */
static void on_other_reply(semdraw_client *c, Envelope *e)
{
    if (e->has_instance_id) sdk_heard(c, e->instance_id);
    c->heartbeat_outstanding = 0;
}

static int status_of_error(const Semdraw__V1__Error *err)
{
    const int code = err && err->has_code ? err->code : SEMDRAW_E_PROTO;
    const char *msg = err && err->message ? err->message : "";
    /* codes this library does not know (a newer daemon) still fail, as protocol errors */
    const int known = code <= SEMDRAW_E_INVAL && code >= SEMDRAW_E_BUSY;
    return sdk_fail(known ? code : SEMDRAW_E_PROTO, "semdrawd: %s", msg);
}

int sdk_call(semdraw_client *c, Envelope *req, Envelope **reply)
{
    *reply = NULL;
    if (!c->connected) return sdk_fail(SEMDRAW_E_CLOSED, "the client is disconnected");
    /* the daemon went silent (DISCONNECTED): fail fast; heartbeats from dispatch notice its return */
    if (c->disconnected_reported)
        return sdk_fail(SEMDRAW_E_TIMEDOUT, "semdrawd at %s stopped answering", c->runtime_dir);
    req->has_request_id = 1, req->request_id = ++c->next_request;
    const double deadline = sdk_now_ms() + c->timeout_ms;
    int rc = SEMDRAW_E_TIMEDOUT;
    /* with ZMQ_IMMEDIATE a send fails until the pipe is up: give it a moment, not the whole timeout */
    const double connect_deadline = sdk_now_ms() + (c->timeout_ms < CONNECT_WAIT_MS ? c->timeout_ms : CONNECT_WAIT_MS);
    while (pack_and_send(c, req, ZMQ_DONTWAIT) != 0) {
        const double left = connect_deadline - sdk_now_ms();
        zmq_pollitem_t out = {c->dealer, 0, ZMQ_POLLOUT, 0};
        if (left <= 0 || zmq_poll(&out, 1, (long)left + 1) < 0) {
            rearm_wakeup(c);
            return sdk_fail(SEMDRAW_E_TIMEDOUT, "no connection to semdrawd at %s/control.sock", c->runtime_dir);
        }
    }
    for (;;) {
        const double left = deadline - sdk_now_ms();
        zmq_pollitem_t in = {c->dealer, 0, ZMQ_POLLIN, 0};
        if (left <= 0 || zmq_poll(&in, 1, (long)left + 1) <= 0) {
            if (sdk_now_ms() < deadline) continue; /* EINTR */
            goto timeout;
        }
        Envelope *e = recv_envelope(c->dealer);
        if (!e) continue; /* not an Envelope: nothing a request can use */
        if (!e->has_request_id || e->request_id != req->request_id) {
            on_other_reply(c, e);
            sdk_envelope_free(e);
            continue;
        }
        if (e->has_instance_id) sdk_heard(c, e->instance_id);
        if (e->body_case == SEMDRAW__V1__ENVELOPE__BODY_ERROR) {
            rc = status_of_error(e->error);
            sdk_envelope_free(e);
        } else if (e->body_case != SEMDRAW__V1__ENVELOPE__BODY_REPLY || !e->reply) {
            rc = sdk_fail(SEMDRAW_E_PROTO, "semdrawd answered a request with something other than a reply");
            sdk_envelope_free(e);
        } else {
            *reply = e;
            rc = SEMDRAW_OK;
        }
        rearm_wakeup(c);
        return rc;
    }
timeout:
    rearm_wakeup(c);
    return sdk_fail(SEMDRAW_E_TIMEDOUT, "semdrawd at %s did not answer within %u ms", c->runtime_dir,
                    (unsigned)c->timeout_ms);
}

void sdk_drain(semdraw_client *c)
{
    uint64_t count;
    while (read(c->wakefd, &count, sizeof count) > 0) {
    }
    for (int progress = 1; progress;) {
        progress = 0;
        while (has_input(c->dealer)) {
            Envelope *e = recv_envelope(c->dealer);
            if (e) on_other_reply(c, e);
            sdk_envelope_free(e);
            progress = 1;
        }
        while (has_input(c->sub)) {
            char topic[32];
            if (zmq_recv(c->sub, topic, sizeof topic, ZMQ_DONTWAIT) < 0) break;
            Envelope *e = recv_envelope(c->sub);
            if (e && e->has_instance_id) sdk_heard(c, e->instance_id);
            if (e && e->body_case == SEMDRAW__V1__ENVELOPE__BODY_EVENT && e->event) sdk_on_event(c, e->event);
            sdk_envelope_free(e);
            progress = 1;
        }
    }
}

void sdk_subscribe(semdraw_client *c, uint64_t canvas_id, int on)
{
    char topic[32];
    const int n = snprintf(topic, sizeof topic, "C%llu", (unsigned long long)canvas_id);
    /* a prefix match: C1 also matches C12, so events are checked against our canvases again */
    if (c->sub) zmq_setsockopt(c->sub, on ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic, (size_t)n);
}
