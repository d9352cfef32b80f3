/*
 * Allocation-failure injection: each scenario is repeated with allocation
 * 1, 2, 3, ... failing, until a run completes with no failure injected. Every
 * run must fail cleanly (-1 and RS_ERROR_OUT_OF_MEMORY), leak nothing (the
 * library's own block counter, so the check works under Wine too) and call
 * every callback it owes exactly once. The scenarios: loop, group and
 * resolver life cycles, a pipe round trip on one and on two loops, and a
 * loopback TCP connect / accept / echo / close.
 */
#include "rs_test.h"

#include "../common/atomics.h"

#include <stdlib.h>
#include <string.h>

static volatile long acquisitions;
static volatile long fail_at; /* 0: never */
static volatile long injected;

static void *failing_acquire(rs_allocator *a, size_t size)
{
    (void)a;
    long n = rs__atomic_add(&acquisitions, 1);
    if (n == rs__atomic_load(&fail_at)) {
        rs__atomic_add(&injected, 1);
        return NULL;
    }
    return malloc(size);
}

static void plain_release(rs_allocator *a, void *p)
{
    (void)a;
    free(p);
}

static rs_allocator failing = {failing_acquire, plain_release, NULL};

typedef bool(scenario_fn)(void);

/* Runs scenario with allocation n failing, for n = 1, 2, ... until a run
 * injects nothing. Returns the number of failing runs. */
static int run_with_failures(scenario_fn *scenario)
{
    for (long n = 1;; n++) {
        acquisitions = 0;
        injected = 0;
        fail_at = n;
        assert_int_equal(rs_set_allocator(&failing), 0);
        assert_int_equal(rs_library_init(), 0);
        bool completed = scenario();
        assert_int_equal(rs_library_cleanup(), 0);
        if (rs_live_allocations() != 0) {
            fail_msg("allocation %ld failing leaked %lld block(s)", n,
                     (long long)rs_live_allocations());
        }
        assert_int_equal(rs_set_allocator(NULL), 0);
        if (injected == 0) {
            assert_true(completed);
            return (int)(n - 1);
        }
        assert_true(n < 10000);
    }
}

/* A failed call must report exactly RS_ERROR_OUT_OF_MEMORY. */
static bool failed_cleanly(int rc)
{
    if (rc == 0) {
        return false;
    }
    assert_string_equal(rs_error_name(rs_last_error()), "RS_ERROR_OUT_OF_MEMORY");
    return true;
}

struct counted {
    rs_task task;
    volatile long calls;
    struct rs_test_latch latch;
};

static void counted_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    struct counted *c = arg;
    rs__atomic_add(&c->calls, 1);
    rs_test_latch_signal(&c->latch);
}

/* Loop life cycle: create, run, a task now and a task later (cancelled by
 * destroy), destroy. */
static bool loop_scenario(void)
{
    rs_event_loop *loop = rs_event_loop_new(NULL);
    if (!loop) {
        assert_string_equal(rs_error_name(rs_last_error()), "RS_ERROR_OUT_OF_MEMORY");
        return false;
    }
    struct counted now_task = {0}, later_task = {0};
    rs_test_latch_init(&now_task.latch, 1);
    rs_test_latch_init(&later_task.latch, 1);
    rs_task_init(&now_task.task, counted_task, &now_task, "now");
    rs_task_init(&later_task.task, counted_task, &later_task, "later");
    assert_int_equal(rs_event_loop_schedule_now(loop, &now_task.task), 0);
    assert_int_equal(rs_event_loop_schedule_at(loop, &later_task.task,
                                               rs_event_loop_now(loop) + 3600000000000ull),
                     0);
    bool ran = !failed_cleanly(rs_event_loop_run(loop));
    if (ran) {
        rs_test_latch_await(&now_task.latch, "a task on a loop under allocation failure");
    }
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    /* Whether the loop ran or not, each task was called exactly once. */
    assert_int_equal(now_task.calls, 1);
    assert_int_equal(later_task.calls, 1);
    rs_test_latch_clean_up(&now_task.latch);
    rs_test_latch_clean_up(&later_task.latch);
    return ran;
}

struct group_shutdown {
    volatile long calls;
    struct rs_test_latch latch;
};

