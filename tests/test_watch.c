/*
 * Readiness-watch scenarios RW1-RW3 (test-scenarios.md; RW1 is EL14), on
 * whichever backend is built. The watched sockets are plain OS sockets the
 * test makes itself (socket / WSASocket-compatible socket()), as a foreign
 * library would hand them out.
 *
 * A "barrier" sends one byte on a probe pair whose reader is watched and
 * waits for its callback: events caused before it have been polled for by
 * then, so an absence of callbacks can be asserted without sleeping.
 */
#include "rs_test.h"

#include "../common/atomics.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
typedef int sock_len;
#define SOCK_WOULD_BLOCK(err) ((err) == WSAEWOULDBLOCK)
static int sock_error(void)
{
    return WSAGetLastError();
}
static void sock_close(rs_os_socket s)
{
    closesocket((SOCKET)s);
}
static void sock_nonblocking(rs_os_socket s)
{
    u_long on = 1;
    assert_int_equal(ioctlsocket((SOCKET)s, FIONBIO, &on), 0);
}
#else
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
typedef socklen_t sock_len;
#define SOCK_WOULD_BLOCK(err) ((err) == EAGAIN || (err) == EWOULDBLOCK)
static int sock_error(void)
{
    return errno;
}
static void sock_close(rs_os_socket s)
{
    close(s);
}
static void sock_nonblocking(rs_os_socket s)
{
    int flags = fcntl(s, F_GETFL);
    assert_true(flags >= 0);
    assert_int_equal(fcntl(s, F_SETFL, flags | O_NONBLOCK), 0);
}
#endif

#if RS_TEST_IOCP
#include "../backends/iocp/iocp_backend.h"
#endif

/* ---- plain sockets ---- */

static rs_os_socket tcp_socket(void)
{
    rs_os_socket s = (rs_os_socket)socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    assert_true(s != RS_OS_SOCKET_INVALID);
    return s;
}

/* A listener on 127.0.0.1, port 0. */
static rs_os_socket tcp_listener(struct sockaddr_in *addr)
{
    rs_os_socket l = tcp_socket();
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)addr, sizeof *addr), 0);
    sock_len len = sizeof *addr;
    assert_int_equal(getsockname(l, (struct sockaddr *)addr, &len), 0);
    assert_int_equal(listen(l, 16), 0);
    return l;
}

/* A connected pair, both ends non-blocking. */
static void tcp_pair(rs_os_socket *client, rs_os_socket *server)
{
    struct sockaddr_in addr;
    rs_os_socket l = tcp_listener(&addr);
    *client = tcp_socket();
    assert_int_equal(connect(*client, (struct sockaddr *)&addr, sizeof addr), 0);
    *server = (rs_os_socket)accept(l, NULL, NULL);
    assert_true(*server != RS_OS_SOCKET_INVALID);
    sock_close(l);
    sock_nonblocking(*client);
    sock_nonblocking(*server);
}

static void send_bytes(rs_os_socket s, size_t n)
{
    char buf[256];
    memset(buf, 'x', sizeof buf);
    while (n > 0) {
        size_t chunk = n < sizeof buf ? n : sizeof buf;
        int sent = (int)send(s, buf, (int)chunk, 0);
        assert_true(sent > 0);
        n -= (size_t)sent;
    }
}

/* Reads what is there; the number of bytes. */
static long long drain(rs_os_socket s, bool *eof)
{
    char buf[65536];
    long long total = 0;
    for (;;) {
        int n = (int)recv(s, buf, (int)sizeof buf, 0);
        if (n > 0) {
            total += n;
            continue;
        }
        if (n == 0 && eof) {
            *eof = true;
        }
        return total;
    }
}

/* ---- watched sockets ---- */

enum mode {
    MODE_COUNT,      /* count the events, do nothing */
    MODE_DRAIN,      /* read everything there is */
    MODE_ACCEPT,     /* accept every pending connection (and close it) */
    MODE_STOP_SELF,  /* stop the watch from its own first callback */
    MODE_STOP_OTHER, /* the first callback stops the other slot's watch */
};

struct slot {
    rs_event_loop *loop;
    rs_os_socket sock;
    rs_os_socket peer; /* the other end of its pair, if any */
    rs_watch *watch;
    enum mode mode;
    struct slot *other;
    int start_error;
    volatile long dead; /* stopped: any callback now is a violation */
    volatile long seen; /* every event reported, OR-ed */
    volatile long last_error;
    struct rs_test_counter eofs, calls, readable, writable, hang_up, errors, stopped, violations,
        accepted, bytes;
};

