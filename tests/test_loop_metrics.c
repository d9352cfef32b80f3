/*
 * RW5 (test-scenarios.md): loop metrics. The counters match the work done
 * (tasks run and cancelled, I/O callbacks, bytes read and written, live
 * sockets and pipe ends), the times split into waiting and running, and a
 * foreign thread reads them while the loop runs, on a loop with its own
 * thread and on one run on the caller's thread.
 */
#include "rs_test.h"
#include "socket_fixture.h"

#include "../common/atomics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static rs_event_loop_metrics metrics_of(rs_event_loop *loop)
{
    rs_event_loop_metrics m;
    memset(&m, 0, sizeof m);
    assert_int_equal(rs_event_loop_get_metrics(loop, &m, sizeof m), 0);
    return m;
}

/* ---- tasks ---- */

struct counted {
    rs_task task;
    struct rs_test_counter *ran;
    struct rs_test_counter *canceled;
};

static void counted_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct counted *c = arg;
    rs_test_counter_add(status == RS_TASK_STATUS_RUN ? c->ran : c->canceled, 1);
}

#define RW5_TASKS 100
#define RW5_CANCELS 10

static void test_rw5_task_counts_match_work(void **state)
{
    rs_event_loop *loop = *state;
    struct rs_test_counter ran;
    struct rs_test_counter canceled;
    rs_test_counter_init(&ran);
    rs_test_counter_init(&canceled);
    struct counted *tasks = calloc(RW5_TASKS + RW5_CANCELS, sizeof *tasks);
    assert_non_null(tasks);
    for (int i = 0; i < RW5_TASKS + RW5_CANCELS; i++) {
        tasks[i].ran = &ran;
        tasks[i].canceled = &canceled;
        rs_task_init(&tasks[i].task, counted_fn, &tasks[i], "counted");
    }
    rs_event_loop_metrics before = metrics_of(loop);

    for (int i = 0; i < RW5_TASKS; i++) {
        assert_int_equal(rs_event_loop_schedule_now(loop, &tasks[i].task), 0);
    }
    uint64_t far_ns = rs_event_loop_now(loop) + 3600ull * 1000000000ull;
    for (int i = RW5_TASKS; i < RW5_TASKS + RW5_CANCELS; i++) {
        assert_int_equal(rs_event_loop_schedule_at(loop, &tasks[i].task, far_ns), 0);
        assert_int_equal(rs_event_loop_cancel_task(loop, &tasks[i].task), 0);
    }
    rs_test_counter_await(&ran, RW5_TASKS, "the tasks to run");
    rs_test_counter_await(&canceled, RW5_CANCELS, "the cancelled tasks' calls");

    /* Read from this (foreign) thread while the loop runs: each count was
     * bumped before the callback that told us. */
    rs_event_loop_metrics after = metrics_of(loop);
    assert_int_equal(after.tasks_run - before.tasks_run, RW5_TASKS);
    assert_int_equal(after.tasks_canceled - before.tasks_canceled, RW5_CANCELS);
    assert_true(after.iterations > before.iterations);
    assert_true(after.io_callbacks == before.io_callbacks);
    assert_true(after.bytes_read == before.bytes_read);
    rs_test_counter_clean_up(&ran);
    rs_test_counter_clean_up(&canceled);
    free(tasks);
}

/* ---- bytes, I/O callbacks and handles ---- */

#define RW5_BYTES (200u * 1000u)

static void pipe_cleaned(void *user_data)
{
    rs_test_counter_add(user_data, 1);
}

