/*
 * Defects outside clients found, pinned on both backends:
 *   HO3  writes queued to a peer that does not read, then close (or
 *        shutdown): every completion once, in submission order;
 *   HO4  a read loop reports RS_ERROR_WOULD_BLOCK only once every byte that
 *        had arrived was returned;
 *   HO5  both ends of a pipe cleaned up with writes pending and the loop
 *        destroyed at once: every callback runs, nothing leaks.
 * Loopback only, port 0 read back, bounded waits.
 */
#include "socket_fixture.h"

#include "../common/atomics.h"
#include "../common/socket_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if RS_TEST_IOCP
#include "../backends/iocp/iocp_socket.h"
#else
#include "../backends/libevent/le_socket.h"
#ifndef _WIN32
#include <sys/ioctl.h>
#endif
#endif

/* ---- a connected pair whose accepted end does not read ---- */

struct pair {
    struct rs_test_counter counter;
    rs_event_loop *loop;
    rs_socket_domain domain;
    rs_socket_endpoint endpoint;
    rs_socket *listener;
    rs_socket *client;
    rs_socket *accepted;
    bool connected;
    int connect_result;
    long destroyed;
};

static void pair_on_accept(rs_socket *listener, int error_code, rs_socket *s, void *user_data)
{
    (void)listener;
    struct pair *p = user_data;
    assert_int_equal(error_code, 0);
    assert_int_equal(rs_socket_assign_to_event_loop(s, p->loop), 0);
    rs_test_counter_lock(&p->counter);
    p->accepted = s;
    rs_test_counter_unlock_add(&p->counter, 1);
}

static void pair_on_connect(rs_socket *s, int error_code, void *user_data)
{
    (void)s;
    struct pair *p = user_data;
    rs_test_counter_lock(&p->counter);
    p->connected = true;
    p->connect_result = error_code;
    rs_test_counter_unlock_add(&p->counter, 1);
}

static void pair_on_destroy(void *user_data)
{
    struct pair *p = user_data;
    rs_test_counter_lock(&p->counter);
    p->destroyed++;
    rs_test_counter_unlock_add(&p->counter, 1);
}

static void pair_open(struct pair *p, rs_event_loop *loop, rs_socket_domain domain)
{
    memset(p, 0, sizeof *p);
    rs_test_counter_init(&p->counter);
    p->loop = loop;
    p->domain = domain;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, domain);
    p->listener = rs_socket_new(&options);
    assert_non_null(p->listener);
    assert_int_equal(rs_socket_set_destroy_callback(p->listener, pair_on_destroy, p), 0);
    p->endpoint = sk_loopback(domain);
    assert_int_equal(rs_socket_bind(p->listener, &p->endpoint), 0);
    assert_int_equal(rs_socket_get_bound_address(p->listener, &p->endpoint), 0);
    assert_int_equal(rs_socket_listen(p->listener, 4), 0);
    assert_int_equal(rs_socket_start_accept(p->listener, loop, pair_on_accept, p), 0);
    p->client = rs_socket_new(&options);
    assert_non_null(p->client);
    assert_int_equal(rs_socket_set_destroy_callback(p->client, pair_on_destroy, p), 0);
    assert_int_equal(rs_socket_connect(p->client, &p->endpoint, loop, pair_on_connect, p), 0);
    SK_WAIT(p, p->connected && p->accepted, "the connection and its accept");
    assert_int_equal(p->connect_result, 0);
    assert_int_equal(rs_socket_set_destroy_callback(p->accepted, pair_on_destroy, p), 0);
}

static void pair_close(struct pair *p)
{
    assert_int_equal(rs_socket_destroy(p->client), 0);
    assert_int_equal(rs_socket_destroy(p->accepted), 0);
    assert_int_equal(rs_socket_destroy(p->listener), 0);
    SK_WAIT(p, p->destroyed == 3, "the three destroy callbacks");
    sk_remove_path(p->domain, &p->endpoint);
    rs_test_counter_clean_up(&p->counter);
}

/* ---- HO3 ---- */

