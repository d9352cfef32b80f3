/*
 * RW4 (test-scenarios.md): a loop run on the caller's thread. The test's
 * thread drives the loop with rs_event_loop_run_here in its three modes:
 * tasks, timers, a socket echo and a pipe run there, that thread is the
 * loop's thread during a run and no thread's between runs, foreign threads
 * schedule into it and stop it, and every misuse fails with its own code
 * and changes nothing.
 *
 * Every run is bounded by a watchdog: a task of the loop itself, due after
 * RS_TEST_TIMEOUT_MS, that stops the run and marks the test timed out.
 */
#include "rs_test.h"
#include "socket_fixture.h"

#include "../common/atomics.h"

#include <stdlib.h>
#include <string.h>

/* ---- a caller-thread loop with a watchdog ---- */

struct driven {
    rs_event_loop *loop;
    rs_task watchdog;
    volatile long timed_out;
};

static void watchdog_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct driven *d = arg;
    if (status == RS_TASK_STATUS_RUN) {
        rs__atomic_store(&d->timed_out, 1);
        rs_event_loop_stop(d->loop);
    }
}

/* HO10: a test that fails between runs leaves its loop here; the teardown
 * destroys it (which cancels the watchdog). */
static bool driven_release(void *obj)
{
    struct driven *d = obj;
    if (rs_event_loop_destroy(d->loop) != 0) {
        return false;
    }
    free(d);
    return true;
}

static struct driven *driven_new(void)
{
    struct driven *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->loop = rs_event_loop_new_on_caller_thread(NULL);
    assert_non_null(d->loop);
    rs_task_init(&d->watchdog, watchdog_fn, d, "watchdog");
    assert_int_equal(
        rs_event_loop_schedule_at(d->loop, &d->watchdog,
                                  rs_event_loop_now(d->loop) + RS_TEST_TIMEOUT_MS * 1000000ull),
        0);
    rs_test_own(d, driven_release, NULL);
    return d;
}

static void driven_free(struct driven *d)
{
    rs_test_disown(d);
    assert_int_equal(rs_event_loop_destroy(d->loop), 0);
    free(d);
}

static void run_checked(struct driven *d, rs_run_mode mode, const char *what)
{
    assert_int_equal(rs_event_loop_run_here(d->loop, mode), 0);
    if (rs__atomic_load(&d->timed_out)) {
        fail_msg("timed out waiting for %s", what);
    }
}

/* Runs RS_RUN_ONCE until cond holds (cond is read on this thread, which
 * is the one that runs the callbacks). */
#define DRIVE_UNTIL(d, cond, what)                                                                 \
    do {                                                                                           \
        while (!(cond)) {                                                                          \
            run_checked((d), RS_RUN_ONCE, (what));                                                 \
        }                                                                                          \
    } while (0)

/* A task that records where and how it ran. */
struct probe {
    rs_task task;
    rs_event_loop *loop;
    long runs;
    rs_task_status status;
    bool on_thread;
    uint64_t thread_id;
    uint64_t ran_at_ns;
    bool stop; /* stops the loop when it runs */
};

static void probe_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct probe *p = arg;
    p->runs++;
    p->status = status;
    p->on_thread = rs_event_loop_is_on_thread(p->loop);
    p->thread_id = rs__thread_current_id();
    p->ran_at_ns = rs_event_loop_now(p->loop);
    if (p->stop) {
        rs_event_loop_stop(p->loop);
    }
}

static void probe_init(struct probe *p, rs_event_loop *loop)
{
    memset(p, 0, sizeof *p);
    p->loop = loop;
    rs_task_init(&p->task, probe_fn, p, "probe");
}

/* ---- the three modes, tasks and timers ---- */

