/*
 * Socket API scenarios UD5 (unsubscribing from readable events) and UD8
 * (immediate writes). A pair is a client and the connection the listener
 * accepted for it (or two connected UDP sockets), both on the test's loop;
 * the server side reads only while subscribed. Same file on every backend;
 * loopback only, port 0, bounded waits.
 */
#include "socket_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a callback that must not come is given to show up: a window for
 * a wrong callback, never a wait for a right one. */
#define UD_QUIET_MS 100
/* A bound on what a non-reading peer's buffers take before WOULD_BLOCK. */
#define UD_FILL_MAX (256u << 20)
#define UD_CHUNK (64u << 10)

enum ud_mode {
    UD_DRAIN,                      /* read until RS_ERROR_WOULD_BLOCK */
    UD_DRAIN_THEN_UNSUBSCRIBE,     /* the same, then unsubscribe (twice) */
    UD_RESUBSCRIBE_UNREAD,         /* once: unsubscribe and subscribe again, reading nothing */
    UD_READ_ONCE,                  /* one read per callback, whatever it returns */
    UD_READ_ONCE_THEN_UNSUBSCRIBE, /* the same, then unsubscribe */
};

struct ud {
    rs_event_loop *loop;
    struct rs_test_counter counter;
    rs_socket_domain domain;
    rs_socket_endpoint endpoint;
    rs_socket *listener;
    rs_socket *server; /* reads (subscribed or not) */
    rs_socket *client; /* writes */
    bool connected;
    int connect_error;
    long destroyed;
    long destroys_issued; /* rs_socket_destroy calls made (ud_destroy_sockets) */
    bool had_listener;

    /* The server's readable callback. */
    enum ud_mode mode;
    long readable_calls;
    unsigned char *in;
    size_t in_len;
    size_t in_cap;
    int read_error;
    int unsubscribe_rc;        /* UD_DRAIN_THEN_UNSUBSCRIBE: the first unsubscribe */
    int unsubscribe_again;     /* ... and the error of the second */
    bool resubscribed;         /* UD_RESUBSCRIBE_UNREAD happened */
    int resubscribe_rc;        /* its subscribe */
    long calls_at_unsubscribe; /* readable_calls when ud_unsubscribe_on_loop ran */

    /* The client's queued writes. */
    long writes_done;
    int write_error;
};

static void ud_signal(struct ud *u)
{
    rs_test_counter_unlock_add(&u->counter, 1);
}

static void ud_on_destroy(void *user_data)
{
    struct ud *u = user_data;
    rs_test_counter_lock(&u->counter);
    u->destroyed++;
    ud_signal(u);
}

static void ud_on_accept(rs_socket *listener, int error_code, rs_socket *new_socket,
                         void *user_data)
{
    (void)listener;
    struct ud *u = user_data;
    if (error_code != 0) {
        return;
    }
    rs_socket_set_destroy_callback(new_socket, ud_on_destroy, u);
    int rc = rs_socket_assign_to_event_loop(new_socket, u->loop);
    rs_test_counter_lock(&u->counter);
    if (rc == 0 && !u->server) {
        u->server = new_socket;
        ud_signal(u);
    } else {
        rs_test_counter_unlock(&u->counter);
        rs_socket_destroy(new_socket);
    }
}

static void ud_on_connect(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct ud *u = user_data;
    rs_test_counter_lock(&u->counter);
    u->connected = true;
    u->connect_error = error_code;
    ud_signal(u);
}

/* Destroys the sockets not destroyed yet (each once), counting them. */
static int ud_destroy_sockets(struct ud *u)
{
    int rc = 0;
    rs_socket **all[] = {&u->client, &u->server, &u->listener};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (*all[i]) {
            rc |= rs_socket_destroy(*all[i]);
            *all[i] = NULL;
            u->destroys_issued++;
        }
    }
    return rc;
}

/* Destroys the sockets a failed test left and frees u (HO10: the next test
 * starts clean). False, leaking u on purpose, if a destroy callback never
 * came. */
static bool ud_release(void *obj)
{
    struct ud *u = obj;
    ud_destroy_sockets(u);
    uint64_t deadline = rs__clock_now_ns() + RS_TEST_TIMEOUT_MS * 1000000ull;
    rs_test_counter_lock(&u->counter);
    while (u->destroyed < u->destroys_issued) {
        if (rs__clock_now_ns() >= deadline) {
            rs_test_counter_unlock(&u->counter);
            print_error("harness: a socket of the failed test was not destroyed\n");
            return false;
        }
        (void)rs_test_counter_wait_change(&u->counter, deadline);
    }
    rs_test_counter_unlock(&u->counter);
    if (u->had_listener) {
        sk_remove_path(u->domain, &u->endpoint);
    }
    rs_test_counter_clean_up(&u->counter);
    free(u->in);
    free(u);
    return true;
}