enum { HO3_WRITES = 8192, HO3_SIZE = 4096 };

enum ho3_end { HO3_CLOSE, HO3_SHUTDOWN };

struct ho3 {
    struct rs_test_counter counter;
    rs_socket *socket;
    enum ho3_end end;
    long issued; /* loop thread */
    int end_result;
    long done;
    long calls[HO3_WRITES];
    long order[HO3_WRITES]; /* the write each completion was for, in completion order */
    int errors[HO3_WRITES];
    size_t bytes[HO3_WRITES];
};

static unsigned char ho3_data[HO3_SIZE];

struct ho3_write {
    struct ho3 *t;
    long index;
};

static struct ho3_write ho3_writes[HO3_WRITES];

static void ho3_done(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    struct ho3_write *w = user_data;
    struct ho3 *t = w->t;
    rs_test_counter_lock(&t->counter);
    t->calls[w->index]++;
    if (t->done < HO3_WRITES) {
        t->order[t->done] = w->index;
    }
    t->errors[w->index] = error_code;
    t->bytes[w->index] = bytes;
    t->done++;
    rs_test_counter_unlock_add(&t->counter, 1);
}

/* Writes are issued in batches, each a task of its own, so that no single
 * task runs long on a slow machine (each write is a system call, and under
 * Wine a round trip to the wineserver); the loop may dispatch completions
 * between batches, which changes nothing to the order owed. */
enum { HO3_BATCH = 256 };

static void ho3_queue_batch(void *arg)
{
    struct ho3 *t = arg;
    for (long n = 0; n < HO3_BATCH && t->issued < HO3_WRITES; n++) {
        long i = t->issued++;
        ho3_writes[i].t = t;
        ho3_writes[i].index = i;
        assert_int_equal(
            rs_socket_write(t->socket, ho3_data, sizeof ho3_data, ho3_done, &ho3_writes[i]), 0);
    }
}

static void ho3_end(void *arg)
{
    struct ho3 *t = arg;
    t->end_result = t->end == HO3_CLOSE ? rs_socket_close(t->socket)
                                        : rs_socket_shutdown(t->socket, RS_SOCKET_DIRECTION_WRITE);
}

static void ho3_check(rs_event_loop *loop, rs_socket_domain domain, enum ho3_end end)
{
    struct pair p;
    pair_open(&p, loop, domain);
    struct ho3 *t = calloc(1, sizeof *t);
    assert_non_null(t);
    rs_test_counter_init(&t->counter);
    t->socket = p.client;
    t->end = end;
    t->end_result = -2;
    while (t->issued < HO3_WRITES) {
        rs_test_run_on_loop(loop, ho3_queue_batch, t);
    }
    rs_test_run_on_loop(loop, ho3_end, t);
    assert_int_equal(t->end_result, 0);
    /* Bounded while completions keep coming: thousands of cancellations
     * take a while under Wine on a loaded machine. */
    rs_test_counter_lock(&t->counter);
    long seen = t->done;
    rs_test_counter_unlock(&t->counter);
    while (seen < HO3_WRITES) {
        SK_WAIT(t, t->done != seen, "the next write completion");
        rs_test_counter_lock(&t->counter);
        seen = t->done;
        rs_test_counter_unlock(&t->counter);
    }
    sk_loop_round_trip(loop);

    /* Each write completed once, in the order it was issued: the writes
     * the system took, then the ones the close (or shutdown) ended. Checked
     * after everything is released, so that a failure leaves nothing
     * behind. */
    char failure[160] = "";
    long completed = 0;
    for (long i = 0; i < HO3_WRITES && !failure[0]; i++) {
        if (t->calls[i] != 1) {
            snprintf(failure, sizeof failure, "write %ld: %ld completions", i, t->calls[i]);
        } else if (t->order[i] != i) {
            snprintf(failure, sizeof failure, "completion %ld was for write %ld", i, t->order[i]);
        } else if (t->errors[i] == 0) {
            if (i != completed) {
                snprintf(failure, sizeof failure, "write %ld completed after write %ld failed", i,
                         completed);
            } else if (t->bytes[i] != HO3_SIZE) {
                snprintf(failure, sizeof failure, "write %ld completed with %lu bytes", i,
                         (unsigned long)t->bytes[i]);
            }
            completed++;
        } else if (t->errors[i] != RS_ERROR_SOCKET_CLOSED) {
            snprintf(failure, sizeof failure, "write %ld: %s", i, rs_error_name(t->errors[i]));
        }
    }
    long done = t->done;
    pair_close(&p);
    rs_test_counter_clean_up(&t->counter);
    free(t);
    if (failure[0]) {
        fail_msg("%s", failure);
    }
    assert_int_equal(done, HO3_WRITES);
    /* The peer does not read: the kernel cannot have taken everything. */
    assert_true(completed < HO3_WRITES);
}