static void test_rw4_modes_run_tasks_and_timers(void **state)
{
    (void)state;
    struct driven *d = driven_new();
    uint64_t me = rs__thread_current_id();
    assert_false(rs_event_loop_is_on_thread(d->loop));

    /* NOWAIT: runs what is queued, on this thread, as the loop's thread. */
    struct probe now_task;
    probe_init(&now_task, d->loop);
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &now_task.task), 0);
    run_checked(d, RS_RUN_NOWAIT, "a task queued before a NOWAIT run");
    assert_int_equal(now_task.runs, 1);
    assert_int_equal(now_task.status, RS_TASK_STATUS_RUN);
    assert_true(now_task.on_thread);
    assert_true(now_task.thread_id == me);
    /* Between runs the loop has no thread. */
    assert_false(rs_event_loop_is_on_thread(d->loop));

    /* NOWAIT with nothing ready returns without waiting for the timer. */
    struct probe timer;
    probe_init(&timer, d->loop);
    uint64_t due = rs_event_loop_now(d->loop) + 30 * 1000000ull;
    assert_int_equal(rs_event_loop_schedule_at(d->loop, &timer.task, due), 0);
    run_checked(d, RS_RUN_NOWAIT, "an idle NOWAIT run");
    if (rs_event_loop_now(d->loop) < due) {
        assert_int_equal(timer.runs, 0);
    }

    /* ONCE with nothing ready waits for the timer, runs it, and returns,
     * never before its time. */
    run_checked(d, RS_RUN_ONCE, "the timer of a ONCE run");
    assert_int_equal(timer.runs, 1);
    assert_true(timer.ran_at_ns >= due);
    assert_true(timer.on_thread);
    assert_true(timer.thread_id == me);

    /* ONCE with a task ready runs it and does not wait for a later timer. */
    struct probe far_timer;
    probe_init(&far_timer, d->loop);
    assert_int_equal(
        rs_event_loop_schedule_at(d->loop, &far_timer.task,
                                  rs_event_loop_now(d->loop) + RS_TEST_TIMEOUT_MS * 2000000ull),
        0);
    struct probe ready;
    probe_init(&ready, d->loop);
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &ready.task), 0);
    run_checked(d, RS_RUN_ONCE, "a ready task in a ONCE run");
    assert_int_equal(ready.runs, 1);
    assert_int_equal(far_timer.runs, 0);

    /* DEFAULT runs until a callback stops it, timers and tasks included; a
     * task scheduled from a task runs in the same run. */
    struct probe stopper;
    probe_init(&stopper, d->loop);
    stopper.stop = true;
    assert_int_equal(rs_event_loop_schedule_at(d->loop, &stopper.task,
                                               rs_event_loop_now(d->loop) + 10 * 1000000ull),
                     0);
    run_checked(d, RS_RUN_DEFAULT, "a DEFAULT run stopped by its timer");
    assert_int_equal(stopper.runs, 1);
    assert_true(stopper.on_thread);
    assert_false(rs_event_loop_is_on_thread(d->loop));

    /* The far timer is still queued: the destroy cancels it on this thread. */
    driven_free(d);
    assert_int_equal(far_timer.runs, 1);
    assert_int_equal(far_timer.status, RS_TASK_STATUS_CANCELED);
}

/* ---- stop ---- */

static void stop_twice_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    struct probe *p = arg;
    p->runs++;
    assert_int_equal(rs_event_loop_stop(p->loop), 0);
    assert_int_equal(rs_event_loop_stop(p->loop), 0);
}

static void test_rw4_stop_from_callback_and_between_runs(void **state)
{
    (void)state;
    struct driven *d = driven_new();

    /* Two stops from a callback end this run, once: the next run is not
     * ended by the second. */
    struct probe stopper;
    probe_init(&stopper, d->loop);
    rs_task_init(&stopper.task, stop_twice_fn, &stopper, "stop twice");
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &stopper.task), 0);
    run_checked(d, RS_RUN_DEFAULT, "a DEFAULT run stopped twice from a task");
    assert_int_equal(stopper.runs, 1);

    struct probe after;
    probe_init(&after, d->loop);
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &after.task), 0);
    run_checked(d, RS_RUN_NOWAIT, "a run after the stopped one");
    assert_int_equal(after.runs, 1);

    /* Two stops between runs: the next run returns before its first
     * iteration (the queued task waits), the one after runs normally. */
    assert_int_equal(rs_event_loop_stop(d->loop), 0);
    assert_int_equal(rs_event_loop_stop(d->loop), 0);
    struct probe queued;
    probe_init(&queued, d->loop);
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &queued.task), 0);
    run_checked(d, RS_RUN_DEFAULT, "a run ended by a stop made before it");
    assert_int_equal(queued.runs, 0);
    run_checked(d, RS_RUN_NOWAIT, "the run after it");
    assert_int_equal(queued.runs, 1);

    driven_free(d);
}