static void on_group_shutdown(void *user_data)
{
    struct group_shutdown *g = user_data;
    rs__atomic_add(&g->calls, 1);
    rs_test_latch_signal(&g->latch);
}

static bool group_scenario(void)
{
    struct group_shutdown g = {0};
    rs_test_latch_init(&g.latch, 1);
    rs_event_loop_group_options options = {
        .loop_count = 3, .on_shutdown = on_group_shutdown, .shutdown_user_data = &g};
    rs_event_loop_group *group = rs_event_loop_group_new(&options);
    if (!group) {
        assert_string_equal(rs_error_name(rs_last_error()), "RS_ERROR_OUT_OF_MEMORY");
        assert_int_equal(g.calls, 0); /* a group never created never shuts down */
        rs_test_latch_clean_up(&g.latch);
        return false;
    }
    assert_non_null(rs_event_loop_group_get_next(group));
    assert_int_equal(rs_event_loop_group_release(group), 0);
    rs_test_latch_await(&g.latch, "the group's shutdown");
    assert_int_equal(g.calls, 1);
    rs_test_latch_clean_up(&g.latch);
    return true;
}

struct lookup {
    volatile long calls;
    int error;
    struct rs_test_latch latch;
};

static void on_lookup(const char *host, int error_code, const rs_host_address *addresses,
                      size_t count, void *user_data)
{
    (void)host;
    (void)addresses;
    (void)count;
    struct lookup *l = user_data;
    l->error = error_code;
    rs__atomic_add(&l->calls, 1);
    rs_test_latch_signal(&l->latch);
}

static bool resolve_scenario(void)
{
    rs_event_loop *loop = rs_event_loop_new(NULL);
    if (!loop) {
        assert_string_equal(rs_error_name(rs_last_error()), "RS_ERROR_OUT_OF_MEMORY");
        return false;
    }
    bool completed = false;
    struct lookup l = {0};
    rs_test_latch_init(&l.latch, 1);
    if (!failed_cleanly(rs_event_loop_run(loop))) {
        if (!failed_cleanly(rs_resolve(loop, "127.0.0.1", on_lookup, &l))) {
            rs_test_latch_await(&l.latch, "a lookup under allocation failure");
            assert_int_equal(l.error, 0);
            completed = true;
        } else {
            assert_int_equal(l.calls, 0); /* refused: no callback */
        }
    }
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    assert_int_equal(l.calls, completed ? 1 : 0);
    rs_test_latch_clean_up(&l.latch);
    return completed;
}

/* ---- I/O scenarios ----
 * Callbacks record under the lock of io->counter, which counts the
 * records, and the test thread waits on it, bounded. Every wait allows for
 * the run failing cleanly part-way. */

struct io_state {
    struct rs_test_counter counter;
    rs_event_loop *loop;
    rs_event_loop *other_loop;

    /* pipe */
    rs_pipe_read_end *r;
    rs_pipe_write_end *w;
    long pipe_writes_issued;
    long pipe_write_calls;
    int pipe_write_error;
    long clean_ups;

    /* sockets */
    rs_socket *listener;
    rs_socket *client;
    rs_socket *accepted[4];
    int accepted_count;
    long sockets_created;
    long destroy_calls;
    bool connect_issued;
    long connect_calls;
    int connect_result;
    long accept_errors;
    long client_writes_issued;
    long client_write_calls;
    int client_write_error;
    long echo_writes_issued;
    long echo_write_calls;

    /* What the reader (pipe read end or TCP client) received. */
    unsigned char got[64];
    size_t got_len;
    int read_error;
    bool subscribed;
};

static const char io_message[] = "allocation failure round trip";

#define IO_WAIT(io, expr, what)                                                                    \
    do {                                                                                           \
        uint64_t io_deadline_ = rs__clock_now_ns() + RS_TEST_TIMEOUT_MS * 1000000ull;              \
        rs_test_counter_lock(&(io)->counter);                                                      \
        while (!(expr)) {                                                                          \
            uint64_t io_now_ = rs__clock_now_ns();                                                 \
            if (io_now_ >= io_deadline_) {                                                         \
                rs_test_counter_unlock(&(io)->counter);                                            \
                fail_msg("allocation %ld failing: timed out waiting for %s", fail_at, (what));     \
            }                                                                                      \
            (void)rs_test_counter_wait_change(&(io)->counter, io_deadline_);                       \
        }                                                                                          \
        rs_test_counter_unlock(&(io)->counter);                                                    \
    } while (0)