static void test_ho3_queued_writes_then_close_complete_in_order(void **state)
{
    ho3_check(*state, RS_SOCKET_IPV4, HO3_CLOSE);
}

static void test_ho3_queued_writes_then_shutdown_complete_in_order(void **state)
{
    ho3_check(*state, RS_SOCKET_IPV4, HO3_SHUTDOWN);
}

static void test_ho3_local_queued_writes_then_close_complete_in_order(void **state)
{
    ho3_check(*state, RS_SOCKET_LOCAL, HO3_CLOSE);
}

/* ---- HO4 ---- */

/* Bytes waiting in the accepted socket's kernel buffer (white box: the
 * backend's OS handle). */
static size_t kernel_bytes(rs_socket *s)
{
#if RS_TEST_IOCP
    u_long n = 0;
    assert_int_equal(ioctlsocket(((struct rs__iocp_socket *)s->impl)->sock, FIONREAD, &n), 0);
#elif defined(_WIN32)
    u_long n = 0;
    SOCKET sock = (SOCKET)(uintptr_t)(unsigned)((struct le_socket *)s->impl)->fd;
    assert_int_equal(ioctlsocket(sock, FIONREAD, &n), 0);
#else
    int n = 0;
    assert_int_equal(ioctl(((struct le_socket *)s->impl)->fd, FIONREAD, &n), 0);
#endif
    return (size_t)n;
}

struct ho4 {
    struct rs_test_counter counter;
    struct pair *p;
    long readable_calls;
    long written;
    size_t read_size;
    unsigned char got[64];
    size_t len;
    int last_error;
};

/* The readable callback reads nothing: the bytes stay unread. */
static void ho4_on_readable(rs_socket *s, int error_code, void *user_data)
{
    (void)s;
    struct ho4 *t = user_data;
    assert_int_equal(error_code, 0);
    rs_test_counter_lock(&t->counter);
    t->readable_calls++;
    rs_test_counter_unlock_add(&t->counter, 1);
}

static void ho4_subscribe(void *arg)
{
    struct ho4 *t = arg;
    assert_int_equal(rs_socket_subscribe_to_readable_events(t->p->accepted, ho4_on_readable, t), 0);
}

static void ho4_written(rs_socket *s, int error_code, size_t bytes, void *user_data)
{
    (void)s;
    (void)bytes;
    struct ho4 *t = user_data;
    assert_int_equal(error_code, 0);
    rs_test_counter_lock(&t->counter);
    t->written++;
    rs_test_counter_unlock_add(&t->counter, 1);
}

static const char *ho4_text = "ABCDEFGH";

static void ho4_write_first(void *arg)
{
    struct ho4 *t = arg;
    assert_int_equal(rs_socket_write(t->p->client, ho4_text, 4, ho4_written, t), 0);
}

static void ho4_write_second(void *arg)
{
    struct ho4 *t = arg;
    assert_int_equal(rs_socket_write(t->p->client, ho4_text + 4, 4, ho4_written, t), 0);
}

/* A read loop from a task: until the first error. */
static void ho4_read_loop(void *arg)
{
    struct ho4 *t = arg;
    for (;;) {
        size_t n = 0;
        size_t room = sizeof t->got - t->len;
        if (rs_socket_read(t->p->accepted, t->got + t->len,
                           room < t->read_size ? room : t->read_size, &n) != 0) {
            t->last_error = rs_last_error();
            return;
        }
        t->len += n;
    }
}

