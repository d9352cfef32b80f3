/*
 * Back-pressure scenarios: UD6 (the write queue size), HO6 (an echo server
 * under a half-closing client and under a client that never reads) and HO7
 * (a writer that respects the write queue size against a slow reader).
 * The echo here follows examples/echo_server.c: it stops reading a client
 * while more than BP_ECHO_MAX bytes wait to be echoed, resumes from the write
 * completion that brings the queue under BP_ECHO_RESUME, and after the
 * client's half-close echoes everything, then shuts down its write side and
 * closes. Same file on every backend; loopback only, port 0, bounded waits.
 */
#include "socket_fixture.h"

#include <stdlib.h>
#include <string.h>

/* Waits on Wine are bounds for slow transfers, not expectations. */
#define BP_TIMEOUT_MS 240000

#define BP_ECHO_MAX (1u << 20)
#define BP_ECHO_RESUME (256u << 10)
#define BP_READ_SIZE 16384
#define BP_CHUNK (64u << 10)

/* Everything below runs on the one loop thread; the test thread reads the
 * shared fields under `lock` and waits on `cond`. */
struct bp {
    rs_event_loop *loop;
    struct rs_test_counter counter;
    rs_socket *listener;
    rs_socket_endpoint endpoint;

    /* The server's connection (one per test). */
    rs_socket *server_socket;
    bool echo; /* echo (HO6) or leave unread (UD6) */
    bool server_paused;
    bool server_peer_done;
    bool server_closed;
    long server_pauses;
    size_t server_max_queued;

    /* The client. */
    rs_socket *client;
    const unsigned char *out; /* what the client sends */
    size_t out_len;
    size_t out_off;          /* queued so far */
    size_t client_max_queue; /* the client keeps its own queue under this */
    bool client_connected;
    bool client_reads;
    bool client_shut;
    size_t in_off; /* bytes read back, checked against the pattern */
    bool in_corrupt;
    bool eof;
    int error; /* the first unexpected error */
};

#define BP_WAIT(b, expr, what)                                                                     \
    do {                                                                                           \
        uint64_t bp_deadline_ = rs__clock_now_ns() + BP_TIMEOUT_MS * 1000000ull;                   \
        rs_test_counter_lock(&(b)->counter);                                                       \
        while (!(expr)) {                                                                          \
            uint64_t bp_now_ = rs__clock_now_ns();                                                 \
            if (bp_now_ >= bp_deadline_) {                                                         \
                rs_test_counter_unlock(&(b)->counter);                                             \
                fail_msg("timed out waiting for %s", (what));                                      \
            }                                                                                      \
            (void)rs_test_counter_wait_change(&(b)->counter, bp_deadline_);                        \
        }                                                                                          \
        rs_test_counter_unlock(&(b)->counter);                                                     \
    } while (0)

static void bp_signal(struct bp *b)
{
    rs_test_counter_unlock_add(&b->counter, 1);
}

static void bp_fail(struct bp *b, int error_code)
{
    rs_test_counter_lock(&b->counter);
    if (!b->error) {
        b->error = error_code;
    }
    bp_signal(b);
}

static size_t bp_queued(rs_socket *s)
{
    size_t n = 0;
    assert_int_equal(rs_socket_get_write_queue_size(s, &n), 0);
    return n;
}

/* ---- the echo (server side) ---- */

struct bp_chunk {
    struct bp *b;
    unsigned char bytes[BP_READ_SIZE];
};

static void bp_server_close(struct bp *b)
{
    rs_socket_destroy(b->server_socket);
    rs_test_counter_lock(&b->counter);
    b->server_socket = NULL;
    b->server_closed = true;
    bp_signal(b);
}

static void bp_server_finish_if_done(struct bp *b)
{
    if (bp_queued(b->server_socket) != 0) {
        return;
    }
    assert_int_equal(rs_socket_shutdown(b->server_socket, RS_SOCKET_DIRECTION_WRITE), 0);
    bp_server_close(b);
}

static void bp_server_pump(struct bp *b);

static void bp_echoed(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct bp_chunk *k = user_data;
    struct bp *b = k->b;
    free(k);
    if (!socket) {
        return;
    }
    if (error_code != 0) {
        bp_fail(b, error_code);
        bp_server_close(b);
    } else if (b->server_peer_done) {
        bp_server_finish_if_done(b);
    } else if (b->server_paused && bp_queued(socket) < BP_ECHO_RESUME) {
        b->server_paused = false;
        bp_server_pump(b);
    }
}