/* On the heap and owned by the test, since the loop calls back into it. */
static struct ud *ud_new(rs_event_loop *loop)
{
    struct ud *u = calloc(1, sizeof *u);
    assert_non_null(u);
    u->loop = loop;
    rs_test_counter_init(&u->counter);
    rs_test_own(u, ud_release, NULL);
    return u;
}

static rs_socket *ud_socket(struct ud *u, rs_socket_type type, rs_socket_domain domain)
{
    rs_socket_options options = sk_options(type, domain);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    assert_int_equal(rs_socket_set_destroy_callback(s, ud_on_destroy, u), 0);
    return s;
}

/* A connected stream pair: u->client connected, u->server accepted on the
 * loop, not subscribed. */
static void ud_listen(struct ud *u, rs_socket_domain domain)
{
    u->domain = domain;
    u->listener = ud_socket(u, RS_SOCKET_STREAM, domain);
    u->had_listener = true;
    rs_socket_endpoint ep = sk_loopback(domain);
    assert_int_equal(rs_socket_bind(u->listener, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(u->listener, &u->endpoint), 0);
    assert_int_equal(rs_socket_listen(u->listener, 4), 0);
    assert_int_equal(rs_socket_start_accept(u->listener, u->loop, ud_on_accept, u), 0);
}

static void ud_stream_pair(struct ud *u, rs_socket_domain domain)
{
    ud_listen(u, domain);
    u->client = ud_socket(u, RS_SOCKET_STREAM, domain);
    assert_int_equal(rs_socket_connect(u->client, &u->endpoint, u->loop, ud_on_connect, u), 0);
    SK_WAIT(u, u->connected && u->server, "the connection");
    assert_int_equal(u->connect_error, 0);
}

/* Two UDP sockets: u->client connected to u->server, which is bound and on
 * the loop, not subscribed. */
static void ud_dgram_pair(struct ud *u)
{
    u->domain = RS_SOCKET_IPV4;
    u->server = ud_socket(u, RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(u->server, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(u->server, &u->endpoint), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(u->server, u->loop), 0);
    u->client = ud_socket(u, RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_connect(u->client, &u->endpoint, u->loop, ud_on_connect, u), 0);
    SK_WAIT(u, u->connected, "the UDP connect");
    assert_int_equal(u->connect_error, 0);
}

static void ud_clean_up(struct ud *u)
{
    assert_int_equal(ud_destroy_sockets(u), 0);
    SK_WAIT(u, u->destroyed >= u->destroys_issued, "the sockets' destroy callbacks");
    if (u->had_listener) {
        sk_remove_path(u->domain, &u->endpoint);
    }
    rs_test_disown(u);
    free(u->in);
    rs_test_counter_clean_up(&u->counter);
    free(u);
}

/* ---- the server's reading ---- */

static void ud_keep(struct ud *u, const unsigned char *bytes, size_t n)
{
    if (u->in_len + n > u->in_cap) {
        size_t cap = u->in_cap ? u->in_cap : 4096;
        while (cap < u->in_len + n) {
            cap *= 2;
        }
        unsigned char *in = realloc(u->in, cap);
        assert_non_null(in);
        u->in = in;
        u->in_cap = cap;
    }
    memcpy(u->in + u->in_len, bytes, n);
    u->in_len += n;
}

/* Reads until RS_ERROR_WOULD_BLOCK (or another error, kept). Loop thread,
 * under u->counter's lock. */
static void ud_drain(struct ud *u, rs_socket *socket)
{
    unsigned char buf[16384];
    for (;;) {
        size_t n = 0;
        if (rs_socket_read(socket, buf, sizeof buf, &n) != 0) {
            if (rs_last_error() != RS_ERROR_WOULD_BLOCK) {
                u->read_error = rs_last_error();
            }
            return;
        }
        ud_keep(u, buf, n);
    }
}

static void ud_on_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct ud *u = user_data;
    rs_test_counter_lock(&u->counter);
    u->readable_calls++;
    if (error_code != 0) {
        u->read_error = error_code;
    }
    if (u->mode == UD_RESUBSCRIBE_UNREAD && !u->resubscribed) {
        u->resubscribed = true;
        u->resubscribe_rc = rs_socket_unsubscribe_from_readable_events(socket);
        if (u->resubscribe_rc == 0) {
            u->resubscribe_rc = rs_socket_subscribe_to_readable_events(socket, ud_on_readable, u);
        }
        ud_signal(u);
        return;
    }
    if (u->mode == UD_READ_ONCE || u->mode == UD_READ_ONCE_THEN_UNSUBSCRIBE) {
        unsigned char buf[16384];
        size_t n = 0;
        if (rs_socket_read(socket, buf, sizeof buf, &n) == 0) {
            ud_keep(u, buf, n);
        } else if (rs_last_error() != RS_ERROR_WOULD_BLOCK) {
            u->read_error = rs_last_error();
        }
        if (u->mode == UD_READ_ONCE_THEN_UNSUBSCRIBE) {
            u->unsubscribe_rc = rs_socket_unsubscribe_from_readable_events(socket);
        }
        ud_signal(u);
        return;
    }
    ud_drain(u, socket);
    if (u->mode == UD_DRAIN_THEN_UNSUBSCRIBE) {
        u->unsubscribe_rc = rs_socket_unsubscribe_from_readable_events(socket);
        u->unsubscribe_again =
            rs_socket_unsubscribe_from_readable_events(socket) == 0 ? 0 : rs_last_error();
    }
    ud_signal(u);
}

static void ud_subscribe_on_loop(void *arg)
{
    struct ud *u = arg;
    assert_int_equal(rs_socket_subscribe_to_readable_events(u->server, ud_on_readable, u), 0);
}

static void ud_subscribe(struct ud *u, enum ud_mode mode)
{
    rs_test_counter_lock(&u->counter);
    u->mode = mode;
    rs_test_counter_unlock(&u->counter);
    rs_test_run_on_loop(u->loop, ud_subscribe_on_loop, u);
}

/* Unsubscribes on the loop, noting the callbacks so far; a second
 * unsubscribe fails with RS_ERROR_INVALID_STATE. */
static void ud_unsubscribe_on_loop(void *arg)
{
    struct ud *u = arg;
    assert_int_equal(rs_socket_unsubscribe_from_readable_events(u->server), 0);
    rs_test_counter_lock(&u->counter);
    u->calls_at_unsubscribe = u->readable_calls;
    rs_test_counter_unlock(&u->counter);
    assert_fails_with(rs_socket_unsubscribe_from_readable_events(u->server),
                      RS_ERROR_INVALID_STATE);
}

static long ud_readable_calls(struct ud *u)
{
    rs_test_counter_lock(&u->counter);
    long n = u->readable_calls;
    rs_test_counter_unlock(&u->counter);
    return n;
}

static size_t ud_in_len(struct ud *u)
{
    rs_test_counter_lock(&u->counter);
    size_t n = u->in_len;
    rs_test_counter_unlock(&u->counter);
    return n;
}

/* ---- the client's writes ---- */

static void ud_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    struct ud *u = user_data;
    rs_test_counter_lock(&u->counter);
    u->writes_done++;
    if (error_code != 0) {
        u->write_error = error_code;
    }
    ud_signal(u);
}