static void test_rw5_io_counts_match_work(void **state)
{
    rs_event_loop *loop = *state;
    rs_event_loop_metrics m0 = metrics_of(loop);
    assert_int_equal(m0.live_sockets, 0);
    assert_int_equal(m0.live_pipe_ends, 0);

    rs_socket_options opts = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &opts, true, 8);
    struct sk_peer *client = sk_peer_new(loop, &opts);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_peer_subscribe(client);
    sk_server_wait_accepted(&server, 1);
    struct sk_peer *echo = server.accepted[0];

    unsigned char *data = malloc(RW5_BYTES);
    assert_non_null(data);
    sk_fill_pattern(data, RW5_BYTES, 11);
    sk_peer_write(client, data, RW5_BYTES);
    sk_peer_wait_bytes(client, RW5_BYTES);
    SK_WAIT(client, client->writes_done == 1, "the client's write completion");
    /* The echo's last write was taken by the kernel before the client read
     * it: its completion is queued, and runs before the loop's next task. */
    sk_loop_round_trip(loop);

    /* The server read and wrote RW5_BYTES, so did the client. */
    rs_event_loop_metrics m1 = metrics_of(loop);
    assert_int_equal(m1.bytes_read - m0.bytes_read, 2 * RW5_BYTES);
    assert_int_equal(m1.bytes_written - m0.bytes_written, 2 * RW5_BYTES);
    /* At least: the connect, the accept, one readable callback and one
     * write completion per side. */
    uint64_t io = m1.io_callbacks - m0.io_callbacks;
    assert_true(io >= 2 + 2 + (uint64_t)client->readable_calls + (uint64_t)echo->writes_done);
    /* The listener, the accepted socket and the client. */
    assert_int_equal(m1.live_sockets, 3);
    assert_int_equal(m1.live_pipe_ends, 0);

    /* A pipe on the same loop: two ends, one chunk each way of counting. */
    rs_pipe_read_end *r = NULL;
    rs_pipe_write_end *w = NULL;
    assert_int_equal(rs_pipe_new(loop, &r, loop, &w), 0);
    rs_event_loop_metrics m2 = metrics_of(loop);
    assert_int_equal(m2.live_pipe_ends, 2);
    assert_int_equal(m2.live_sockets, 3);
    struct rs_test_counter cleaned;
    rs_test_counter_init(&cleaned);
    assert_int_equal(rs_pipe_clean_up_write_end(w, pipe_cleaned, &cleaned), 0);
    assert_int_equal(rs_pipe_clean_up_read_end(r, pipe_cleaned, &cleaned), 0);
    rs_test_counter_await(&cleaned, 2, "both pipe ends' clean-up");
    rs_test_counter_clean_up(&cleaned);
    assert_int_equal(metrics_of(loop).live_pipe_ends, 0);

    sk_peer_free(client);
    sk_server_stop(&server);
    rs_event_loop_metrics m3 = metrics_of(loop);
    assert_int_equal(m3.live_sockets, 0);
    assert_int_equal(m3.live_pipe_ends, 0);
    free(data);
}

/* ---- read from a foreign thread while the loop runs ---- */

#define RW5_SPIN_NS (20ull * 1000000ull)
#define RW5_ROUNDS 200

struct load {
    rs_event_loop *loop;
    rs_task task;
    long rounds;
    bool stop_at_end; /* a loop run on the caller's thread: stop it */
    struct rs_test_counter done;
};

/* A task that reschedules itself RW5_ROUNDS times, every tenth time as a
 * short timer (the loop waits) and the first time spinning for
 * RW5_SPIN_NS (the loop runs). */
static void load_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct load *l = arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    if (l->rounds == 0) {
        uint64_t until = rs__clock_now_ns() + RW5_SPIN_NS;
        while (rs__clock_now_ns() < until) {
        }
    }
    if (++l->rounds == RW5_ROUNDS) {
        rs_test_counter_add(&l->done, 1);
        if (l->stop_at_end) {
            rs_event_loop_stop(l->loop);
        }
        return;
    }
    if (l->rounds % 10 == 0) {
        rs_event_loop_schedule_at(l->loop, &l->task, rs_event_loop_now(l->loop) + 1000000ull);
    } else {
        rs_event_loop_schedule_now(l->loop, &l->task);
    }
}

struct reader {
    rs_event_loop *loop;
    struct load *load;
    uint64_t started_ns;
    long readings;
    const char *failure;
};

static bool monotonic(const rs_event_loop_metrics *a, const rs_event_loop_metrics *b)
{
    return b->iterations >= a->iterations && b->tasks_run >= a->tasks_run &&
           b->wait_ns >= a->wait_ns && b->run_ns >= a->run_ns &&
           b->io_callbacks >= a->io_callbacks && b->bytes_read >= a->bytes_read &&
           b->bytes_written >= a->bytes_written;
}

/* Reads the metrics until the load is done: every reading at least the
 * one before, never more time than has passed. */
static void reader_main(void *arg)
{
    struct reader *r = arg;
    rs_event_loop_metrics prev;
    memset(&prev, 0, sizeof prev);
    for (;;) {
        bool finished = rs_test_counter_get(&r->load->done) > 0;
        rs_event_loop_metrics m;
        if (rs_event_loop_get_metrics(r->loop, &m, sizeof m) != 0) {
            r->failure = "get_metrics failed";
            return;
        }
        uint64_t elapsed = rs__clock_now_ns() - r->started_ns;
        r->readings++;
        if (!monotonic(&prev, &m)) {
            r->failure = "a reading went backwards";
            return;
        }
        if (m.run_ns + m.wait_ns > elapsed) {
            r->failure = "more time counted than passed";
            return;
        }
        if (m.tasks_run > RW5_ROUNDS) {
            r->failure = "more tasks counted than ran";
            return;
        }
        prev = m;
        if (finished) {
            return;
        }
    }
}