static void bp_server_pump(struct bp *b)
{
    for (;;) {
        size_t queued = bp_queued(b->server_socket);
        if (queued >= BP_ECHO_MAX) {
            b->server_paused = true;
            rs_test_counter_lock(&b->counter);
            b->server_pauses++;
            bp_signal(b);
            return;
        }
        struct bp_chunk *k = malloc(sizeof *k);
        assert_non_null(k);
        k->b = b;
        size_t n = 0;
        if (rs_socket_read(b->server_socket, k->bytes, sizeof k->bytes, &n) != 0) {
            int err = rs_last_error();
            free(k);
            if (err == RS_ERROR_WOULD_BLOCK) {
                return;
            }
            if (err == RS_ERROR_SOCKET_CLOSED) {
                b->server_peer_done = true;
                bp_server_finish_if_done(b);
                return;
            }
            bp_fail(b, err);
            bp_server_close(b);
            return;
        }
        assert_int_equal(rs_socket_write(b->server_socket, k->bytes, n, bp_echoed, k), 0);
        queued = bp_queued(b->server_socket);
        rs_test_counter_lock(&b->counter);
        if (queued > b->server_max_queued) {
            b->server_max_queued = queued;
        }
        rs_test_counter_unlock(&b->counter);
    }
}

static void bp_server_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct bp *b = user_data;
    if (b->server_peer_done) {
        return;
    }
    if (error_code == RS_ERROR_SOCKET_CLOSED) {
        b->server_peer_done = true;
        bp_server_finish_if_done(b);
    } else if (error_code != 0) {
        bp_fail(b, error_code);
        bp_server_close(b);
    } else if (!b->server_paused) {
        bp_server_pump(b);
    }
}

static void bp_accepted(rs_socket *listener, int error_code, rs_socket *socket, void *user_data)
{
    (void)listener;
    struct bp *b = user_data;
    if (error_code != 0) {
        bp_fail(b, error_code);
        return;
    }
    assert_null(b->server_socket);
    assert_int_equal(rs_socket_assign_to_event_loop(socket, b->loop), 0);
    if (b->echo) {
        assert_int_equal(rs_socket_subscribe_to_readable_events(socket, bp_server_readable, b), 0);
    }
    rs_test_counter_lock(&b->counter);
    b->server_socket = socket;
    bp_signal(b);
}

/* ---- the client ---- */

static void bp_client_pump_writes(struct bp *b);

static void bp_client_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct bp *b = user_data;
    if (!socket) {
        return;
    }
    if (error_code != 0) {
        bp_fail(b, error_code);
        return;
    }
    bp_client_pump_writes(b);
}

/* Writes while the client's own queue is under its bound; once everything
 * was written and completed, ends the client's sending (half-close). */
static void bp_client_pump_writes(struct bp *b)
{
    while (b->out_off < b->out_len && bp_queued(b->client) < b->client_max_queue) {
        size_t n = b->out_len - b->out_off < BP_CHUNK ? b->out_len - b->out_off : BP_CHUNK;
        assert_int_equal(rs_socket_write(b->client, b->out + b->out_off, n, bp_client_written, b),
                         0);
        b->out_off += n;
    }
    if (b->out_off == b->out_len && !b->client_shut && bp_queued(b->client) == 0) {
        b->client_shut = true;
        assert_int_equal(rs_socket_shutdown(b->client, RS_SOCKET_DIRECTION_WRITE), 0);
    }
}

static void bp_client_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct bp *b = user_data;
    static RS__THREAD_LOCAL unsigned char buf[65536];
    if (error_code != 0 && error_code != RS_ERROR_SOCKET_CLOSED) {
        bp_fail(b, error_code);
        return;
    }
    for (;;) {
        size_t n = 0;
        int err = error_code;
        if (!err && rs_socket_read(socket, buf, sizeof buf, &n) != 0) {
            err = rs_last_error();
        }
        if (err == RS_ERROR_WOULD_BLOCK) {
            return;
        }
        rs_test_counter_lock(&b->counter);
        if (err == RS_ERROR_SOCKET_CLOSED) {
            b->eof = true;
        } else if (err) {
            b->error = b->error ? b->error : err;
        } else if (b->in_off + n > b->out_len || !sk_check_pattern(buf, n, b->in_off)) {
            b->in_corrupt = true;
        }
        b->in_off += n;
        bp_signal(b);
        if (err) {
            return;
        }
    }
}