static void io_init(struct io_state *io)
{
    memset(io, 0, sizeof *io);
    rs_test_counter_init(&io->counter);
}

static void io_clean_up(struct io_state *io)
{
    rs_test_counter_clean_up(&io->counter);
}

/* Updates a counter under the lock and wakes the test thread. */
static void io_count(struct io_state *io, long *counter)
{
    rs_test_counter_lock(&io->counter);
    (*counter)++;
    rs_test_counter_unlock_add(&io->counter, 1);
}

/* Appends what was read, or records why reading ended. */
static void io_received(struct io_state *io, const void *bytes, size_t n, int error)
{
    rs_test_counter_lock(&io->counter);
    if (error) {
        io->read_error = error;
    } else {
        assert_true(io->got_len + n <= sizeof io->got);
        memcpy(io->got + io->got_len, bytes, n);
        io->got_len += n;
    }
    rs_test_counter_unlock_add(&io->counter, 1);
}

static bool io_round_trip_done(struct io_state *io)
{
    return io->got_len == sizeof io_message || io->read_error != 0;
}

/* A write the backend accepted may still need memory of its own (IOCP
 * allocates one overlapped operation per chunk): it then completes with
 * RS_ERROR_OUT_OF_MEMORY and no data ever arrives. */
static void io_check_write_error(int error_code)
{
    if (error_code) {
        assert_string_equal(rs_error_name(error_code), "RS_ERROR_OUT_OF_MEMORY");
    }
}

/* A write completed: checks and records its error, then counts it. */
static void io_write_done(struct io_state *io, int error_code, int *error_slot, long *calls)
{
    io_check_write_error(error_code);
    rs_test_counter_lock(&io->counter);
    *error_slot = error_code;
    rs_test_counter_unlock(&io->counter);
    io_count(io, calls);
}

/* A read loop ended: anything but RS_ERROR_WOULD_BLOCK ends reading. */
static void io_read_ended(struct io_state *io)
{
    if (rs_last_error() != RS_ERROR_WOULD_BLOCK) {
        io_received(io, NULL, 0, rs_last_error());
    }
}

/* A loop, created and running, or NULL after a clean failure. */
static rs_event_loop *io_loop(void)
{
    rs_event_loop *loop = rs_event_loop_new(NULL);
    if (!loop) {
        assert_string_equal(rs_error_name(rs_last_error()), "RS_ERROR_OUT_OF_MEMORY");
        return NULL;
    }
    if (failed_cleanly(rs_event_loop_run(loop))) {
        assert_int_equal(rs_event_loop_destroy(loop), 0);
        return NULL;
    }
    return loop;
}

/* -- pipe round trip -- */

static void pipe_on_readable(rs_pipe_read_end *r, int error_code, void *user_data)
{
    struct io_state *io = user_data;
    if (error_code) {
        io_received(io, NULL, 0, error_code);
        return;
    }
    unsigned char buf[sizeof io_message];
    size_t n = 0;
    while (rs_pipe_read(r, buf, sizeof buf, &n) == 0) {
        io_received(io, buf, n, 0);
    }
    io_read_ended(io);
}

static void pipe_on_written(rs_pipe_write_end *w, int error_code, size_t bytes, void *user_data)
{
    (void)w;
    (void)bytes;
    struct io_state *io = user_data;
    io_write_done(io, error_code, &io->pipe_write_error, &io->pipe_write_calls);
}

static void pipe_on_clean_up(void *user_data)
{
    struct io_state *io = user_data;
    io_count(io, &io->clean_ups);
}

static void pipe_subscribe_on_loop(void *arg)
{
    struct io_state *io = arg;
    io->subscribed =
        !failed_cleanly(rs_pipe_subscribe_to_readable_events(io->r, pipe_on_readable, io));
}

static void pipe_write_on_loop(void *arg)
{
    struct io_state *io = arg;
    if (!failed_cleanly(rs_pipe_write(io->w, io_message, sizeof io_message, pipe_on_written, io))) {
        io->pipe_writes_issued++;
    }
}