/* kernel_after: what the accepted socket's kernel buffer holds once the
 * second write arrived (the backend may hold the first 4 bytes itself). */
static void ho4_check(rs_event_loop *loop, size_t read_size, size_t kernel_after)
{
    struct pair p;
    pair_open(&p, loop, RS_SOCKET_IPV4);
    struct ho4 t;
    memset(&t, 0, sizeof t);
    rs_test_counter_init(&t.counter);
    t.p = &p;
    t.read_size = read_size;
    rs_test_run_on_loop(loop, ho4_subscribe, &t);
    rs_test_run_on_loop(loop, ho4_write_first, &t);
    SK_WAIT(&t, t.readable_calls == 1 && t.written == 1, "the first bytes reported readable");
    rs_test_run_on_loop(loop, ho4_write_second, &t);
    SK_WAIT(&t, t.written == 2, "the second write's completion");
    /* The second bytes have arrived once the receiving kernel holds them. */
    uint64_t deadline = rs__clock_now_ns() + RS_TEST_TIMEOUT_MS * 1000000ull;
    while (kernel_bytes(p.accepted) < kernel_after) {
        if (rs__clock_now_ns() >= deadline) {
            fail_msg("%s", "the second bytes never reached the receiving socket");
        }
        sk_loop_round_trip(loop);
    }
    rs_test_run_on_loop(loop, ho4_read_loop, &t);
    long readable_calls = t.readable_calls;
    pair_close(&p);
    rs_test_counter_clean_up(&t.counter);
    assert_string_equal(rs_error_name(t.last_error), rs_error_name(RS_ERROR_WOULD_BLOCK));
    if (t.len != 8) {
        fail_msg("read %lu bytes (in reads of %lu) before WOULD_BLOCK; 8 had arrived",
                 (unsigned long)t.len, (unsigned long)read_size);
    }
    assert_memory_equal(t.got, ho4_text, 8);
    assert_int_equal(readable_calls, 1);
}

static void ho4_all_sizes(rs_event_loop *loop, size_t kernel_after)
{
    ho4_check(loop, 64, kernel_after);
    ho4_check(loop, 4, kernel_after);
    ho4_check(loop, 3, kernel_after);
}

static void test_ho4_read_loop_returns_what_arrived_before_would_block(void **state)
{
    rs_event_loop *loop = *state;
#if RS_TEST_IOCP
    /* Each of the three read modes (W5), chosen when the socket is
     * attached: a large buffered read, a small one, zero-byte readiness.
     * The buffered ones hold the first 4 bytes themselves. */
    ho4_all_sizes(loop, 4);
    rs__iocp_test_set_read_places(0, RS__IOCP_SMALL_BUFFERED_STREAMS);
    ho4_all_sizes(loop, 4);
    rs__iocp_test_set_read_places(0, 0);
    ho4_all_sizes(loop, 8);
    rs__iocp_test_set_read_places(RS__IOCP_BUFFERED_STREAMS, RS__IOCP_SMALL_BUFFERED_STREAMS);
#else
    ho4_all_sizes(loop, 8);
#endif
}

/* ---- HO5 ---- */

enum { HO5_WRITES = 100, HO5_SIZE = 64 * 1024 };

struct ho5 {
    struct rs_test_counter counter;
    rs_pipe_read_end *read_end;
    rs_pipe_write_end *write_end;
    long calls[HO5_WRITES];
    long writes_done;
    long clean_ups;
};

struct ho5_write {
    struct ho5 *t;
    long index;
};

static unsigned char ho5_data[HO5_SIZE];
static struct ho5_write ho5_writes[HO5_WRITES];

static void ho5_written(rs_pipe_write_end *w, int error_code, size_t bytes, void *user_data)
{
    (void)w;
    (void)error_code;
    (void)bytes;
    struct ho5_write *wr = user_data;
    rs_test_counter_lock(&wr->t->counter);
    wr->t->calls[wr->index]++;
    wr->t->writes_done++;
    rs_test_counter_unlock(&wr->t->counter);
}