static void bp_client_start_reading(void *arg)
{
    struct bp *b = arg;
    b->client_reads = true;
    assert_int_equal(rs_socket_subscribe_to_readable_events(b->client, bp_client_readable, b), 0);
}

static void bp_client_connected(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct bp *b = user_data;
    if (error_code != 0) {
        bp_fail(b, error_code);
        return;
    }
    if (b->client_reads) {
        bp_client_start_reading(b);
    }
    if (b->out_len) {
        bp_client_pump_writes(b);
    }
    rs_test_counter_lock(&b->counter);
    b->client_connected = true;
    bp_signal(b);
}

/* Listener on loopback port 0; the client connects; waits until both ends
 * have their connection. */
static void bp_start(struct bp *b, rs_event_loop *loop, bool echo, bool client_reads,
                     const unsigned char *out, size_t out_len)
{
    memset(b, 0, sizeof *b);
    b->loop = loop;
    b->echo = echo;
    b->client_reads = client_reads;
    b->out = out;
    b->out_len = out_len;
    b->client_max_queue = 4u << 20;
    rs_test_counter_init(&b->counter);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    b->listener = rs_socket_new(&options);
    assert_non_null(b->listener);
    rs_socket_endpoint local = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(b->listener, &local), 0);
    assert_int_equal(rs_socket_get_bound_address(b->listener, &b->endpoint), 0);
    assert_int_equal(rs_socket_listen(b->listener, 8), 0);
    assert_int_equal(rs_socket_start_accept(b->listener, loop, bp_accepted, b), 0);
    b->client = rs_socket_new(&options);
    assert_non_null(b->client);
    assert_int_equal(rs_socket_connect(b->client, &b->endpoint, loop, bp_client_connected, b), 0);
    BP_WAIT(b, (b->server_socket && b->client_connected) || b->error, "the connection");
    assert_int_equal(b->error, 0);
}

static void bp_stop_on_loop(void *arg)
{
    struct bp *b = arg;
    if (b->server_socket) {
        rs_socket_destroy(b->server_socket);
        b->server_socket = NULL;
    }
    rs_socket_destroy(b->client);
    rs_socket_destroy(b->listener);
}

static void bp_stop(struct bp *b)
{
    rs_test_run_on_loop(b->loop, bp_stop_on_loop, b);
    /* Completions of writes ended by the destroy still refer to b. */
    sk_loop_round_trip(b->loop);
    sk_loop_round_trip(b->loop);
    rs_test_counter_clean_up(&b->counter);
}

/* The peer that reads and discards (UD6). */
static void bp_server_drain_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct bp *b = user_data;
    static RS__THREAD_LOCAL unsigned char buf[65536];
    size_t n = 0;
    while (!error_code && rs_socket_read(socket, buf, sizeof buf, &n) == 0) {
    }
    int err = error_code ? error_code : rs_last_error();
    if (err != RS_ERROR_WOULD_BLOCK && err != RS_ERROR_SOCKET_CLOSED) {
        bp_fail(b, err);
    }
}

/* ---- UD6 ---- */

#define UD6_WRITES 256

struct ud6 {
    struct bp *b;
    const unsigned char *chunk;
    size_t issued;    /* bytes written */
    size_t completed; /* bytes whose completion ran */
    long completions;
    bool mismatch; /* a completion saw a size other than issued - completed */
    size_t seen;
};

static void ud6_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct ud6 *u = user_data;
    if (!socket) {
        return;
    }
    rs_test_counter_lock(&u->b->counter);
    if (error_code != 0) {
        u->b->error = u->b->error ? u->b->error : error_code;
    }
    u->completed += BP_CHUNK;
    u->completions++;
    /* Inside the completion the write no longer counts. */
    if (bp_queued(socket) != u->issued - u->completed) {
        u->mismatch = true;
    }
    bp_signal(u->b);
}