/* Open, subscribe, write, read it all, clean up both ends; the ends on one
 * loop, or on two when two_loops. */
static bool pipe_round_trip(bool two_loops)
{
    struct io_state io;
    io_init(&io);
    bool completed = false;
    io.loop = io_loop();
    io.other_loop = two_loops && io.loop ? io_loop() : io.loop;
    rs_event_loop *write_loop = io.other_loop;
    if (io.loop && write_loop && !failed_cleanly(rs_pipe_new(io.loop, &io.r, write_loop, &io.w))) {
        rs_test_run_on_loop(io.loop, pipe_subscribe_on_loop, &io);
        if (io.subscribed) {
            rs_test_run_on_loop(write_loop, pipe_write_on_loop, &io);
        }
        if (io.pipe_writes_issued == 1) {
            IO_WAIT(&io, io_round_trip_done(&io) || io.pipe_write_error != 0, "the pipe's data");
            /* The write's callback may still be running on the loop. */
            rs_test_counter_lock(&io.counter);
            int write_error = io.pipe_write_error;
            rs_test_counter_unlock(&io.counter);
            if (write_error == 0) {
                assert_int_equal(io.read_error, 0);
                assert_memory_equal(io.got, io_message, sizeof io_message);
                completed = true;
            }
        }
        assert_int_equal(rs_pipe_clean_up_read_end(io.r, pipe_on_clean_up, &io), 0);
        assert_int_equal(rs_pipe_clean_up_write_end(io.w, pipe_on_clean_up, &io), 0);
        IO_WAIT(&io, io.clean_ups == 2 && io.pipe_write_calls == io.pipe_writes_issued,
                "the pipe's clean-up and write callbacks");
    }
    if (write_loop && write_loop != io.loop) {
        assert_int_equal(rs_event_loop_destroy(write_loop), 0);
    }
    if (io.loop) {
        assert_int_equal(rs_event_loop_destroy(io.loop), 0);
    }
    /* Exactly once: no callback may arrive late, after the ends are gone. */
    assert_int_equal(io.clean_ups, io.r ? 2 : 0);
    assert_int_equal(io.pipe_write_calls, io.pipe_writes_issued);
    io_clean_up(&io);
    return completed;
}

static bool pipe_one_loop_scenario(void)
{
    return pipe_round_trip(false);
}

static bool pipe_two_loops_scenario(void)
{
    return pipe_round_trip(true);
}

/* -- loopback TCP connect / accept / echo / close -- */

static void on_socket_destroyed(void *user_data)
{
    struct io_state *io = user_data;
    io_count(io, &io->destroy_calls);
}

/* Every socket the scenario creates reports its destroy exactly once. */
static rs_socket *io_socket_counted(struct io_state *io, rs_socket *s)
{
    assert_int_equal(rs_socket_set_destroy_callback(s, on_socket_destroyed, io), 0);
    rs_test_counter_lock(&io->counter);
    io->sockets_created++;
    rs_test_counter_unlock(&io->counter);
    return s;
}

/* Destroys s from the test thread. Hopping to the loop may need memory: the
 * documented OUT_OF_MEMORY leaves the socket as it was, so try again (only
 * one allocation fails per run). */
static void io_destroy(rs_socket *s)
{
    while (rs_socket_destroy(s) != 0) {
        assert_string_equal(rs_error_name(rs_last_error()), "RS_ERROR_OUT_OF_MEMORY");
    }
}

struct echo_chunk {
    struct io_state *io;
    unsigned char bytes[sizeof io_message];
};

static void on_echoed(rs_socket *s, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct echo_chunk *c = user_data;
    struct io_state *io = c->io;
    free(c);
    /* A failed echo ends the connection, so the client is not left waiting. */
    if (error_code && s) {
        io_check_write_error(error_code);
        assert_int_equal(rs_socket_close(s), 0);
    }
    io_count(io, &io->echo_write_calls);
}

/* Echoes what arrives; a refused echo ends the connection, so the client
 * sees end of stream instead of waiting for ever. */