#define SLOTS 6

/* What a test owns: its slots (heap, released by the harness on failure). */
struct wt {
    struct slot s[SLOTS];
    struct slot probe;
    rs_os_socket probe_client;
    long long probe_sent;
};

static void slot_init(struct slot *s, rs_event_loop *loop)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->sock = s->peer = RS_OS_SOCKET_INVALID;
    struct rs_test_counter *c[] = {&s->eofs,     &s->calls,  &s->readable, &s->writable,
                                   &s->hang_up,  &s->errors, &s->stopped,  &s->violations,
                                   &s->accepted, &s->bytes};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        rs_test_counter_init(c[i]);
    }
}

static void slot_clean_up(struct slot *s)
{
    struct rs_test_counter *c[] = {&s->eofs,     &s->calls,  &s->readable, &s->writable,
                                   &s->hang_up,  &s->errors, &s->stopped,  &s->violations,
                                   &s->accepted, &s->bytes};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        rs_test_counter_clean_up(c[i]);
    }
}

static void on_stopped(void *arg)
{
    struct slot *s = arg;
    rs__atomic_store(&s->dead, 1);
    rs_test_counter_add(&s->stopped, 1);
}

static void stop_on_loop(struct slot *s)
{
    assert_int_equal(rs_watch_stop(s->watch, on_stopped, s), 0);
    rs__atomic_store(&s->dead, 1);
}

static void on_watch(rs_watch *watch, int error, unsigned events, void *user_data)
{
    struct slot *s = user_data;
    if (rs__atomic_load(&s->dead) || watch != s->watch) {
        rs_test_counter_add(&s->violations, 1);
        return;
    }
    rs_test_counter_add(&s->calls, 1);
    if (error) {
        rs__atomic_store(&s->last_error, error);
        rs_test_counter_add(&s->errors, 1);
        return;
    }
    rs__atomic_store(&s->seen, rs__atomic_load(&s->seen) | (long)events);
    if (events & RS_WATCH_READABLE) {
        rs_test_counter_add(&s->readable, 1);
    }
    if (events & RS_WATCH_WRITABLE) {
        rs_test_counter_add(&s->writable, 1);
    }
    if (events & RS_WATCH_HANG_UP) {
        rs_test_counter_add(&s->hang_up, 1);
    }
    switch (s->mode) {
    case MODE_COUNT:
        break;
    case MODE_DRAIN: {
        bool eof = false;
        rs_test_counter_add(&s->bytes, drain(s->sock, &eof));
        if (eof) {
            rs_test_counter_add(&s->eofs, 1);
            /* Level-triggered: the end of the stream stays readable. */
            rs_watch_set_events(watch, 0);
        }
        break;
    }
    case MODE_ACCEPT:
        for (;;) {
            rs_os_socket a = (rs_os_socket)accept(s->sock, NULL, NULL);
            if (a == RS_OS_SOCKET_INVALID) {
                break;
            }
            sock_close(a);
            rs_test_counter_add(&s->accepted, 1);
        }
        break;
    case MODE_STOP_SELF:
        stop_on_loop(s);
        break;
    case MODE_STOP_OTHER:
        if (s->other->watch && !rs__atomic_load(&s->other->dead)) {
            stop_on_loop(s->other);
        }
        break;
    }
}

struct start_call {
    struct slot *s;
    unsigned events;
};

static void start_fn(void *arg)
{
    struct start_call *c = arg;
    c->s->watch = rs_watch_start(c->s->loop, c->s->sock, c->events, on_watch, c->s);
    c->s->start_error = c->s->watch ? 0 : rs_last_error();
}

/* Starts s's watch on its loop's thread; returns the error code (0: started). */
static int start_on(struct slot *s, unsigned events)
{
    struct start_call c = {s, events};
    rs__atomic_store(&s->dead, 0);
    rs_test_run_on_loop(s->loop, start_fn, &c);
    return s->start_error;
}

static void start(struct slot *s, unsigned events)
{
    int err = start_on(s, events);
    assert_string_equal(rs_error_name(err), rs_error_name(0));
}

struct events_call {
    struct slot *s;
    unsigned events;
    int rc;
};