/* ---- foreign threads ---- */

struct foreign;

/* A probe that also counts its run for the foreign thread (the probe comes
 * first: probe_fn takes the same pointer). */
struct counted_probe {
    struct probe p;
    struct foreign *f;
};

struct foreign {
    rs_event_loop *loop;
    struct rs_test_counter ran;
    struct counted_probe probes[50];
    bool failed;
};

static void counted_probe_fn(rs_task *task, void *arg, rs_task_status status)
{
    probe_fn(task, arg, status);
    struct counted_probe *c = arg;
    rs_test_counter_add(&c->f->ran, 1);
}

/* Schedules each probe after the previous one ran, so that most arrive
 * while the loop waits, then stops the loop from this thread. */
static void foreign_scheduler(void *arg)
{
    struct foreign *f = arg;
    for (int i = 0; i < 50; i++) {
        if (rs_event_loop_schedule_now(f->loop, &f->probes[i].p.task) != 0 ||
            !rs_test_counter_wait_at_least(&f->ran, i + 1, RS_TEST_TIMEOUT_MS)) {
            f->failed = true;
            break;
        }
    }
    rs_event_loop_stop(f->loop);
}

static void test_rw4_foreign_thread_schedules_and_stops(void **state)
{
    (void)state;
    struct driven *d = driven_new();
    struct foreign *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->loop = d->loop;
    rs_test_counter_init(&f->ran);
    for (int i = 0; i < 50; i++) {
        probe_init(&f->probes[i].p, d->loop);
        f->probes[i].f = f;
        rs_task_init(&f->probes[i].p.task, counted_probe_fn, &f->probes[i], "foreign");
    }
    rs__thread thread;
    assert_int_equal(rs__thread_start(&thread, foreign_scheduler, f, "rw4-foreign"), 0);
    /* The foreign thread's stop ends this run (or, if it came first, the
     * next one, which then finds the rest queued). */
    while (rs_test_counter_get(&f->ran) < 50 && !rs__atomic_load(&d->timed_out)) {
        assert_int_equal(rs_event_loop_run_here(d->loop, RS_RUN_DEFAULT), 0);
    }
    rs__thread_join(&thread);
    assert_false(rs__atomic_load(&d->timed_out));
    assert_false(f->failed);
    uint64_t me = rs__thread_current_id();
    for (int i = 0; i < 50; i++) {
        assert_int_equal(f->probes[i].p.runs, 1);
        assert_true(f->probes[i].p.on_thread);
        assert_true(f->probes[i].p.thread_id == me);
    }
    rs_test_counter_clean_up(&f->ran);
    free(f);
    driven_free(d);
}

/* Another thread may drive the next run: it is then the loop's thread. */
struct other_runner {
    struct driven *d;
    uint64_t id;
    int rc;
    bool on_thread_after;
};

static void other_runner_main(void *arg)
{
    struct other_runner *o = arg;
    o->id = rs__thread_current_id();
    o->rc = rs_event_loop_run_here(o->d->loop, RS_RUN_ONCE);
    o->on_thread_after = rs_event_loop_is_on_thread(o->d->loop);
}

static void test_rw4_any_thread_drives_a_run(void **state)
{
    (void)state;
    struct driven *d = driven_new();
    struct probe p;
    probe_init(&p, d->loop);
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &p.task), 0);
    struct other_runner o = {d, 0, -1, true};
    rs__thread thread;
    assert_int_equal(rs__thread_start(&thread, other_runner_main, &o, "rw4-runner"), 0);
    rs__thread_join(&thread);
    assert_int_equal(o.rc, 0);
    assert_int_equal(p.runs, 1);
    assert_true(p.on_thread);
    assert_true(p.thread_id == o.id);
    assert_false(o.on_thread_after);
    assert_false(rs_event_loop_is_on_thread(d->loop));
    driven_free(d);
}