static void server_on_readable(rs_socket *s, int error_code, void *user_data)
{
    struct io_state *io = user_data;
    if (error_code) {
        return;
    }
    for (;;) {
        struct echo_chunk *c = malloc(sizeof *c);
        assert_non_null(c);
        c->io = io;
        size_t n = 0;
        if (rs_socket_read(s, c->bytes, sizeof c->bytes, &n) != 0) {
            free(c);
            return;
        }
        if (failed_cleanly(rs_socket_write(s, c->bytes, n, on_echoed, c))) {
            free(c);
            assert_int_equal(rs_socket_close(s), 0);
            return;
        }
        io_count(io, &io->echo_writes_issued);
    }
}

static void on_accepted(rs_socket *listener, int error_code, rs_socket *new_socket, void *user_data)
{
    (void)listener;
    struct io_state *io = user_data;
    if (error_code) {
        io_count(io, &io->accept_errors);
        return;
    }
    io_socket_counted(io, new_socket);
    if (failed_cleanly(rs_socket_assign_to_event_loop(new_socket, io->loop)) ||
        failed_cleanly(
            rs_socket_subscribe_to_readable_events(new_socket, server_on_readable, io))) {
        assert_int_equal(rs_socket_destroy(new_socket), 0);
        return;
    }
    rs_test_counter_lock(&io->counter);
    assert_true(io->accepted_count < 4);
    io->accepted[io->accepted_count++] = new_socket;
    rs_test_counter_unlock(&io->counter);
}

static void on_connected(rs_socket *s, int error_code, void *user_data)
{
    (void)s;
    struct io_state *io = user_data;
    rs_test_counter_lock(&io->counter);
    io->connect_result = error_code;
    rs_test_counter_unlock(&io->counter);
    io_count(io, &io->connect_calls);
}

static void client_on_readable(rs_socket *s, int error_code, void *user_data)
{
    struct io_state *io = user_data;
    if (error_code) {
        io_received(io, NULL, 0, error_code);
        return;
    }
    unsigned char buf[sizeof io_message];
    size_t n = 0;
    while (rs_socket_read(s, buf, sizeof buf, &n) == 0) {
        io_received(io, buf, n, 0);
    }
    io_read_ended(io);
}

static void client_on_written(rs_socket *s, int error_code, size_t bytes, void *user_data)
{
    (void)s;
    (void)bytes;
    struct io_state *io = user_data;
    io_write_done(io, error_code, &io->client_write_error, &io->client_write_calls);
}

static void client_send_on_loop(void *arg)
{
    struct io_state *io = arg;
    if (failed_cleanly(
            rs_socket_subscribe_to_readable_events(io->client, client_on_readable, io))) {
        return;
    }
    if (!failed_cleanly(
            rs_socket_write(io->client, io_message, sizeof io_message, client_on_written, io))) {
        io->client_writes_issued++;
    }
}

/* Listener, client, echo of one message, then every socket destroyed.
 * Returns true when the message came back intact. */