static void set_events_fn(void *arg)
{
    struct events_call *c = arg;
    c->rc = rs_watch_set_events(c->s->watch, c->events) == 0 ? 0 : rs_last_error();
}

static void set_events(struct slot *s, unsigned events)
{
    struct events_call c = {s, events, -1};
    rs_test_run_on_loop(s->loop, set_events_fn, &c);
    assert_int_equal(c.rc, 0);
}

static void stop_fn(void *arg)
{
    stop_on_loop(arg);
}

/* Stops s's watch on its loop's thread and waits for on_stopped. */
static void stop(struct slot *s)
{
    long long before = rs_test_counter_get(&s->stopped);
    rs_test_run_on_loop(s->loop, stop_fn, s);
    rs_test_counter_await(&s->stopped, before + 1, "on_stopped");
    s->watch = NULL;
}

/* Events caused before this call have been polled for when it returns. */
static void barrier(struct wt *t)
{
    /* Counted in bytes read: one callback may read the bytes of two
     * barriers. */
    send_bytes(t->probe_client, 1);
    t->probe_sent++;
    rs_test_counter_await(&t->probe.bytes, t->probe_sent, "the probe's readable event");
}

static bool wt_release(void *obj)
{
    struct wt *t = obj;
    for (int i = 0; i <= SLOTS; i++) {
        struct slot *s = i < SLOTS ? &t->s[i] : &t->probe;
        if (s->watch && !rs__atomic_load(&s->dead)) {
            /* A foreign thread: waits until the loop stopped it. */
            rs_watch_stop(s->watch, NULL, NULL);
        }
    }
    for (int i = 0; i <= SLOTS; i++) {
        struct slot *s = i < SLOTS ? &t->s[i] : &t->probe;
        if (s->sock != RS_OS_SOCKET_INVALID) {
            sock_close(s->sock);
        }
        if (s->peer != RS_OS_SOCKET_INVALID) {
            sock_close(s->peer);
        }
    }
    if (t->probe_client != RS_OS_SOCKET_INVALID) {
        sock_close(t->probe_client);
    }
    /* A loop may still be about to run an on_stopped of a watch stopped
     * from another loop: the counters stay (a bounded leak on failure
     * only) rather than be freed under it. */
    return true;
}

static struct wt *wt_new(rs_event_loop *loop)
{
    struct wt *t = calloc(1, sizeof *t);
    assert_non_null(t);
    for (int i = 0; i < SLOTS; i++) {
        slot_init(&t->s[i], loop);
    }
    slot_init(&t->probe, loop);
    t->probe_client = RS_OS_SOCKET_INVALID;
    rs_test_own(t, wt_release, NULL);
    tcp_pair(&t->probe_client, &t->probe.sock);
    t->probe.mode = MODE_DRAIN;
    start(&t->probe, RS_WATCH_READABLE);
    return t;
}

/* Stops what is still watched, closes every socket, frees t. */
static void wt_free(struct wt *t)
{
    for (int i = 0; i <= SLOTS; i++) {
        struct slot *s = i < SLOTS ? &t->s[i] : &t->probe;
        if (s->watch && !rs__atomic_load(&s->dead)) {
            stop(s);
        }
        assert_int_equal(rs_test_counter_get(&s->violations), 0);
    }
    rs_test_disown(t);
    wt_release(t);
    for (int i = 0; i < SLOTS; i++) {
        slot_clean_up(&t->s[i]);
    }
    slot_clean_up(&t->probe);
    free(t);
}

/* A pair whose server end is slot s (the client end is s->peer). */
static void slot_pair(struct slot *s)
{
    tcp_pair(&s->peer, &s->sock);
}

/* ---- RW1 (= EL14) ---- */

/* aws-c-io's readiness scenarios on a raw socket: writable on subscribe, no
 * readable before a write, readable after it, readable on subscribe if data
 * is there, readable again after a drain, no event after unsubscribe in the
 * same tick. */