struct ud_write {
    struct ud *u;
    const void *data;
    size_t len;
};

static void ud_write_on_loop(void *arg)
{
    struct ud_write *w = arg;
    assert_int_equal(rs_socket_write(w->u->client, w->data, w->len, ud_written, w->u), 0);
}

/* Queues a write of the client and waits for its completion. */
static void ud_write(struct ud *u, const char *text)
{
    long before = u->writes_done;
    struct ud_write w = {u, text, strlen(text)};
    rs_test_run_on_loop(u->loop, ud_write_on_loop, &w);
    SK_WAIT(u, u->writes_done > before, "the write's completion");
    assert_int_equal(u->write_error, 0);
}

static void ud_wait_in(struct ud *u, size_t n)
{
    SK_WAIT(u, u->in_len >= n || u->read_error != 0, "the server to read");
    assert_int_equal(u->read_error, 0);
    assert_int_equal(u->in_len, n);
}

/* ---- UD5 ---- */

/* Subscribed, one write read; unsubscribed, the later writes: no callback,
 * nothing read; subscribed again, everything in order without new data. */
static void ud5_data_stays_while_unsubscribed(struct ud *u, const char *first,
                                              const char *const *later, size_t nlater)
{
    ud_subscribe(u, UD_DRAIN);
    ud_write(u, first);
    ud_wait_in(u, strlen(first));
    rs_test_run_on_loop(u->loop, ud_unsubscribe_on_loop, u);
    long calls = u->calls_at_unsubscribe;
    char all[64];
    snprintf(all, sizeof all, "%s", first);
    for (size_t i = 0; i < nlater; i++) {
        ud_write(u, later[i]);
        strncat(all, later[i], sizeof all - strlen(all) - 1);
    }
    sk_loop_wait_until(u->loop, UD_QUIET_MS);
    /* No callback, and the bytes stay where they are (on Windows a receive
     * posted before the unsubscribe may hold them: docs/windows.md). */
    assert_int_equal(ud_readable_calls(u), calls);
    assert_int_equal(ud_in_len(u), strlen(first));

    /* Subscribing again reports the waiting bytes without new data. */
    ud_subscribe(u, UD_DRAIN);
    ud_wait_in(u, strlen(all));
    assert_memory_equal(u->in, all, strlen(all));
    assert_true(ud_readable_calls(u) > calls);
    ud_clean_up(u);
}