/* ---- a socket echo on the caller's thread ---- */

#define ECHO_BYTES (256u * 1024u)

struct echo {
    rs_event_loop *loop;
    uint64_t me;
    rs_socket *listener;
    rs_socket *server;
    rs_socket *client;
    unsigned char *sent;
    unsigned char *got;
    unsigned char *relay; /* what the server read, written back from here */
    size_t got_len;
    size_t relay_len;
    size_t relayed_done;
    int connect_result;
    int errors;
    long callbacks;
    long callbacks_off_thread;
};

static void echo_note(struct echo *e)
{
    e->callbacks++;
    if (!rs_event_loop_is_on_thread(e->loop) || rs__thread_current_id() != e->me) {
        e->callbacks_off_thread++;
    }
}

static void echo_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    struct echo *e = user_data;
    echo_note(e);
    if (error_code != 0) {
        e->errors++;
    }
}

static void server_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct echo *e = user_data;
    echo_note(e);
    if (error_code != 0) {
        return;
    }
    for (;;) {
        size_t n = 0;
        if (e->relay_len == ECHO_BYTES ||
            rs_socket_read(socket, e->relay + e->relay_len, ECHO_BYTES - e->relay_len, &n) != 0) {
            break;
        }
        if (rs_socket_write(socket, e->relay + e->relay_len, n, echo_written, e) != 0) {
            e->errors++;
        }
        e->relay_len += n;
    }
}

static void on_accept(rs_socket *listener, int error_code, rs_socket *new_socket, void *user_data)
{
    (void)listener;
    struct echo *e = user_data;
    echo_note(e);
    if (error_code != 0 || e->server) {
        e->errors++;
        return;
    }
    e->server = new_socket;
    if (rs_socket_assign_to_event_loop(new_socket, e->loop) != 0 ||
        rs_socket_subscribe_to_readable_events(new_socket, server_readable, e) != 0) {
        e->errors++;
    }
}

static void client_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct echo *e = user_data;
    echo_note(e);
    if (error_code != 0) {
        return;
    }
    size_t n = 0;
    while (e->got_len < ECHO_BYTES &&
           rs_socket_read(socket, e->got + e->got_len, ECHO_BYTES - e->got_len, &n) == 0) {
        e->got_len += n;
    }
    if (e->got_len == ECHO_BYTES) {
        rs_event_loop_stop(e->loop);
    }
}

static void on_connect(rs_socket *socket, int error_code, void *user_data)
{
    struct echo *e = user_data;
    echo_note(e);
    e->connect_result = error_code;
    if (error_code != 0) {
        rs_event_loop_stop(e->loop);
        return;
    }
    if (rs_socket_subscribe_to_readable_events(socket, client_readable, e) != 0 ||
        rs_socket_write(socket, e->sent, ECHO_BYTES, echo_written, e) != 0) {
        e->errors++;
    }
}