static void ud6_write_all(void *arg)
{
    struct ud6 *u = arg;
    assert_int_equal(bp_queued(u->b->client), 0);
    for (int i = 0; i < UD6_WRITES; i++) {
        assert_int_equal(rs_socket_write(u->b->client, u->chunk, BP_CHUNK, ud6_written, u), 0);
        rs_test_counter_lock(&u->b->counter);
        u->issued += BP_CHUNK;
        rs_test_counter_unlock(&u->b->counter);
        /* No completion runs inside rs_socket_write: the size is exact. */
        assert_int_equal(bp_queued(u->b->client), u->issued);
    }
}

static void ud6_read_size(void *arg)
{
    struct ud6 *u = arg;
    u->seen = bp_queued(u->b->client);
}

/* The peer starts reading: everything queued can complete. */
static void ud6_peer_reads(void *arg)
{
    struct bp *b = arg;
    b->echo = false;
    assert_int_equal(
        rs_socket_subscribe_to_readable_events(b->server_socket, bp_server_drain_readable, b), 0);
}

static void test_ud6_write_queue_size(void **state)
{
    rs_event_loop *loop = *state;
    /* Bad input: specific errors, *out untouched. */
    size_t out = 12345;
    assert_fails_with(rs_socket_get_write_queue_size(NULL, &out), RS_ERROR_INVALID_ARGUMENT);
    assert_int_equal(out, 12345);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *fresh = rs_socket_new(&options);
    assert_non_null(fresh);
    assert_fails_with(rs_socket_get_write_queue_size(fresh, NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_socket_get_write_queue_size(fresh, &out), RS_ERROR_INVALID_STATE);
    assert_int_equal(out, 12345);
    assert_int_equal(rs_socket_destroy(fresh), 0);

    struct bp b;
    bp_start(&b, loop, false, false, NULL, 0);
    assert_fails_with(rs_socket_get_write_queue_size(b.client, &out), RS_ERROR_WRONG_THREAD);
    assert_int_equal(out, 12345);

    /* 16 MiB to a peer that reads nothing: more than the loopback buffers
     * take (Linux grows a send buffer to 4 MiB). The same chunk is written
     * again and again: writes do not copy, and only the count matters. */
    unsigned char *chunk = malloc(BP_CHUNK);
    assert_non_null(chunk);
    sk_fill_pattern(chunk, BP_CHUNK, 6);
    struct ud6 u = {.b = &b, .chunk = chunk};
    rs_test_run_on_loop(loop, ud6_write_all, &u);
    /* Whatever the OS took, the rest stays queued while the peer reads
     * nothing: several loop iterations later the size is still the bytes
     * whose completion has not run. */
    sk_loop_round_trip(loop);
    sk_loop_round_trip(loop);
    rs_test_run_on_loop(loop, ud6_read_size, &u);
    rs_test_counter_lock(&b.counter);
    size_t pending = u.issued - u.completed;
    rs_test_counter_unlock(&b.counter);
    assert_true(u.seen > 0);
    assert_true(u.seen >= pending); /* completions may only have run since */

    rs_test_run_on_loop(loop, ud6_peer_reads, &b);
    BP_WAIT(&b, u.completions == UD6_WRITES || b.error, "every write completion");
    assert_int_equal(b.error, 0);
    assert_false(u.mismatch);
    rs_test_run_on_loop(loop, ud6_read_size, &u);
    assert_int_equal(u.seen, 0);
    bp_stop(&b);
    free(chunk);
}

/* ---- HO6 ---- */

#define HO6_TOTAL (50u << 20)
#define HO6_NEVER_READ_TOTAL (24u << 20)

/*
 * 50 MB through the echo, then the client's half-close: every byte comes
 * back, in order, then the end of the stream. The client queues its writes
 * without waiting for any echo (no request/response lock step) and shuts
 * down its write side once they completed; it reads the echo as it comes,
 * since a server with a bounded queue (and TCP) cannot take 50 MB from a
 * client that reads nothing. The half-close reaches the server with input
 * unread and echoes whose completions have not run; over loopback the
 * kernel's buffers (grown by the fast reader) usually hold the echo, so an
 * echo that closes as soon as its peer finishes is caught reliably only by
 * the slow-reader check of scripts/torture (a client of an 8 MB echo that
 * reads 1 KiB per 10 ms while it sends).
 */
static void test_ho6_echo_half_close_every_byte_then_eof(void **state)
{
    rs_event_loop *loop = *state;
    unsigned char *out = malloc(HO6_TOTAL);
    assert_non_null(out);
    sk_fill_pattern(out, HO6_TOTAL, 0);
    struct bp b;
    bp_start(&b, loop, true, true, out, HO6_TOTAL);
    BP_WAIT(&b, b.eof || b.error || b.in_corrupt, "the echo's end of stream");
    assert_int_equal(b.error, 0);
    assert_false(b.in_corrupt);
    assert_true(b.client_shut);
    assert_int_equal(b.in_off, HO6_TOTAL);
    BP_WAIT(&b, b.server_closed, "the server's close");
    assert_true(b.server_max_queued < BP_ECHO_MAX + BP_READ_SIZE);
    bp_stop(&b);
    free(out);
}

/*
 * A client that sends and never reads: the server stops reading it once
 * BP_ECHO_MAX bytes wait to be echoed, and its queue never goes past the
 * bound (plus the one read that crossed it). When the client finally reads,
 * the server resumes and everything is echoed.
 */
static void test_ho6_echo_never_reading_client_bounded(void **state)
{
    rs_event_loop *loop = *state;
    unsigned char *out = malloc(HO6_NEVER_READ_TOTAL);
    assert_non_null(out);
    sk_fill_pattern(out, HO6_NEVER_READ_TOTAL, 0);
    struct bp b;
    bp_start(&b, loop, true, false, out, HO6_NEVER_READ_TOTAL);
    BP_WAIT(&b, b.server_pauses > 0 || b.client_shut || b.error, "the server pausing the client");
    assert_int_equal(b.error, 0);
    assert_true(b.server_pauses > 0); /* the loopback buffers could not take it all */
    rs_test_counter_lock(&b.counter);
    size_t max_while_unread = b.server_max_queued;
    rs_test_counter_unlock(&b.counter);
    assert_true(max_while_unread >= BP_ECHO_MAX);
    assert_true(max_while_unread < BP_ECHO_MAX + BP_READ_SIZE);

    rs_test_run_on_loop(loop, bp_client_start_reading, &b);
    BP_WAIT(&b, b.eof || b.error || b.in_corrupt, "the echo's end of stream");
    assert_int_equal(b.error, 0);
    assert_false(b.in_corrupt);
    assert_int_equal(b.in_off, HO6_NEVER_READ_TOTAL);
    assert_true(b.server_max_queued < BP_ECHO_MAX + BP_READ_SIZE);
    bp_stop(&b);
    free(out);
}

/* ---- HO7 ---- */

#define HO7_BOUND (256u << 10)
#define HO7_CHUNK (16u << 10)
#define HO7_READS 150
#define HO7_READ 1024
#define HO7_PERIOD_NS 10000000u

struct ho7 {
    struct bp *b;
    size_t written;   /* stream offset of the next write */
    size_t max_queue; /* the writer's largest write queue size */
    long throttled;   /* times the writer stopped at the bound */
    long resumed;     /* times a completion started writing again */
    bool stopped;     /* at the bound, waiting for completions */
    size_t read;      /* bytes the slow reader got */
    long reads;       /* successful paced reads */
    bool corrupt;
    bool fast; /* the reader drains instead of pacing */
    bool quit; /* the test is ending: no more writes or reads */
    rs_task tick;
};

struct ho7_chunk {
    struct ho7 *h;
    unsigned char bytes[HO7_CHUNK];
};

static void ho7_write_more(struct ho7 *h);

static void ho7_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct ho7_chunk *k = user_data;
    struct ho7 *h = k->h;
    free(k);
    if (!socket || h->quit) {
        return;
    }
    if (error_code != 0) {
        bp_fail(h->b, error_code);
        return;
    }
    if (h->stopped && bp_queued(socket) < HO7_BOUND) {
        h->stopped = false;
        rs_test_counter_lock(&h->b->counter);
        h->resumed++;
        bp_signal(h->b);
        ho7_write_more(h);
    }
}