static void test_ud5_unsubscribe_stops_callbacks_and_data_stays(void **state)
{
    struct ud *u = ud_new(*state);
    ud_stream_pair(u, RS_SOCKET_IPV4);
    const char *later[] = {"second"};
    ud5_data_stays_while_unsubscribed(u, "first", later, 1);
}

/* Reads on the loop until RS_ERROR_WOULD_BLOCK. */
static void ud_drain_on_loop(void *arg)
{
    struct ud *u = arg;
    rs_test_counter_lock(&u->counter);
    ud_drain(u, u->server);
    rs_test_counter_unlock(&u->counter);
}

static void test_ud5_read_after_unsubscribe_gets_everything_in_order(void **state)
{
    struct ud *u = ud_new(*state);
    ud_stream_pair(u, RS_SOCKET_IPV4);
    ud_subscribe(u, UD_DRAIN);
    ud_write(u, "first");
    ud_wait_in(u, 5);
    rs_test_run_on_loop(u->loop, ud_unsubscribe_on_loop, u);
    long calls = u->calls_at_unsubscribe;

    /* More than a receive posted on Windows holds (128 KiB): part of it
     * is held by reseau, the rest waits in the kernel, and reads hand it
     * all out in order. */
    size_t len = 512u << 10;
    unsigned char *data = malloc(len);
    assert_non_null(data);
    sk_fill_pattern(data, len, 5);
    struct ud_write w = {u, data, len};
    rs_test_run_on_loop(u->loop, ud_write_on_loop, &w);
    /* Reads without a subscription, until everything came: each read
     * drains what is there now; the loop's timer spaces the attempts. */
    uint64_t deadline = rs__clock_now_ns() + RS_TEST_TIMEOUT_MS * 1000000ull;
    while (ud_in_len(u) < 5 + len && u->read_error == 0 && rs__clock_now_ns() < deadline) {
        rs_test_run_on_loop(u->loop, ud_drain_on_loop, u);
        if (ud_in_len(u) < 5 + len) {
            sk_loop_wait_until(u->loop, 10);
        }
    }
    assert_int_equal(u->read_error, 0);
    assert_int_equal(u->in_len, 5 + len);
    assert_true(sk_check_pattern(u->in + 5, len, 5));
    SK_WAIT(u, u->writes_done == 2, "the big write's completion");
    assert_int_equal(ud_readable_calls(u), calls);
    free(data);
    ud_clean_up(u);
}