static void readiness_sequence(rs_event_loop *loop)
{
    struct wt *t = wt_new(loop);
    struct slot *w = &t->s[0];
    struct slot *r = &t->s[1];
    slot_pair(r);
    w->sock = r->peer; /* the client end, watched for writing */
    r->peer = RS_OS_SOCKET_INVALID;

    /* Writable on subscribe. */
    start(w, RS_WATCH_WRITABLE);
    rs_test_counter_await(&w->writable, 1, "writable on subscribe");
    stop(w);

    /* No readable before a write; readable after it. */
    r->mode = MODE_DRAIN;
    start(r, RS_WATCH_READABLE);
    barrier(t);
    assert_int_equal(rs_test_counter_get(&r->readable), 0);
    send_bytes(w->sock, 100);
    rs_test_counter_await(&r->bytes, 100, "readable after a write");
    assert_int_equal(rs__atomic_load(&r->seen), RS_WATCH_READABLE);

    /* Readable again after the drain, when new data arrives. */
    long long calls = rs_test_counter_get(&r->readable);
    send_bytes(w->sock, 50);
    rs_test_counter_await(&r->bytes, 150, "readable again after a drain");
    assert_true(rs_test_counter_get(&r->readable) > calls);
    stop(r);

    /* Readable on subscribe when data is already there. */
    send_bytes(w->sock, 7);
    barrier(t);
    start(r, RS_WATCH_READABLE);
    rs_test_counter_await(&r->bytes, 157, "readable on subscribe with data there");
    stop(r);

    /* No event after unsubscribe in the same tick: two sockets ready in the
     * same poll; whichever callback runs first stops the other. */
    struct slot *a = &t->s[2];
    struct slot *b = &t->s[3];
    slot_pair(a);
    slot_pair(b);
    a->mode = b->mode = MODE_STOP_OTHER;
    a->other = b;
    b->other = a;
    send_bytes(a->peer, 1);
    send_bytes(b->peer, 1);
    barrier(t);
    start(a, RS_WATCH_READABLE);
    start(b, RS_WATCH_READABLE);
    /* Exactly one watch was stopped by the other; the stopped one never ran
     * after its stop (a violation would be counted). */
    long long stopped = rs_test_counter_get(&a->stopped) + rs_test_counter_get(&b->stopped);
    for (int i = 0; stopped < 1 && i < 1000; i++) {
        barrier(t);
        stopped = rs_test_counter_get(&a->stopped) + rs_test_counter_get(&b->stopped);
    }
    assert_int_equal(stopped, 1);
    assert_int_equal(rs_test_counter_get(&a->violations) + rs_test_counter_get(&b->violations), 0);
    /* The survivor's callback still reads the victim's slot: only the
     * loop's thread writes it. */
    struct slot *survivor = rs_test_counter_get(&a->stopped) ? b : a;
    stop(survivor);
    wt_free(t);
}

static void test_rw1_aws_readiness_sequence(void **state)
{
    readiness_sequence(*state);
}

/* EL14 is RW1: the same scenario under its event-loop name. */
static void test_el14_readiness_watch(void **state)
{
    readiness_sequence(*state);
}

/* Readable stays reported while data waits (level-triggered); events can be
 * changed; a full send buffer is not writable until the peer drains it. */
static void test_rw1_level_triggered_and_writable_after_drain(void **state)
{
    struct wt *t = wt_new(*state);
    struct slot *r = &t->s[0];
    struct slot *w = &t->s[1];
    slot_pair(r);

    send_bytes(r->peer, 10);
    start(r, RS_WATCH_READABLE);
    /* Nothing reads: reported again and again. */
    rs_test_counter_await(&r->readable, 3, "readable reported while data waits");
    /* Paused: no more reports. */
    set_events(r, 0);
    long long paused_at = rs_test_counter_get(&r->calls);
    barrier(t);
    assert_int_equal(rs_test_counter_get(&r->calls), paused_at);
    /* Readable and writable at once. */
    set_events(r, RS_WATCH_READABLE | RS_WATCH_WRITABLE);
    rs_test_counter_await(&r->writable, 1, "writable after the change");
    assert_true(rs_test_counter_get(&r->readable) > 3);
    stop(r);

    /* Fill the client's send buffer (the server end does not read). */
    w->sock = r->peer;
    r->peer = RS_OS_SOCKET_INVALID;
    static char chunk[65536];
    long long sent = 0;
    for (;;) {
        int n = (int)send(w->sock, chunk, (int)sizeof chunk, 0);
        if (n < 0) {
            assert_true(SOCK_WOULD_BLOCK(sock_error()));
            break;
        }
        sent += n;
    }
    start(w, RS_WATCH_WRITABLE);
    barrier(t);
    assert_int_equal(rs_test_counter_get(&w->writable), 0);
    /* The peer drains: writable. */
    r->mode = MODE_DRAIN;
    rs_os_socket server = r->sock;
    r->sock = RS_OS_SOCKET_INVALID;
    struct slot *d = &t->s[2];
    d->sock = server;
    d->mode = MODE_DRAIN;
    start(d, RS_WATCH_READABLE);
    rs_test_counter_await(&w->writable, 1, "writable after the peer drained");
    stop(w);
    rs_test_counter_await(&d->bytes, sent + 10, "every byte at the peer");
    wt_free(t);
}