/* The writer respects the write queue size: it writes while the queue is
 * under HO7_BOUND and resumes from a completion. */
static void ho7_write_more(struct ho7 *h)
{
    rs_socket *s = h->b->server_socket;
    for (;;) {
        size_t queued = bp_queued(s);
        rs_test_counter_lock(&h->b->counter);
        if (queued > h->max_queue) {
            h->max_queue = queued;
        }
        if (queued >= HO7_BOUND) {
            h->stopped = true;
            h->throttled++;
            bp_signal(h->b);
            return;
        }
        rs_test_counter_unlock(&h->b->counter);
        struct ho7_chunk *k = malloc(sizeof *k);
        assert_non_null(k);
        k->h = h;
        sk_fill_pattern(k->bytes, HO7_CHUNK, h->written);
        assert_int_equal(rs_socket_write(s, k->bytes, HO7_CHUNK, ho7_written, k), 0);
        h->written += HO7_CHUNK;
    }
}

static void ho7_start_writer(void *arg)
{
    ho7_write_more(arg);
}

/* One paced read of 1 KiB (the client, from a timer task). */
static void ho7_tick(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct ho7 *h = arg;
    if (status != RS_TASK_STATUS_RUN || h->quit) {
        return;
    }
    unsigned char buf[HO7_READ];
    size_t n = 0;
    int err = 0;
    do {
        if (rs_socket_read(h->b->client, buf, sizeof buf, &n) != 0) {
            err = rs_last_error();
            break;
        }
        rs_test_counter_lock(&h->b->counter);
        if (!sk_check_pattern(buf, n, h->read)) {
            h->corrupt = true;
        }
        h->read += n;
        h->reads++;
        bp_signal(h->b);
    } while (h->fast);
    if (err && err != RS_ERROR_WOULD_BLOCK) {
        bp_fail(h->b, err);
        return;
    }
    rs_event_loop_schedule_at(h->b->loop, &h->tick,
                              rs_event_loop_now(h->b->loop) + (h->fast ? 0 : HO7_PERIOD_NS));
}