static void test_ud5_unsubscribe_inside_readable_callback(void **state)
{
    struct ud *u = ud_new(*state);
    ud_stream_pair(u, RS_SOCKET_IPV4);
    ud_subscribe(u, UD_DRAIN_THEN_UNSUBSCRIBE);
    ud_write(u, "first");
    ud_wait_in(u, 5);
    assert_int_equal(u->unsubscribe_rc, 0);
    assert_string_equal(rs_error_name(u->unsubscribe_again), rs_error_name(RS_ERROR_INVALID_STATE));
    long calls = ud_readable_calls(u);

    ud_write(u, "second");
    sk_loop_wait_until(u->loop, UD_QUIET_MS);
    assert_int_equal(ud_readable_calls(u), calls);
    assert_int_equal(ud_in_len(u), 5);

    ud_subscribe(u, UD_DRAIN);
    ud_wait_in(u, 11);
    assert_memory_equal(u->in, "firstsecond", 11);

    /* Unsubscribing and subscribing again inside the callback, reading
     * nothing: the data waits, so the callback comes again. */
    rs_test_counter_lock(&u->counter);
    u->mode = UD_RESUBSCRIBE_UNREAD;
    calls = u->readable_calls;
    rs_test_counter_unlock(&u->counter);
    ud_write(u, "third");
    ud_wait_in(u, 16);
    assert_memory_equal(u->in, "firstsecondthird", 16);
    assert_true(u->resubscribed);
    assert_int_equal(u->resubscribe_rc, 0);
    assert_true(ud_readable_calls(u) >= calls + 2);
    ud_clean_up(u);
}

static void ud_end_client_stream_on_loop(void *arg)
{
    struct ud *u = arg;
    assert_int_equal(rs_socket_shutdown(u->client, RS_SOCKET_DIRECTION_WRITE), 0);
}

/* The peer's last bytes and its end of stream, both arrived before the
 * subscription: an epoll edge reports them together, so the read that
 * returns the bytes short is not the last sign the socket gets. */
static void ud_last_bytes_then_end(struct ud *u)
{
    ud_stream_pair(u, RS_SOCKET_IPV4);
    ud_write(u, "last");
    rs_test_run_on_loop(u->loop, ud_end_client_stream_on_loop, u);
}

static void ud_wait_end(struct ud *u)
{
    SK_WAIT(u, u->read_error != 0, "the read that reports the end of the stream");
    assert_string_equal(rs_error_name(u->read_error), rs_error_name(RS_ERROR_SOCKET_CLOSED));
    assert_int_equal(u->in_len, 4);
    assert_memory_equal(u->in, "last", 4);
}

/* A callback that reads once, short, with the end of the stream behind
 * the bytes: called again, and that read reports the end (rule 2 of
 * docs/readable-events.md: a short read with the end behind it does not
 * drain). */
static void test_ud5_short_read_with_the_end_behind_it_is_called_again(void **state)
{
    struct ud *u = ud_new(*state);
    ud_last_bytes_then_end(u);
    ud_subscribe(u, UD_READ_ONCE);
    ud_wait_end(u);
    assert_int_equal(ud_readable_calls(u), 2);
    ud_clean_up(u);
}

/* tcp_proxy's pause and resume: a callback reads "last" once (short) and
 * unsubscribes; then the test subscribes again with one read per callback. */
static void ud_pause_after_a_short_read_then_resume(struct ud *u)
{
    ud_subscribe(u, UD_READ_ONCE_THEN_UNSUBSCRIBE);
    SK_WAIT(u, u->in_len == 4 || u->read_error != 0, "the first read");
    assert_int_equal(u->read_error, 0);
    assert_int_equal(u->unsubscribe_rc, 0);
    ud_subscribe(u, UD_READ_ONCE);
}

/* tcp_proxy's pause: one short read, unsubscribe (the other side is
 * busy), subscribe later. The end of the stream that came with the bytes
 * is reported then. */
static void test_ud5_resubscribe_after_a_short_read_reports_the_end(void **state)
{
    struct ud *u = ud_new(*state);
    ud_last_bytes_then_end(u);
    ud_pause_after_a_short_read_then_resume(u);
    ud_wait_end(u);
    ud_clean_up(u);
}

/* As above with a reset behind the bytes instead of an end of stream: a
 * raw client that closes with SO_LINGER 0. */
static void test_ud5_resubscribe_after_a_short_read_reports_a_reset(void **state)
{
    struct ud *u = ud_new(*state);
    ud_listen(u, RS_SOCKET_IPV4);
    sk_raw_socket raw = sk_raw_connect(&u->endpoint);
    SK_WAIT(u, u->server, "the connection");
    sk_raw_send_all(raw, "last", 4);
    sk_raw_reset(raw);
    ud_pause_after_a_short_read_then_resume(u);
    SK_WAIT(u, u->read_error != 0, "the read that reports the reset");
    if (rs_test_under_wine() && u->read_error == RS_ERROR_SOCKET_CLOSED) {
        /* Under Wine 8 the receive after such a reset completes with 0
         * bytes, an end of stream, where Windows fails it with
         * WSAECONNRESET (docs/windows.md). */
    } else {
        assert_string_equal(rs_error_name(u->read_error), rs_error_name(RS_ERROR_CONNECTION_RESET));
    }
    assert_memory_equal(u->in, "last", 4);
    ud_clean_up(u);
}