/* Stopped watches report nothing, and a socket can be watched again. */
static void test_rw1_stop_then_watch_again(void **state)
{
    struct wt *t = wt_new(*state);
    struct slot *r = &t->s[0];
    slot_pair(r);
    r->mode = MODE_DRAIN;
    start(r, RS_WATCH_READABLE);
    send_bytes(r->peer, 5);
    rs_test_counter_await(&r->bytes, 5, "the first data");
    /* RW5: watches are counted apart from sockets (the probe's and r's). */
    rs_event_loop_metrics m;
    assert_int_equal(rs_event_loop_get_metrics(*state, &m, sizeof m), 0);
    assert_int_equal(m.live_watches, 2);
    assert_int_equal(m.live_sockets, 0);
    stop(r);
    assert_int_equal(rs_event_loop_get_metrics(*state, &m, sizeof m), 0);
    assert_int_equal(m.live_watches, 1);
    long long calls = rs_test_counter_get(&r->calls);
    send_bytes(r->peer, 5);
    barrier(t);
    assert_int_equal(rs_test_counter_get(&r->calls), calls);
    assert_int_equal(rs_test_counter_get(&r->violations), 0);
    start(r, RS_WATCH_READABLE);
    rs_test_counter_await(&r->bytes, 10, "the data sent while not watched");
    wt_free(t);
}

/* ---- RW2 ---- */