static void test_rw4_socket_echo_on_caller_thread(void **state)
{
    (void)state;
    struct driven *d = driven_new();
    struct echo *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->loop = d->loop;
    e->me = rs__thread_current_id();
    e->connect_result = -1;
    e->sent = malloc(ECHO_BYTES);
    e->got = malloc(ECHO_BYTES);
    e->relay = malloc(ECHO_BYTES);
    assert_non_null(e->sent);
    assert_non_null(e->got);
    assert_non_null(e->relay);
    sk_fill_pattern(e->sent, ECHO_BYTES, 7);

    rs_socket_options opts = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    e->listener = rs_socket_new(&opts);
    assert_non_null(e->listener);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(e->listener, &ep), 0);
    assert_int_equal(rs_socket_listen(e->listener, 8), 0);
    assert_int_equal(rs_socket_get_bound_address(e->listener, &ep), 0);
    /* Between runs this thread registers the listener itself (the loop does
     * not run), as it would for a stopped loop. */
    assert_int_equal(rs_socket_start_accept(e->listener, d->loop, on_accept, e), 0);
    e->client = rs_socket_new(&opts);
    assert_non_null(e->client);
    assert_int_equal(rs_socket_connect(e->client, &ep, d->loop, on_connect, e), 0);

    run_checked(d, RS_RUN_DEFAULT, "the echo of 256 KiB");
    assert_int_equal(e->connect_result, 0);
    assert_int_equal(e->errors, 0);
    assert_int_equal(e->got_len, ECHO_BYTES);
    assert_true(sk_check_pattern(e->got, ECHO_BYTES, 7));
    assert_true(e->callbacks >= 4);
    assert_int_equal(e->callbacks_off_thread, 0);

    /* Between runs the loop-thread calls fail on this thread too. */
    size_t n = 0;
    unsigned char byte = 1;
    assert_fails_with(rs_socket_write(e->client, &byte, 1, echo_written, e), RS_ERROR_WRONG_THREAD);
    assert_fails_with(rs_socket_read(e->client, &byte, 1, &n), RS_ERROR_WRONG_THREAD);

    /* Any-thread calls run here between runs. */
    assert_int_equal(rs_socket_destroy(e->client), 0);
    assert_int_equal(rs_socket_destroy(e->server), 0);
    assert_int_equal(rs_socket_destroy(e->listener), 0);
    run_checked(d, RS_RUN_NOWAIT, "the runs after the close");
    driven_free(d);
    free(e->sent);
    free(e->got);
    free(e->relay);
    free(e);
}

/* ---- a pipe on the caller's thread ---- */

#define PIPE_CHUNK (64u * 1024u)
#define PIPE_CHUNKS 16u

struct pipe_run {
    rs_event_loop *loop;
    rs_task start;
    rs_pipe_read_end *r;
    rs_pipe_write_end *w;
    unsigned char *data;
    unsigned char *got;
    size_t got_len;
    long writes_done;
    long cleanups;
    int errors;
    long off_thread;
};

static void pipe_written(rs_pipe_write_end *w, int error_code, size_t bytes, void *user_data)
{
    (void)w;
    struct pipe_run *p = user_data;
    if (!rs_event_loop_is_on_thread(p->loop)) {
        p->off_thread++;
    }
    if (error_code != 0 || bytes != PIPE_CHUNK) {
        p->errors++;
    }
    p->writes_done++;
}

static void pipe_readable(rs_pipe_read_end *r, int error_code, void *user_data)
{
    struct pipe_run *p = user_data;
    if (!rs_event_loop_is_on_thread(p->loop)) {
        p->off_thread++;
    }
    if (error_code != 0) {
        p->errors++;
        return;
    }
    size_t n = 0;
    size_t total = PIPE_CHUNK * PIPE_CHUNKS;
    while (p->got_len < total &&
           rs_pipe_read(r, p->got + p->got_len, total - p->got_len, &n) == 0) {
        p->got_len += n;
    }
    if (p->got_len == total) {
        rs_event_loop_stop(p->loop);
    }
}

static void pipe_start(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct pipe_run *p = arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    if (rs_pipe_subscribe_to_readable_events(p->r, pipe_readable, p) != 0) {
        p->errors++;
    }
    for (unsigned i = 0; i < PIPE_CHUNKS; i++) {
        if (rs_pipe_write(p->w, p->data + (size_t)i * PIPE_CHUNK, PIPE_CHUNK, pipe_written, p) !=
            0) {
            p->errors++;
        }
    }
}

static void pipe_cleaned(void *user_data)
{
    struct pipe_run *p = user_data;
    p->cleanups++;
}