static void test_ud5_unsubscribe_datagrams_stay(void **state)
{
    struct ud *u = ud_new(*state);
    ud_dgram_pair(u);
    const char *later[] = {"two", "three"};
    ud5_data_stays_while_unsubscribed(u, "one", later, 2);
}

static void ud_unsubscribe_bad_on_loop(void *arg)
{
    struct ud *u = arg;
    /* Not subscribed. */
    assert_fails_with(rs_socket_unsubscribe_from_readable_events(u->server),
                      RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_subscribe_to_readable_events(u->server, ud_on_readable, u), 0);
}

static void ud_close_then_unsubscribe_on_loop(void *arg)
{
    struct ud *u = arg;
    assert_int_equal(rs_socket_close(u->server), 0);
    assert_fails_with(rs_socket_unsubscribe_from_readable_events(u->server),
                      RS_ERROR_INVALID_STATE);
}

static void test_ud5_unsubscribe_bad_input(void **state)
{
    struct ud *u = ud_new(*state);
    assert_fails_with(rs_socket_unsubscribe_from_readable_events(NULL), RS_ERROR_INVALID_ARGUMENT);
    /* No loop yet. */
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *fresh = rs_socket_new(&options);
    assert_non_null(fresh);
    assert_fails_with(rs_socket_unsubscribe_from_readable_events(fresh), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(fresh), 0);

    ud_stream_pair(u, RS_SOCKET_IPV4);
    rs_test_run_on_loop(u->loop, ud_unsubscribe_bad_on_loop, u);
    /* Wrong thread: refused, and the subscription goes on. */
    assert_fails_with(rs_socket_unsubscribe_from_readable_events(u->server), RS_ERROR_WRONG_THREAD);
    ud_write(u, "still");
    ud_wait_in(u, 5);
    assert_memory_equal(u->in, "still", 5);
    /* Closed while subscribed. */
    rs_test_run_on_loop(u->loop, ud_close_then_unsubscribe_on_loop, u);
    ud_clean_up(u);
}

/* ---- UD8 ---- */

struct ud_try {
    struct ud *u;
    const void *data;
    size_t len;
    int rc;
    int error;
    size_t written;
    size_t queue_after;
};

static void ud_try_write_on_loop(void *arg)
{
    struct ud_try *t = arg;
    t->rc = rs_socket_try_write(t->u->client, t->data, t->len, &t->written);
    t->error = t->rc == 0 ? 0 : rs_last_error();
    assert_int_equal(rs_socket_get_write_queue_size(t->u->client, &t->queue_after), 0);
}

/* Queues a write, then tries one while it is queued (the kernel has room). */
static void ud_write_then_try_on_loop(void *arg)
{
    struct ud_try *t = arg;
    assert_int_equal(rs_socket_write(t->u->client, t->data, t->len, ud_written, t->u), 0);
    t->rc = rs_socket_try_write(t->u->client, "x", 1, &t->written);
    t->error = t->rc == 0 ? 0 : rs_last_error();
}

static void ud8_takes_now(rs_socket_type type, rs_socket_domain domain, void **state)
{
    struct ud *u = ud_new(*state);
    if (type == RS_SOCKET_DGRAM) {
        ud_dgram_pair(u);
    } else {
        ud_stream_pair(u, domain);
    }
    ud_subscribe(u, UD_DRAIN);
    unsigned char data[2000];
    sk_fill_pattern(data, sizeof data, 0);
    struct ud_try t = {u, data, 1000, 0, 0, 12345, 1};
    rs_test_run_on_loop(u->loop, ud_try_write_on_loop, &t);
    if (domain == RS_SOCKET_LOCAL && rs_backend_id() == RS_BACKEND_IOCP) {
        /* A named pipe has no non-blocking write (socket.h). */
        assert_int_equal(t.rc, -1);
        assert_string_equal(rs_error_name(t.error), rs_error_name(RS_ERROR_PLATFORM_NOT_SUPPORTED));
        assert_int_equal(t.written, 12345);
        ud_clean_up(u);
        return;
    }
    assert_int_equal(t.rc, 0);
    /* A fresh socket's send buffer holds far more than 1000 bytes. */
    assert_int_equal(t.written, 1000);
    assert_int_equal(t.queue_after, 0);
    ud_wait_in(u, 1000);
    assert_true(sk_check_pattern(u->in, u->in_len, 0));
    assert_int_equal(u->writes_done, 0);

    /* A queued write whose completion has not run: refused, although the
     * kernel has room, and nothing is sent. */
    struct ud_try q = {u, data + 1000, 1000, 0, 0, 12345, 0};
    rs_test_run_on_loop(u->loop, ud_write_then_try_on_loop, &q);
    assert_int_equal(q.rc, -1);
    assert_string_equal(rs_error_name(q.error), rs_error_name(RS_ERROR_WOULD_BLOCK));
    assert_int_equal(q.written, 12345);
    SK_WAIT(u, u->writes_done == 1, "the queued write's completion");
    assert_int_equal(u->write_error, 0);
    ud_wait_in(u, 2000);
    assert_true(sk_check_pattern(u->in, u->in_len, 0));
    ud_clean_up(u);
}