static void test_rw2_listener_accept_readiness(void **state)
{
    struct wt *t = wt_new(*state);
    struct slot *l = &t->s[0];
    struct sockaddr_in addr;
    l->sock = tcp_listener(&addr);
    sock_nonblocking(l->sock);
    l->mode = MODE_ACCEPT;
    start(l, RS_WATCH_READABLE);
    barrier(t);
    assert_int_equal(rs_test_counter_get(&l->readable), 0);
    for (int i = 0; i < 3; i++) {
        rs_os_socket c = tcp_socket();
        assert_int_equal(connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
        rs_test_counter_await(&l->accepted, i + 1, "an accept readiness");
        sock_close(c);
    }
    wt_free(t);
}

static void test_rw2_peer_hang_up_reported(void **state)
{
    struct wt *t = wt_new(*state);
    struct slot *r = &t->s[0];
    slot_pair(r);
    r->mode = MODE_DRAIN;
    start(r, RS_WATCH_READABLE);
    send_bytes(r->peer, 3);
    rs_test_counter_await(&r->bytes, 3, "data before the hang-up");
    sock_close(r->peer);
    r->peer = RS_OS_SOCKET_INVALID;
    rs_test_counter_await(&r->eofs, 1, "the end of the stream");
#if !RS_TEST_IOCP && defined(_WIN32)
    /* select(), which the libevent backend waits in on Windows, reports the
     * hang-up as readable only (the header's rule for such pollers). */
    assert_int_equal(rs_test_counter_get(&r->hang_up), 0);
#else
    assert_true(rs_test_counter_get(&r->hang_up) >= 1);
#endif
    assert_true(rs__atomic_load(&r->seen) & RS_WATCH_READABLE);
    assert_int_equal(rs_test_counter_get(&r->errors), 0);
    wt_free(t);
}

/* A non-blocking connect to a port nobody listens on: its failure is
 * reported as writable (and readable), as poll(2) does; SO_ERROR says why. */
static void test_rw2_failed_connect_reported(void **state)
{
    struct wt *t = wt_new(*state);
    struct slot *c = &t->s[0];
    struct sockaddr_in addr;
    rs_os_socket l = tcp_listener(&addr);
    sock_close(l); /* the port is free again: nobody listens there */
    c->sock = tcp_socket();
    sock_nonblocking(c->sock);
    int rc = connect(c->sock, (struct sockaddr *)&addr, sizeof addr);
    if (rc != 0) {
        int err = sock_error();
#ifdef _WIN32
        assert_true(err == WSAEWOULDBLOCK || err == WSAECONNREFUSED);
#else
        assert_true(err == EINPROGRESS || err == ECONNREFUSED);
#endif
    }
    start(c, RS_WATCH_WRITABLE);
    rs_test_counter_await(&c->writable, 1, "the failed connect's report");
    set_events(c, 0);
    int so_error = 0;
    sock_len len = sizeof so_error;
    assert_int_equal(getsockopt(c->sock, SOL_SOCKET, SO_ERROR, (char *)&so_error, &len), 0);
#ifdef _WIN32
    assert_int_equal(so_error, WSAECONNREFUSED);
#else
    assert_int_equal(so_error, ECONNREFUSED);
#endif
    wt_free(t);
}

static void close_fn(void *arg)
{
    struct slot *s = arg;
    sock_close(s->sock);
    s->sock = RS_OS_SOCKET_INVALID;
}

static void test_rw2_local_close_reported(void **state)
{
    if (rs_backend_id() != RS_BACKEND_IOCP) {
        RS_TEST_SKIP("readiness pollers drop a closed descriptor silently (epoll, kqueue, and "
                     "select, which the libevent backend waits in on Windows): there is no "
                     "local-close notice to report; the header says to stop before closing");
    }
    struct wt *t = wt_new(*state);
    struct slot *r = &t->s[0];
    slot_pair(r);
    start(r, RS_WATCH_READABLE);
    barrier(t);
    rs_test_run_on_loop(r->loop, close_fn, r);
    rs_test_counter_await(&r->errors, 1, "the local close");
    assert_int_equal(rs__atomic_load(&r->last_error), RS_ERROR_SOCKET_CLOSED);
    /* The watch ended: nothing more to change, but it is still to be stopped. */
    struct events_call c = {r, RS_WATCH_READABLE, 0};
    rs_test_run_on_loop(r->loop, set_events_fn, &c);
    assert_int_equal(c.rc, RS_ERROR_INVALID_STATE);
    wt_free(t);
}

/* ---- RW3 ---- */

static void test_rw3_stop_inside_callback(void **state)
{
    struct wt *t = wt_new(*state);
    struct slot *r = &t->s[0];
    slot_pair(r);
    r->mode = MODE_STOP_SELF;
    send_bytes(r->peer, 1);
    start(r, RS_WATCH_READABLE);
    rs_test_counter_await(&r->stopped, 1, "on_stopped after a stop in the callback");
    r->watch = NULL;
    send_bytes(r->peer, 1);
    barrier(t);
    assert_int_equal(rs_test_counter_get(&r->calls), 1);
    assert_int_equal(rs_test_counter_get(&r->violations), 0);
    wt_free(t);
}

static void test_rw3_stop_from_foreign_thread(void **state)
{
    struct wt *t = wt_new(*state);
    struct slot *r = &t->s[0];
    slot_pair(r);
    /* Data nobody reads: reported on every iteration until the stop. */
    send_bytes(r->peer, 1);
    start(r, RS_WATCH_READABLE);
    rs_test_counter_await(&r->readable, 5, "repeated readable reports");
    assert_int_equal(rs_watch_stop(r->watch, on_stopped, r), 0);
    /* From here on a callback would count as a violation. */
    rs__atomic_store(&r->dead, 1);
    long long calls = rs_test_counter_get(&r->calls);
    barrier(t);
    barrier(t);
    assert_int_equal(rs_test_counter_get(&r->calls), calls);
    rs_test_counter_await(&r->stopped, 1, "on_stopped");
    r->watch = NULL;
    /* The socket is the application's again: it can be watched anew. */
    r->mode = MODE_DRAIN;
    start(r, RS_WATCH_READABLE);
    rs_test_counter_await(&r->bytes, 1, "a new watch of the same socket");
    wt_free(t);
}

struct other_loop_stop {
    struct slot *s;
    int rc;
};

static void stop_from_other_loop_fn(void *arg)
{
    struct other_loop_stop *c = arg;
    c->rc = rs_watch_stop(c->s->watch, on_stopped, c->s);
}

static void test_rw3_stop_from_another_loop(void **state)
{
    struct wt *t = wt_new(*state);
    rs_event_loop *other = rs_event_loop_new(NULL);
    assert_non_null(other);
    assert_int_equal(rs_event_loop_run(other), 0);
    struct slot *r = &t->s[0];
    slot_pair(r);
    send_bytes(r->peer, 1);
    start(r, RS_WATCH_READABLE);
    rs_test_counter_await(&r->readable, 2, "readable reports");
    struct other_loop_stop c = {r, -1};
    rs_test_run_on_loop(other, stop_from_other_loop_fn, &c);
    assert_int_equal(c.rc, 0);
    /* on_stopped marks the slot dead: a callback after it is a violation. */
    rs_test_counter_await(&r->stopped, 1, "on_stopped of a stop from another loop");
    r->watch = NULL;
    barrier(t);
    assert_int_equal(rs_test_counter_get(&r->violations), 0);
    assert_int_equal(rs_event_loop_destroy(other), 0);
    wt_free(t);
}

struct bad_input {
    rs_event_loop *loop;
    rs_os_socket closed, not_socket, never_open;
    rs_os_socket sock;
    struct slot *s;
    int errors[12];
};

static void noop_watch(rs_watch *watch, int error, unsigned events, void *user_data)
{
    (void)watch;
    (void)error;
    (void)events;
    (void)user_data;
}

static int start_error(rs_event_loop *loop, rs_os_socket sock, unsigned events, rs_watch_fn *fn)
{
    rs_watch *w = rs_watch_start(loop, sock, events, fn, NULL);
    if (w) {
        rs_watch_stop(w, NULL, NULL);
        return 0;
    }
    return rs_last_error();
}

static void bad_input_fn(void *arg)
{
    struct bad_input *b = arg;
    int i = 0;
    b->errors[i++] = start_error(NULL, b->sock, RS_WATCH_READABLE, noop_watch);
    b->errors[i++] = start_error(b->loop, b->sock, RS_WATCH_READABLE, NULL);
    b->errors[i++] = start_error(b->loop, b->sock, RS_WATCH_HANG_UP, noop_watch);
    b->errors[i++] = start_error(b->loop, RS_OS_SOCKET_INVALID, RS_WATCH_READABLE, noop_watch);
    b->errors[i++] = start_error(b->loop, b->closed, RS_WATCH_READABLE, noop_watch);
    b->errors[i++] = start_error(b->loop, b->never_open, RS_WATCH_READABLE, noop_watch);
    b->errors[i++] = start_error(b->loop, b->not_socket, RS_WATCH_READABLE, noop_watch);
    /* Watched already (by the slot's watch). */
    b->errors[i++] = start_error(b->loop, b->s->sock, RS_WATCH_WRITABLE, noop_watch);
    b->errors[i++] = rs_watch_set_events(b->s->watch, 8) == 0 ? 0 : rs_last_error();
    b->errors[i++] = rs_watch_set_events(NULL, 0) == 0 ? 0 : rs_last_error();
    b->errors[i++] = rs_watch_stop(NULL, NULL, NULL) == 0 ? 0 : rs_last_error();
}

static void test_rw3_bad_input(void **state)
{
    rs_event_loop *loop = *state;
    struct wt *t = wt_new(loop);
    struct slot *r = &t->s[0];
    slot_pair(r);
    r->mode = MODE_DRAIN;
    start(r, RS_WATCH_READABLE);

    struct bad_input b;
    memset(&b, 0, sizeof b);
    b.loop = loop;
    b.s = r;
    b.sock = r->peer;
#ifdef _WIN32
    HANDLE pipe_read, pipe_write;
    assert_true(CreatePipe(&pipe_read, &pipe_write, NULL, 0));
    b.not_socket = (rs_os_socket)(uintptr_t)pipe_read;
    /* A handle value no process handle table uses (handles are multiples
     * of 4; this one is far above any this test opens). */
    b.never_open = (rs_os_socket)0x7ffff0;
#else
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    b.not_socket = fds[0];
    b.never_open = 1000000;
#endif
    /* Closed last: nothing opened since reuses its number. */
    b.closed = tcp_socket();
    sock_close(b.closed);
    rs_test_run_on_loop(loop, bad_input_fn, &b);
    const int expected[] = {
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_NOT_A_SOCKET,     RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED,
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_INVALID_ARGUMENT,
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        assert_string_equal(rs_error_name(b.errors[i]), rs_error_name(expected[i]));
    }
#ifdef _WIN32
    CloseHandle(pipe_read);
    CloseHandle(pipe_write);
#else
    close(fds[0]);
    close(fds[1]);
#endif

    /* Off the loop's thread: start and set_events are refused. */
    assert_null_with(rs_watch_start(loop, r->peer, RS_WATCH_READABLE, noop_watch, NULL),
                     RS_ERROR_WRONG_THREAD);
    assert_fails_with(rs_watch_set_events(r->watch, RS_WATCH_WRITABLE), RS_ERROR_WRONG_THREAD);
    assert_true(rs_watch_socket(r->watch) == r->sock);
    assert_true(rs_watch_socket(NULL) == RS_OS_SOCKET_INVALID);

    /* The same socket from another loop: refused too. */
    rs_event_loop *other = rs_event_loop_new(NULL);
    assert_non_null(other);
    assert_int_equal(rs_event_loop_run(other), 0);
    struct slot *dup = &t->s[1];
    dup->loop = other;
    dup->sock = r->sock;
    assert_string_equal(rs_error_name(start_on(dup, RS_WATCH_READABLE)),
                        rs_error_name(RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED));
    dup->sock = RS_OS_SOCKET_INVALID;

    /* A loop with a watch is not destroyed; once it is stopped, it is. */
    struct slot *o = &t->s[2];
    o->loop = other;
    slot_pair(o);
    start(o, RS_WATCH_READABLE);
    assert_fails_with(rs_event_loop_destroy(other), RS_ERROR_INVALID_STATE);
    stop(o);
    assert_int_equal(rs_event_loop_destroy(other), 0);

    /* The watch that survived all this still works. */
    send_bytes(r->peer, 4);
    rs_test_counter_await(&r->bytes, 4, "the surviving watch");

    /* Stopping twice: the second stop is refused and changes nothing. */
    rs_watch *w = r->watch;
    stop(r);
    assert_fails_with(rs_watch_stop(w, NULL, NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_int_equal(rs_test_counter_get(&r->stopped), 1);
    wt_free(t);
}

static void test_rw3_library_not_initialized(void **state)
{
    (void)state;
    assert_null_with(rs_watch_start(NULL, RS_OS_SOCKET_INVALID, 0, noop_watch, NULL),
                     RS_ERROR_LIBRARY_NOT_INITIALIZED);
}

/* IOCP backend: where a layered service provider hides the socket's base handle
 * (SIO_BASE_HANDLE fails), the AFD driver cannot poll it: a clear error. */
static void test_rw3_hidden_base_handle(void **state)
{
#if RS_TEST_IOCP
    struct wt *t = wt_new(*state);
    struct slot *r = &t->s[0];
    slot_pair(r);
    rs__iocp_watch_test_hide_base_handle(true);
    int err = start_on(r, RS_WATCH_READABLE);
    rs__iocp_watch_test_hide_base_handle(false);
    assert_string_equal(rs_error_name(err), rs_error_name(RS_ERROR_PLATFORM_NOT_SUPPORTED));
    r->watch = NULL;
    r->mode = MODE_DRAIN;
    start(r, RS_WATCH_READABLE);
    send_bytes(r->peer, 2);
    rs_test_counter_await(&r->bytes, 2, "a watch once the base handle shows");
    wt_free(t);
#elif defined(_WIN32)
    (void)state;
    RS_TEST_SKIP("an IOCP-backend scenario: the AFD poll needs the base handle, while the "
                 "libevent backend's select() goes through the layered provider");
#else
    (void)state;
    RS_TEST_SKIP("a Windows scenario: layered service providers exist only in Winsock");
#endif
}

int main(void)
{
#ifdef _WIN32
    WSADATA wsa;
    WSAStartup(MAKEWORD(2, 2), &wsa);
#endif
#define T(fn) cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)
    const struct CMUnitTest tests[] = {
        T(test_rw1_aws_readiness_sequence),
        T(test_el14_readiness_watch),
        T(test_rw1_level_triggered_and_writable_after_drain),
        T(test_rw1_stop_then_watch_again),
        T(test_rw2_listener_accept_readiness),
        T(test_rw2_peer_hang_up_reported),
        T(test_rw2_failed_connect_reported),
        T(test_rw2_local_close_reported),
        T(test_rw3_stop_inside_callback),
        T(test_rw3_stop_from_foreign_thread),
        T(test_rw3_stop_from_another_loop),
        T(test_rw3_bad_input),
        T(test_rw3_hidden_base_handle),
        cmocka_unit_test(test_rw3_library_not_initialized),
    };
#undef T
    int rc = RS_TEST_MAIN("watch", tests);
#ifdef _WIN32
    WSACleanup();
#endif
    return rc;
}