static void ho5_cleaned_up(void *user_data)
{
    struct ho5 *t = user_data;
    rs_test_counter_lock(&t->counter);
    t->clean_ups++;
    rs_test_counter_unlock(&t->counter);
}

/* On the write end's loop: the writes, both clean-ups, and the loop asked
 * to stop, all in one task. The loop's last iteration then dequeues at most
 * one batch of completions before it exits: the rest must be waited for by
 * its destruction. */
static void ho5_write_clean_up_stop(void *arg)
{
    struct ho5 *t = arg;
    for (long i = 0; i < HO5_WRITES; i++) {
        ho5_writes[i].t = t;
        ho5_writes[i].index = i;
        assert_int_equal(
            rs_pipe_write(t->write_end, ho5_data, sizeof ho5_data, ho5_written, &ho5_writes[i]), 0);
    }
    assert_int_equal(rs_pipe_clean_up_read_end(t->read_end, ho5_cleaned_up, t), 0);
    assert_int_equal(rs_pipe_clean_up_write_end(t->write_end, ho5_cleaned_up, t), 0);
    assert_int_equal(rs_event_loop_stop(rs_pipe_write_end_loop(t->write_end)), 0);
}

static void ho5_check(bool two_loops)
{
    long baseline = (long)rs_live_allocations();
    rs_event_loop *read_loop = rs_event_loop_new(NULL);
    assert_non_null(read_loop);
    assert_int_equal(rs_event_loop_run(read_loop), 0);
    rs_event_loop *write_loop = read_loop;
    if (two_loops) {
        write_loop = rs_event_loop_new(NULL);
        assert_non_null(write_loop);
        assert_int_equal(rs_event_loop_run(write_loop), 0);
    }
    struct ho5 t;
    memset(&t, 0, sizeof t);
    rs_test_counter_init(&t.counter);
    assert_int_equal(rs_pipe_new(read_loop, &t.read_end, write_loop, &t.write_end), 0);
    /* 6.4 MB to a read end that does not read: far more than the pipe
     * holds, so most writes are pending when the ends are cleaned up. */
    rs_test_run_on_loop(write_loop, ho5_write_clean_up_stop, &t);
    assert_int_equal(rs_event_loop_destroy(write_loop), 0);
    if (two_loops) {
        assert_int_equal(rs_event_loop_destroy(read_loop), 0);
    }
    /* The loops are gone: whatever was owed ran during their destruction. */
    for (long i = 0; i < HO5_WRITES; i++) {
        if (t.calls[i] != 1) {
            fail_msg("write %ld: %ld callbacks (%ld of %d ran)", i, t.calls[i], t.writes_done,
                     HO5_WRITES);
        }
    }
    assert_int_equal(t.clean_ups, 2);
    assert_int_equal((long)rs_live_allocations(), baseline);
    rs_test_counter_clean_up(&t.counter);
}

static void test_ho5_pipe_cleaned_up_then_loop_destroyed(void **state)
{
    (void)state;
    ho5_check(false);
}

static void test_ho5_pipe_cleaned_up_then_loops_destroyed(void **state)
{
    (void)state;
    ho5_check(true);
}

#define LOOP_TEST(fn) cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)
#define LIB_TEST(fn)                                                                               \
    cmocka_unit_test_setup_teardown(fn, rs_test_setup_library, rs_test_teardown_library)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LOOP_TEST(test_ho3_queued_writes_then_close_complete_in_order),
        LOOP_TEST(test_ho3_queued_writes_then_shutdown_complete_in_order),
        LOOP_TEST(test_ho3_local_queued_writes_then_close_complete_in_order),
        LOOP_TEST(test_ho4_read_loop_returns_what_arrived_before_would_block),
        LIB_TEST(test_ho5_pipe_cleaned_up_then_loop_destroyed),
        LIB_TEST(test_ho5_pipe_cleaned_up_then_loops_destroyed),
    };
    return RS_TEST_MAIN("ordering", tests);
}