static void test_ud8_try_write_takes_what_the_kernel_takes(void **state)
{
    ud8_takes_now(RS_SOCKET_STREAM, RS_SOCKET_IPV4, state);
    ud8_takes_now(RS_SOCKET_STREAM, RS_SOCKET_IPV6, state);
    ud8_takes_now(RS_SOCKET_DGRAM, RS_SOCKET_IPV4, state);
}

static void test_ud8_try_write_local(void **state)
{
    ud8_takes_now(RS_SOCKET_STREAM, RS_SOCKET_LOCAL, state);
}

/* Fills the connection with try_write until WOULD_BLOCK (the server does
 * not read), then queues two writes with a refused try_write between them. */
struct ud_fill {
    struct ud *u;
    size_t sent; /* bytes try_write took: pattern offsets 0..sent */
    int full_error;
    int queued_error;
    unsigned char *queued[2];
    size_t queued_len[2];
};

static void ud_fill_on_loop(void *arg)
{
    struct ud_fill *f = arg;
    unsigned char *chunk = malloc(UD_CHUNK);
    assert_non_null(chunk);
    while (f->sent < UD_FILL_MAX) {
        sk_fill_pattern(chunk, UD_CHUNK, f->sent);
        size_t n = 0;
        if (rs_socket_try_write(f->u->client, chunk, UD_CHUNK, &n) != 0) {
            f->full_error = rs_last_error();
            break;
        }
        f->sent += n;
    }
    free(chunk);
    size_t offset = f->sent;
    for (int i = 0; i < 2; i++) {
        f->queued_len[i] = i == 0 ? 100000 : 50000;
        f->queued[i] = malloc(f->queued_len[i]);
        assert_non_null(f->queued[i]);
        sk_fill_pattern(f->queued[i], f->queued_len[i], offset);
        offset += f->queued_len[i];
        assert_int_equal(
            rs_socket_write(f->u->client, f->queued[i], f->queued_len[i], ud_written, f->u), 0);
        if (i == 0) {
            /* Writes are queued: refused whatever room the kernel has. */
            size_t n = 7;
            f->queued_error =
                rs_socket_try_write(f->u->client, "x", 1, &n) == 0 ? 0 : rs_last_error();
            assert_int_equal(n, 7);
        }
    }
}

static void test_ud8_would_block_when_full_or_queued_and_fifo(void **state)
{
    struct ud *u = ud_new(*state);
    ud_stream_pair(u, RS_SOCKET_IPV4);
    struct ud_fill f;
    memset(&f, 0, sizeof f);
    f.u = u;
    rs_test_run_on_loop(u->loop, ud_fill_on_loop, &f);
    assert_string_equal(rs_error_name(f.full_error), rs_error_name(RS_ERROR_WOULD_BLOCK));
    assert_true(f.sent > 0);
    assert_string_equal(rs_error_name(f.queued_error), rs_error_name(RS_ERROR_WOULD_BLOCK));

    /* The server reads: the bytes try_write took, then the queued writes. */
    size_t total = f.sent + f.queued_len[0] + f.queued_len[1];
    ud_subscribe(u, UD_DRAIN);
    SK_WAIT(u, u->writes_done == 2, "the queued writes' completions");
    assert_int_equal(u->write_error, 0);
    ud_wait_in(u, total);
    assert_true(sk_check_pattern(u->in, u->in_len, 0));

    /* Nothing queued any more: taken at once, after everything else. */
    unsigned char tail[1000];
    sk_fill_pattern(tail, sizeof tail, total);
    struct ud_try t = {u, tail, sizeof tail, 0, 0, 0, 1};
    rs_test_run_on_loop(u->loop, ud_try_write_on_loop, &t);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.written, sizeof tail);
    ud_wait_in(u, total + sizeof tail);
    assert_true(sk_check_pattern(u->in, u->in_len, 0));
    free(f.queued[0]);
    free(f.queued[1]);
    ud_clean_up(u);
}