static bool tcp_echo_scenario(void)
{
    struct io_state io;
    io_init(&io);
    bool completed = false;
    io.loop = io_loop();
    rs_socket_options options;
    memset(&options, 0, sizeof options);
    options.type = RS_SOCKET_STREAM;
    options.domain = RS_SOCKET_IPV4;
    options.connect_timeout_ms = 10000;
    rs_socket_endpoint ep;
    memset(&ep, 0, sizeof ep);
    strcpy(ep.address, "127.0.0.1");

    if (io.loop && (io.listener = rs_socket_new(&options)) != NULL) {
        io_socket_counted(&io, io.listener);
        assert_int_equal(rs_socket_bind(io.listener, &ep), 0);
        assert_int_equal(rs_socket_get_bound_address(io.listener, &ep), 0);
        assert_int_equal(rs_socket_listen(io.listener, 16), 0);
        if (!failed_cleanly(rs_socket_start_accept(io.listener, io.loop, on_accepted, &io)) &&
            (io.client = rs_socket_new(&options)) != NULL) {
            io_socket_counted(&io, io.client);
            if (!failed_cleanly(rs_socket_connect(io.client, &ep, io.loop, on_connected, &io))) {
                io.connect_issued = true;
                IO_WAIT(&io, io.connect_calls == 1, "the connection callback");
                if (io.connect_result != 0) {
                    assert_string_equal(rs_error_name(io.connect_result), "RS_ERROR_OUT_OF_MEMORY");
                } else {
                    rs_test_run_on_loop(io.loop, client_send_on_loop, &io);
                }
            }
            if (io.client_writes_issued == 1) {
                /* The message comes back, or the server side failed and
                 * ended the connection (the accepted socket dropped, or its
                 * echo refused). */
                IO_WAIT(&io,
                        io_round_trip_done(&io) || io.accept_errors > 0 ||
                            io.client_write_error != 0,
                        "the echo or the end of the connection");
                completed = io.got_len == sizeof io_message;
                if (completed) {
                    assert_memory_equal(io.got, io_message, sizeof io_message);
                } else {
                    assert_true(injected > 0);
                }
            }
        } else if (!io.client) {
            assert_string_equal(rs_error_name(rs_last_error()), "RS_ERROR_OUT_OF_MEMORY");
        }
    } else if (io.loop) {
        assert_string_equal(rs_error_name(rs_last_error()), "RS_ERROR_OUT_OF_MEMORY");
    }

    if (io.client) {
        io_destroy(io.client);
    }
    if (io.listener) {
        io_destroy(io.listener);
    }
    /* The listener is gone: no more accepted sockets appear. */
    for (int i = 0; i < io.accepted_count; i++) {
        io_destroy(io.accepted[i]);
    }
    if (io.loop) {
        IO_WAIT(&io,
                io.destroy_calls == io.sockets_created &&
                    io.client_write_calls == io.client_writes_issued &&
                    io.echo_write_calls == io.echo_writes_issued,
                "every socket's destroy and write callbacks");
        assert_int_equal(rs_event_loop_destroy(io.loop), 0);
    }
    /* Nothing arrives after the loop is gone, and nothing came twice. */
    assert_int_equal(io.destroy_calls, io.sockets_created);
    assert_int_equal(io.connect_calls, io.connect_issued ? 1 : 0);
    assert_int_equal(io.client_write_calls, io.client_writes_issued);
    assert_int_equal(io.echo_write_calls, io.echo_writes_issued);
    io_clean_up(&io);
    return completed;
}

static void test_alloc_failure_loop_life_cycle(void **state)
{
    (void)state;
    int runs = run_with_failures(loop_scenario);
    print_message("loop life cycle: %d allocation points failed in turn\n", runs);
    assert_true(runs >= 2);
}

static void test_alloc_failure_group(void **state)
{
    (void)state;
    int runs = run_with_failures(group_scenario);
    print_message("group: %d allocation points failed in turn\n", runs);
    assert_true(runs >= 4);
}

static void test_alloc_failure_resolve(void **state)
{
    (void)state;
    int runs = run_with_failures(resolve_scenario);
    print_message("resolve: %d allocation points failed in turn\n", runs);
    assert_true(runs >= 3);
}

static void test_alloc_failure_pipe_one_loop(void **state)
{
    (void)state;
    int runs = run_with_failures(pipe_one_loop_scenario);
    print_message("pipe round trip, one loop: %d allocation points failed in turn\n", runs);
    assert_true(runs >= 4);
}

static void test_alloc_failure_pipe_two_loops(void **state)
{
    (void)state;
    int runs = run_with_failures(pipe_two_loops_scenario);
    print_message("pipe round trip, two loops: %d allocation points failed in turn\n", runs);
    assert_true(runs >= 6);
}

static void test_alloc_failure_tcp_echo(void **state)
{
    (void)state;
    int runs = run_with_failures(tcp_echo_scenario);
    print_message("TCP connect/accept/echo/close: %d allocation points failed in turn\n", runs);
    assert_true(runs >= 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_failure_loop_life_cycle),
        cmocka_unit_test(test_alloc_failure_group),
        cmocka_unit_test(test_alloc_failure_resolve),
        cmocka_unit_test(test_alloc_failure_pipe_one_loop),
        cmocka_unit_test(test_alloc_failure_pipe_two_loops),
        cmocka_unit_test(test_alloc_failure_tcp_echo),
    };
    return RS_TEST_MAIN("alloc_failure", tests);
}