static void test_rw4_pipe_on_caller_thread(void **state)
{
    (void)state;
    struct driven *d = driven_new();
    struct pipe_run *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->loop = d->loop;
    size_t total = PIPE_CHUNK * PIPE_CHUNKS;
    p->data = malloc(total);
    p->got = malloc(total);
    assert_non_null(p->data);
    assert_non_null(p->got);
    sk_fill_pattern(p->data, total, 3);
    assert_int_equal(rs_pipe_new(d->loop, &p->r, d->loop, &p->w), 0);

    /* Subscribing and writing are loop-thread calls: from a task. */
    rs_task_init(&p->start, pipe_start, p, "pipe start");
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &p->start), 0);
    run_checked(d, RS_RUN_DEFAULT, "1 MiB through the pipe");
    DRIVE_UNTIL(d, p->writes_done == (long)PIPE_CHUNKS, "the pipe's write completions");
    assert_int_equal(p->errors, 0);
    assert_int_equal(p->off_thread, 0);
    assert_int_equal(p->got_len, total);
    assert_memory_equal(p->got, p->data, total);

    /* Between runs: a loop-thread call fails, the clean-ups run here. */
    unsigned char byte = 0;
    assert_fails_with(rs_pipe_write(p->w, &byte, 1, pipe_written, p), RS_ERROR_WRONG_THREAD);
    assert_int_equal(rs_pipe_clean_up_write_end(p->w, pipe_cleaned, p), 0);
    assert_int_equal(rs_pipe_clean_up_read_end(p->r, pipe_cleaned, p), 0);
    DRIVE_UNTIL(d, p->cleanups == 2, "both pipe ends' clean-up");
    driven_free(d);
    free(p->data);
    free(p->got);
    free(p);
}

/* ---- destroy ---- */

static void test_rw4_destroy_between_runs_cancels_pending(void **state)
{
    (void)state;
    rs_event_loop *loop = rs_event_loop_new_on_caller_thread(NULL);
    assert_non_null(loop);
    struct probe now_task;
    struct probe future;
    probe_init(&now_task, loop);
    probe_init(&future, loop);
    assert_int_equal(rs_event_loop_schedule_now(loop, &now_task.task), 0);
    assert_int_equal(
        rs_event_loop_schedule_at(loop, &future.task, rs_event_loop_now(loop) + 3600000000000ull),
        0);
    /* Never run: the destroying thread calls both, as the loop's thread. */
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    uint64_t me = rs__thread_current_id();
    assert_int_equal(now_task.runs, 1);
    assert_int_equal(future.runs, 1);
    assert_int_equal(now_task.status, RS_TASK_STATUS_CANCELED);
    assert_int_equal(future.status, RS_TASK_STATUS_CANCELED);
    assert_true(now_task.on_thread);
    assert_true(future.thread_id == me);
}

/* ---- bad input ---- */

struct misuse {
    rs_task task;
    struct driven *d;
    rs_event_loop *other; /* a loop of the harness, with its own thread */
    int run_nested;
    int run_nested_error;
    int destroy_own;
    int destroy_own_error;
    int wait_own;
    int wait_own_error;
    int run_threaded;
    int run_threaded_error;
    long runs;
};

static void misuse_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    struct misuse *m = arg;
    m->runs++;
    m->run_nested = rs_event_loop_run_here(m->d->loop, RS_RUN_NOWAIT);
    m->run_nested_error = rs_last_error();
    m->destroy_own = rs_event_loop_destroy(m->d->loop);
    m->destroy_own_error = rs_last_error();
    m->wait_own = rs_event_loop_wait_for_stop(m->d->loop);
    m->wait_own_error = rs_last_error();
    m->run_threaded = rs_event_loop_run(m->d->loop);
    m->run_threaded_error = rs_last_error();
}

/* On another loop's thread: running the caller-thread loop there fails. */
static void run_from_other_loop(void *arg)
{
    struct misuse *m = arg;
    m->run_nested = rs_event_loop_run_here(m->d->loop, RS_RUN_NOWAIT);
    m->run_nested_error = rs_last_error();
}

struct elsewhere {
    struct driven *d;
    struct rs_test_counter running;
    rs_task signal;
    int rc;
};

static void signal_running(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    if (status == RS_TASK_STATUS_RUN) {
        struct elsewhere *e = arg;
        rs_test_counter_add(&e->running, 1);
    }
}

static void run_elsewhere(void *arg)
{
    struct elsewhere *e = arg;
    e->rc = rs_event_loop_run_here(e->d->loop, RS_RUN_DEFAULT);
}