static void ud_try_write_bad_on_loop(void *arg)
{
    struct ud *u = arg;
    size_t n = 12345;
    assert_fails_with(rs_socket_try_write(u->client, NULL, 1, &n), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_socket_try_write(u->client, "x", 0, &n), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_socket_try_write(u->client, "x", 1, NULL), RS_ERROR_INVALID_ARGUMENT);
    /* Shut down for writing. */
    assert_int_equal(rs_socket_shutdown(u->client, RS_SOCKET_DIRECTION_WRITE), 0);
    assert_fails_with(rs_socket_try_write(u->client, "x", 1, &n), RS_ERROR_INVALID_STATE);
    assert_int_equal(n, 12345);
}

static void ud_try_write_dgram_bad_on_loop(void *arg)
{
    struct ud *u = arg;
    size_t n = 12345;
    /* The server is bound, on the loop, but not connected. */
    assert_fails_with(rs_socket_try_write(u->server, "x", 1, &n), RS_ERROR_INVALID_STATE);
    size_t big = 65508;
    unsigned char *data = calloc(1, big);
    assert_non_null(data);
    assert_fails_with(rs_socket_try_write(u->client, data, big, &n), RS_ERROR_MESSAGE_TOO_LARGE);
    free(data);
    assert_int_equal(n, 12345);
    /* Closed. */
    assert_int_equal(rs_socket_close(u->client), 0);
    assert_fails_with(rs_socket_try_write(u->client, "x", 1, &n), RS_ERROR_INVALID_STATE);
    assert_int_equal(n, 12345);
}

static void test_ud8_try_write_bad_input(void **state)
{
    size_t n = 12345;
    assert_fails_with(rs_socket_try_write(NULL, "x", 1, &n), RS_ERROR_INVALID_ARGUMENT);
    /* Not connected and no loop. */
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *fresh = rs_socket_new(&options);
    assert_non_null(fresh);
    assert_fails_with(rs_socket_try_write(fresh, "x", 1, &n), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(fresh), 0);

    struct ud *u = ud_new(*state);
    ud_stream_pair(u, RS_SOCKET_IPV4);
    /* Wrong thread: nothing sent. */
    assert_fails_with(rs_socket_try_write(u->client, "x", 1, &n), RS_ERROR_WRONG_THREAD);
    assert_int_equal(n, 12345);
    rs_test_run_on_loop(u->loop, ud_try_write_bad_on_loop, u);
    /* The server reads the end of stream and nothing else. */
    ud_subscribe(u, UD_DRAIN);
    SK_WAIT(u, u->read_error != 0, "the end of stream");
    assert_string_equal(rs_error_name(u->read_error), rs_error_name(RS_ERROR_SOCKET_CLOSED));
    assert_int_equal(u->in_len, 0);
    ud_clean_up(u);

    u = ud_new(*state);
    ud_dgram_pair(u);
    rs_test_run_on_loop(u->loop, ud_try_write_dgram_bad_on_loop, u);
    ud_clean_up(u);
}

#define UD_TEST(fn) cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        UD_TEST(test_ud5_unsubscribe_stops_callbacks_and_data_stays),
        UD_TEST(test_ud5_read_after_unsubscribe_gets_everything_in_order),
        UD_TEST(test_ud5_unsubscribe_inside_readable_callback),
        UD_TEST(test_ud5_unsubscribe_datagrams_stay),
        UD_TEST(test_ud5_short_read_with_the_end_behind_it_is_called_again),
        UD_TEST(test_ud5_resubscribe_after_a_short_read_reports_the_end),
        UD_TEST(test_ud5_resubscribe_after_a_short_read_reports_a_reset),
        UD_TEST(test_ud5_unsubscribe_bad_input),
        UD_TEST(test_ud8_try_write_takes_what_the_kernel_takes),
        UD_TEST(test_ud8_try_write_local),
        UD_TEST(test_ud8_would_block_when_full_or_queued_and_fifo),
        UD_TEST(test_ud8_try_write_bad_input),
    };
    return RS_TEST_MAIN("socket_api", tests);
}