static void metrics_under_load(bool caller_thread)
{
    struct load *l = calloc(1, sizeof *l);
    assert_non_null(l);
    rs_test_counter_init(&l->done);
    struct reader r;
    memset(&r, 0, sizeof r);
    r.started_ns = rs__clock_now_ns();
    l->loop = caller_thread ? rs_event_loop_new_on_caller_thread(NULL) : rs_event_loop_new(NULL);
    assert_non_null(l->loop);
    l->stop_at_end = caller_thread;
    assert_int_equal(rs_event_loop_set_metrics_timing(l->loop, true), 0);
    r.loop = l->loop;
    r.load = l;
    rs_task_init(&l->task, load_fn, l, "load");
    assert_int_equal(rs_event_loop_schedule_now(l->loop, &l->task), 0);

    rs__thread thread;
    assert_int_equal(rs__thread_start(&thread, reader_main, &r, "rw5-reader"), 0);
    if (caller_thread) {
        /* The load stops the run when it is done; it is bounded by its own
         * timers, each 1 ms. */
        assert_int_equal(rs_event_loop_run_here(l->loop, RS_RUN_DEFAULT), 0);
    } else {
        assert_int_equal(rs_event_loop_run(l->loop), 0);
    }
    bool done = rs_test_counter_wait_at_least(&l->done, 1, RS_TEST_TIMEOUT_MS);
    rs__thread_join(&thread);
    assert_int_equal(rs_event_loop_stop(l->loop), 0);
    assert_int_equal(rs_event_loop_wait_for_stop(l->loop), 0);
    rs_event_loop_metrics m = metrics_of(l->loop);
    rs_event_loop_metrics again = metrics_of(l->loop);
    /* Checked after the loop is gone, so that a failure leaves nothing
     * running behind. */
    assert_int_equal(rs_event_loop_destroy(l->loop), 0);
    rs_test_counter_clean_up(&l->done);
    free(l);
    assert_true(done);
    if (r.failure) {
        fail_msg("%s", r.failure);
    }
    assert_true(r.readings > 0);

    assert_int_equal(m.tasks_run, RW5_ROUNDS);
    assert_true(m.iterations >= RW5_ROUNDS / 10);
    /* The spin ran inside a task: running, not waiting. The 1 ms timers
     * were waited for. */
    assert_true(m.run_ns >= RW5_SPIN_NS);
    assert_true(m.wait_ns > 0);
    /* Stopped: the times stand still. */
    assert_true(again.run_ns == m.run_ns);
    assert_true(again.wait_ns == m.wait_ns);
}

static void test_rw5_read_from_foreign_thread_own_thread_loop(void **state)
{
    (void)state;
    metrics_under_load(false);
}

static void test_rw5_read_from_foreign_thread_caller_thread_loop(void **state)
{
    (void)state;
    metrics_under_load(true);
}

/* ---- a loop run on the caller's thread: counted per run ---- */

static void noop_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    (*(long *)arg)++;
}