static void test_rw4_bad_input(void **state)
{
    rs_event_loop *threaded = *state;
    struct driven *d = driven_new();

    /* Arguments and the kind of loop. */
    assert_fails_with(rs_event_loop_run_here(NULL, RS_RUN_DEFAULT), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_run_here(d->loop, (rs_run_mode)3), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_run_here(d->loop, (rs_run_mode)-1), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_run_here(threaded, RS_RUN_NOWAIT), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_run(d->loop), RS_ERROR_INVALID_ARGUMENT);

    /* From inside its own callback: nothing nests, nothing changes. */
    struct misuse m;
    memset(&m, 0, sizeof m);
    m.d = d;
    rs_task_init(&m.task, misuse_fn, &m, "misuse");
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &m.task), 0);
    run_checked(d, RS_RUN_NOWAIT, "the misusing task");
    assert_int_equal(m.runs, 1);
    assert_int_equal(m.run_nested, -1);
    assert_string_equal(rs_error_name(m.run_nested_error), "RS_ERROR_WRONG_THREAD");
    assert_int_equal(m.destroy_own, -1);
    assert_string_equal(rs_error_name(m.destroy_own_error), "RS_ERROR_WOULD_DEADLOCK");
    assert_int_equal(m.wait_own, -1);
    assert_string_equal(rs_error_name(m.wait_own_error), "RS_ERROR_WOULD_DEADLOCK");
    assert_int_equal(m.run_threaded, -1);
    assert_string_equal(rs_error_name(m.run_threaded_error), "RS_ERROR_INVALID_ARGUMENT");

    /* From another loop's thread. */
    m.run_nested = 0;
    rs_test_run_on_loop(threaded, run_from_other_loop, &m);
    assert_int_equal(m.run_nested, -1);
    assert_string_equal(rs_error_name(m.run_nested_error), "RS_ERROR_WRONG_THREAD");

    /* While it runs on another thread: run and destroy fail here. */
    struct elsewhere *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->d = d;
    e->rc = -1;
    rs_test_counter_init(&e->running);
    rs_task_init(&e->signal, signal_running, e, "running");
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &e->signal), 0);
    rs__thread thread;
    assert_int_equal(rs__thread_start(&thread, run_elsewhere, e, "rw4-elsewhere"), 0);
    if (!rs_test_counter_wait_at_least(&e->running, 1, RS_TEST_TIMEOUT_MS)) {
        rs_event_loop_stop(d->loop);
        rs__thread_join(&thread);
        fail_msg("%s", "timed out waiting for the run on another thread");
    }
    assert_false(rs_event_loop_is_on_thread(d->loop));
    assert_fails_with(rs_event_loop_run_here(d->loop, RS_RUN_NOWAIT), RS_ERROR_INVALID_STATE);
    assert_fails_with(rs_event_loop_destroy(d->loop), RS_ERROR_INVALID_STATE);
    /* Nothing changed: the run goes on and runs what is scheduled. */
    rs_task_init(&e->signal, signal_running, e, "running again");
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &e->signal), 0);
    bool again = rs_test_counter_wait_at_least(&e->running, 2, RS_TEST_TIMEOUT_MS);
    assert_int_equal(rs_event_loop_stop(d->loop), 0);
    /* wait_for_stop waits for the run to return. */
    assert_int_equal(rs_event_loop_wait_for_stop(d->loop), 0);
    rs__thread_join(&thread);
    assert_true(again);
    assert_int_equal(e->rc, 0);
    rs_test_counter_clean_up(&e->running);
    free(e);

    /* And the loop still runs here afterwards. */
    struct probe p;
    probe_init(&p, d->loop);
    assert_int_equal(rs_event_loop_schedule_now(d->loop, &p.task), 0);
    run_checked(d, RS_RUN_NOWAIT, "a run after the misuse");
    assert_int_equal(p.runs, 1);
    assert_true(p.on_thread);
    driven_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rw4_modes_run_tasks_and_timers, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw4_stop_from_callback_and_between_runs,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw4_foreign_thread_schedules_and_stops,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw4_any_thread_drives_a_run, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw4_socket_echo_on_caller_thread,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw4_pipe_on_caller_thread, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw4_destroy_between_runs_cancels_pending,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_rw4_bad_input, rs_test_setup_loop,
                                        rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("loop_run", tests);
}