static void ho7_start_reader(void *arg)
{
    struct ho7 *h = arg;
    rs_task_init(&h->tick, ho7_tick, h, "paced read");
    rs_event_loop_schedule_now(h->b->loop, &h->tick);
}

static void ho7_go_fast(void *arg)
{
    struct ho7 *h = arg;
    h->fast = true;
}

static void ho7_quit(void *arg)
{
    struct ho7 *h = arg;
    h->quit = true;
    rs_event_loop_cancel_task(h->b->loop, &h->tick);
}

/*
 * The writer's queue never passes its bound (plus one chunk) while the peer
 * reads 1 KiB per 10 ms, and the peer gets an intact stream. Then the peer
 * reads at full speed and the writer, stopped at the bound, is resumed by
 * its completions: the queue size went down as the peer read.
 */
static void test_ho7_slow_reader_bounded_writer(void **state)
{
    rs_event_loop *loop = *state;
    struct bp b;
    bp_start(&b, loop, false, false, NULL, 0);
    struct ho7 h;
    memset(&h, 0, sizeof h);
    h.b = &b;
    rs_test_run_on_loop(loop, ho7_start_writer, &h);
    rs_test_run_on_loop(loop, ho7_start_reader, &h);
    BP_WAIT(&b, h.reads >= HO7_READS || b.error || h.corrupt, "the paced reads");
    BP_WAIT(&b, h.throttled > 0 || b.error, "the writer stopping at its bound");
    assert_int_equal(b.error, 0);
    assert_false(h.corrupt);
    rs_test_counter_lock(&b.counter);
    size_t max_slow = h.max_queue;
    rs_test_counter_unlock(&b.counter);
    assert_true(max_slow >= HO7_BOUND);
    assert_true(max_slow < HO7_BOUND + HO7_CHUNK);

    rs_test_run_on_loop(loop, ho7_go_fast, &h);
    BP_WAIT(&b, h.resumed > 2 || b.error || h.corrupt, "the writer resuming");
    assert_int_equal(b.error, 0);
    assert_false(h.corrupt);
    rs_test_run_on_loop(loop, ho7_quit, &h);
    assert_true(h.max_queue < HO7_BOUND + HO7_CHUNK);
    bp_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ud6_write_queue_size, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ho6_echo_half_close_every_byte_then_eof,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ho6_echo_never_reading_client_bounded,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ho7_slow_reader_bounded_writer, rs_test_setup_loop,
                                        rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("backpressure", tests);
}