static void test_rw5_caller_thread_runs_counted(void **state)
{
    (void)state;
    rs_event_loop *loop = rs_event_loop_new_on_caller_thread(NULL);
    assert_non_null(loop);
    rs_event_loop_metrics m0 = metrics_of(loop);
    assert_int_equal(m0.iterations, 0);
    assert_int_equal(m0.tasks_run, 0);
    assert_true(m0.run_ns == 0 && m0.wait_ns == 0);

    /* Times are not kept until asked for; the counters always are. */
    long runs = 0;
    rs_task task;
    rs_task_init(&task, noop_fn, &runs, "noop");
    assert_int_equal(
        rs_event_loop_schedule_at(loop, &task, rs_event_loop_now(loop) + 5ull * 1000000ull), 0);
    assert_int_equal(rs_event_loop_run_here(loop, RS_RUN_ONCE), 0);
    assert_int_equal(runs, 1);
    rs_event_loop_metrics untimed = metrics_of(loop);
    assert_int_equal(untimed.tasks_run, 1);
    assert_true(untimed.iterations >= 1);
    assert_true(untimed.run_ns == 0 && untimed.wait_ns == 0);

    assert_int_equal(rs_event_loop_set_metrics_timing(loop, true), 0);
    assert_int_equal(rs_event_loop_schedule_now(loop, &task), 0);
    assert_int_equal(rs_event_loop_run_here(loop, RS_RUN_NOWAIT), 0);
    assert_int_equal(runs, 2);
    rs_event_loop_metrics m1 = metrics_of(loop);
    assert_int_equal(m1.iterations, untimed.iterations + 1);
    assert_int_equal(m1.tasks_run, 2);
    /* A NOWAIT run never waits. */
    assert_true(m1.wait_ns == 0);

    /* Between runs the times stand still. */
    rs_event_loop_metrics m2 = metrics_of(loop);
    assert_true(m2.run_ns == m1.run_ns && m2.wait_ns == m1.wait_ns);

    /* A ONCE run waits for a timer: the run lasts until its time at least. */
    uint64_t due = rs_event_loop_now(loop) + 20ull * 1000000ull;
    assert_int_equal(rs_event_loop_schedule_at(loop, &task, due), 0);
    uint64_t t1 = rs__clock_now_ns();
    assert_int_equal(rs_event_loop_run_here(loop, RS_RUN_ONCE), 0);
    assert_int_equal(runs, 3);
    rs_event_loop_metrics m3 = metrics_of(loop);
    assert_int_equal(m3.tasks_run, 3);
    assert_true(m3.iterations > m1.iterations);
    uint64_t ran = (m3.run_ns + m3.wait_ns) - (m1.run_ns + m1.wait_ns);
    if (due > t1) {
        assert_true(ran >= due - t1);
    }
    assert_true(m3.wait_ns <= m3.wait_ns + m3.run_ns);

    /* Off again: the times stand still over a run that waits. */
    assert_int_equal(rs_event_loop_set_metrics_timing(loop, false), 0);
    assert_int_equal(
        rs_event_loop_schedule_at(loop, &task, rs_event_loop_now(loop) + 5ull * 1000000ull), 0);
    assert_int_equal(rs_event_loop_run_here(loop, RS_RUN_ONCE), 0);
    assert_int_equal(runs, 4);
    rs_event_loop_metrics m4 = metrics_of(loop);
    assert_true(m4.wait_ns == m3.wait_ns && m4.run_ns == m3.run_ns);
    assert_int_equal(m4.tasks_run, 4);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
}

/* ---- bad input ---- */

static void test_rw5_bad_input(void **state)
{
    rs_event_loop *loop = *state;
    unsigned char buf[sizeof(rs_event_loop_metrics) + 16];
    unsigned char pattern[sizeof buf];
    memset(pattern, 0xAB, sizeof pattern);

    memcpy(buf, pattern, sizeof buf);
    assert_fails_with(rs_event_loop_get_metrics(NULL, (rs_event_loop_metrics *)buf,
                                                sizeof(rs_event_loop_metrics)),
                      RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_get_metrics(loop, NULL, sizeof(rs_event_loop_metrics)),
                      RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_set_metrics_timing(NULL, true), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_get_metrics(loop, (rs_event_loop_metrics *)buf, 0),
                      RS_ERROR_INVALID_ARGUMENT);
    /* The first version's struct ended before wakeups: anything smaller fails. */
    assert_fails_with(rs_event_loop_get_metrics(loop, (rs_event_loop_metrics *)buf,
                                                offsetof(rs_event_loop_metrics, wakeups) - 1),
                      RS_ERROR_INVALID_ARGUMENT);
    /* A failed call writes nothing. */
    assert_memory_equal(buf, pattern, sizeof buf);

    /* The first version's struct (a program built against the header
     * before wakeups): accepted, and nothing beyond it is written. */
    memcpy(buf, pattern, sizeof buf);
    size_t first = offsetof(rs_event_loop_metrics, wakeups);
    assert_int_equal(rs_event_loop_get_metrics(loop, (rs_event_loop_metrics *)buf, first), 0);
    for (size_t i = first; i < sizeof buf; i++) {
        assert_int_equal(buf[i], 0xAB);
    }

    /* A larger struct (a newer header): the bytes this version does not know
     * are zeroed; nothing beyond size is written. */
    size_t larger = sizeof(rs_event_loop_metrics) + 8;
    assert_int_equal(rs_event_loop_get_metrics(loop, (rs_event_loop_metrics *)buf, larger), 0);
    for (size_t i = sizeof(rs_event_loop_metrics); i < larger; i++) {
        assert_int_equal(buf[i], 0);
    }
    for (size_t i = larger; i < sizeof buf; i++) {
        assert_int_equal(buf[i], 0xAB);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rw5_task_counts_match_work, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_rw5_io_counts_match_work, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_rw5_read_from_foreign_thread_own_thread_loop,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw5_read_from_foreign_thread_caller_thread_loop,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw5_caller_thread_runs_counted, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw5_bad_input, rs_test_setup_loop,
                                        rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("loop_metrics", tests);
}
