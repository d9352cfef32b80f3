/* Event-loop scenarios EL1-EL13 (test-scenarios.md), on whichever backend is
 * built. EL14 is RW1: see test_watch.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, for an independent CPU count */
#endif
#include "rs_test.h"

#include "../common/atomics.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <sched.h>
#endif

/* ---- shared helpers ---- */

struct record {
    rs_task task;
    rs_event_loop *loop;
    struct rs_test_latch *latch;
    volatile long runs;
    rs_task_status status;
    bool on_thread;
    uint64_t thread_id;
    uint64_t due_ns;
    uint64_t ran_at_ns;
    int order;
    int sched_pos;
};

static volatile long order_counter;

static void record_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct record *r = arg;
    rs__atomic_add(&r->runs, 1);
    r->status = status;
    r->on_thread = rs_event_loop_is_on_thread(r->loop);
    r->thread_id = rs__thread_current_id();
    r->ran_at_ns = rs_event_loop_now(r->loop);
    r->order = (int)rs__atomic_add(&order_counter, 1);
    if (r->latch) {
        rs_test_latch_signal(r->latch);
    }
}

static void record_init(struct record *r, rs_event_loop *loop, struct rs_test_latch *latch)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->latch = latch;
    rs_task_init(&r->task, record_task, r, "record");
}

/* ---- EL1 ---- */

static void test_el1_foreign_thread_tasks_run_on_loop_thread(void **state)
{
    rs_event_loop *loop = *state;
    struct rs_test_latch latch;
    rs_test_latch_init(&latch, 2);
    struct record now_task;
    struct record at_task;
    record_init(&now_task, loop, &latch);
    record_init(&at_task, loop, &latch);

    assert_false(rs_event_loop_is_on_thread(loop));
    assert_int_equal(rs_event_loop_schedule_now(loop, &now_task.task), 0);
    assert_int_equal(rs_event_loop_schedule_at(loop, &at_task.task, rs_event_loop_now(loop)), 0);
    rs_test_latch_await(&latch, "both tasks to run");

    assert_int_equal(now_task.runs, 1);
    assert_int_equal(at_task.runs, 1);
    assert_int_equal(now_task.status, RS_TASK_STATUS_RUN);
    assert_int_equal(at_task.status, RS_TASK_STATUS_RUN);
    assert_true(now_task.on_thread);
    assert_true(at_task.on_thread);
    assert_int_not_equal(now_task.thread_id, rs__thread_current_id());
    assert_int_equal(now_task.thread_id, at_task.thread_id);
    rs_test_latch_clean_up(&latch);
}

/* ---- EL2 ---- */

static void test_el2_destroy_cancels_future_task_on_destroying_thread(void **state)
{
    (void)state;
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_run(loop), 0);
    struct record r;
    record_init(&r, loop, NULL);
    uint64_t hour = 3600ull * 1000000000ull;
    assert_int_equal(rs_event_loop_schedule_at(loop, &r.task, rs_event_loop_now(loop) + hour), 0);
    /* Wait until the loop thread has filed the task, so destroy finds it in
     * the scheduler proper rather than in the cross-thread queue. */
    struct record probe;
    struct rs_test_latch latch;
    rs_test_latch_init(&latch, 1);
    record_init(&probe, loop, &latch);
    assert_int_equal(rs_event_loop_schedule_now(loop, &probe.task), 0);
    rs_test_latch_await(&latch, "the probe task");

    assert_int_equal(rs_event_loop_destroy(loop), 0);
    assert_int_equal(r.runs, 1);
    assert_int_equal(r.status, RS_TASK_STATUS_CANCELED);
    assert_true(r.on_thread);
    assert_int_equal(r.thread_id, rs__thread_current_id());
    rs_test_latch_clean_up(&latch);
}

/* ---- EL4 ---- */

static void test_el4_stop_then_run_again(void **state)
{
    rs_event_loop *loop = *state;
    assert_int_equal(rs_event_loop_stop(loop), 0);
    assert_int_equal(rs_event_loop_wait_for_stop(loop), 0);

    struct rs_test_latch latch;
    rs_test_latch_init(&latch, 2);
    struct record queued_while_stopped;
    struct record after_restart;
    record_init(&queued_while_stopped, loop, &latch);
    record_init(&after_restart, loop, &latch);
    assert_int_equal(rs_event_loop_schedule_now(loop, &queued_while_stopped.task), 0);
    assert_int_equal(queued_while_stopped.runs, 0);

    assert_int_equal(rs_event_loop_run(loop), 0);
    assert_fails_with(rs_event_loop_run(loop), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_event_loop_schedule_now(loop, &after_restart.task), 0);
    rs_test_latch_await(&latch, "tasks after restart");
    assert_int_equal(queued_while_stopped.runs, 1);
    assert_int_equal(after_restart.runs, 1);
    assert_true(queued_while_stopped.on_thread);
    assert_int_equal(queued_while_stopped.status, RS_TASK_STATUS_RUN);

    /* Run again without an explicit wait_for_stop in between. */
    assert_int_equal(rs_event_loop_stop(loop), 0);
    assert_int_equal(rs_event_loop_run(loop), 0);
    rs_test_latch_clean_up(&latch);
    rs_test_latch_init(&latch, 1);
    struct record third;
    record_init(&third, loop, &latch);
    assert_int_equal(rs_event_loop_schedule_now(loop, &third.task), 0);
    rs_test_latch_await(&latch, "a task after the second restart");
    rs_test_latch_clean_up(&latch);
}

/* ---- EL5 ---- */

static void stop_from_loop(void *arg)
{
    rs_event_loop *loop = arg;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(rs_event_loop_stop(loop), 0);
    }
}

static void test_el5_many_stops_then_destroy(void **state)
{
    (void)state;
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_stop(loop), 0); /* not running: no-op */
    assert_int_equal(rs_event_loop_wait_for_stop(loop), 0);
    assert_int_equal(rs_event_loop_run(loop), 0);
    rs_test_run_on_loop(loop, stop_from_loop, loop);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(rs_event_loop_stop(loop), 0);
    }
    assert_int_equal(rs_event_loop_wait_for_stop(loop), 0);
    assert_int_equal(rs_event_loop_wait_for_stop(loop), 0);
    assert_int_equal(rs_event_loop_stop(loop), 0);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
}

/* ---- EL6 ---- */

static unsigned independent_cpu_count(void)
{
#ifdef _WIN32
    DWORD_PTR process_mask = 0, system_mask = 0;
    assert_true(GetProcessAffinityMask(GetCurrentProcess(), &process_mask, &system_mask));
    unsigned n = 0;
    for (; process_mask; process_mask &= process_mask - 1) {
        n++;
    }
    return n;
#elif defined(__linux__)
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    return (unsigned)CPU_COUNT(&set);
#else
    return rs_usable_cpu_count();
#endif
}

static void assert_group_serves_its_loops(rs_event_loop_group *group)
{
    size_t n = rs_event_loop_group_count(group);
    for (int i = 0; i < 64; i++) {
        rs_event_loop *next = rs_event_loop_group_get_next(group);
        bool member = false;
        for (size_t j = 0; j < n; j++) {
            member = member || next == rs_event_loop_group_get_loop(group, j);
        }
        assert_true(member);
    }
    assert_null_with(rs_event_loop_group_get_loop(group, n), RS_ERROR_INVALID_ARGUMENT);
}

static void test_el6_group_default_size_is_affinity_aware(void **state)
{
    (void)state;
    rs_event_loop_group_options options = {.loop_count = 0};
    rs_event_loop_group *group = rs_event_loop_group_new(&options);
    assert_non_null(group);
    assert_int_equal(rs_event_loop_group_count(group), independent_cpu_count());
    assert_int_equal(rs_usable_cpu_count(), independent_cpu_count());
    assert_group_serves_its_loops(group);
    assert_int_equal(rs_event_loop_group_release(group), 0);

    /* Narrow this process to one CPU: the default group follows the mask,
     * not the machine's processor count. */
#ifdef _WIN32
    DWORD_PTR process_mask = 0, system_mask = 0;
    assert_true(GetProcessAffinityMask(GetCurrentProcess(), &process_mask, &system_mask));
    DWORD_PTR one = process_mask & (~process_mask + 1);
    assert_true(SetProcessAffinityMask(GetCurrentProcess(), one));
#elif defined(__linux__)
    cpu_set_t saved, one;
    assert_int_equal(sched_getaffinity(0, sizeof saved, &saved), 0);
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &saved)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
#endif
#if defined(_WIN32) || defined(__linux__)
    unsigned narrowed = rs_usable_cpu_count();
    group = rs_event_loop_group_new(&options);
#ifdef _WIN32
    SetProcessAffinityMask(GetCurrentProcess(), process_mask);
#else
    sched_setaffinity(0, sizeof saved, &saved);
#endif
    assert_int_equal(narrowed, 1);
    assert_non_null(group);
    assert_int_equal(rs_event_loop_group_count(group), 1);
    assert_group_serves_its_loops(group);
    assert_int_equal(rs_event_loop_group_release(group), 0);
#endif

    options.loop_count = 3;
    group = rs_event_loop_group_new(&options);
    assert_non_null(group);
    assert_int_equal(rs_event_loop_group_count(group), 3);
    assert_group_serves_its_loops(group);
    assert_int_equal(rs_event_loop_group_release(group), 0);
}

/* ---- EL7 ---- */

struct el7 {
    rs_task task;
    rs_event_loop_group *group;
    struct rs_test_latch shutdown;
    volatile long shutdowns;
    int release_rc;
};

static void el7_on_shutdown(void *user_data)
{
    struct el7 *t = user_data;
    rs__atomic_add(&t->shutdowns, 1);
    rs_test_latch_signal(&t->shutdown);
}

static void el7_release_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    struct el7 *t = arg;
    t->release_rc = rs_event_loop_group_release(t->group);
}

static void test_el7_group_released_from_its_own_loop(void **state)
{
    (void)state;
    struct el7 t = {0};
    rs_test_latch_init(&t.shutdown, 1);
    rs_event_loop_group_options options = {
        .loop_count = 2, .on_shutdown = el7_on_shutdown, .shutdown_user_data = &t};
    t.group = rs_event_loop_group_new(&options);
    assert_non_null(t.group);
    assert_ptr_equal(rs_event_loop_group_acquire(t.group), t.group);
    assert_int_equal(rs_event_loop_group_release(t.group), 0);
    assert_int_equal(t.shutdowns, 0);

    rs_task_init(&t.task, el7_release_task, &t, "el7 release");
    assert_int_equal(rs_event_loop_schedule_now(rs_event_loop_group_get_loop(t.group, 1), &t.task),
                     0);
    rs_test_latch_await(&t.shutdown, "the group's shutdown callback");
    assert_int_equal(t.release_rc, 0);
    assert_int_equal(t.shutdowns, 1);
    rs_test_latch_clean_up(&t.shutdown);
    /* The shutdown thread released the group's memory before calling back. */
}

/* ---- EL8 ---- */

#define EL8_TASKS 100000
#define EL8_BATCH 500

struct el8_task {
    rs_task task;
    long seq;
};

struct el8 {
    rs_event_loop *loop;
    struct el8_task *tasks;
    rs__mutex submit_lock;
    long next_submit;
    long next_expected;
    long out_of_order;
    rs_task feeder;
    struct rs_test_latch done;
};

static void el8_run(rs_task *task, void *arg, rs_task_status status)
{
    struct el8_task *et = RS__CONTAINER_OF(task, struct el8_task, task);
    struct el8 *t = arg;
    if (status != RS_TASK_STATUS_RUN || et->seq != t->next_expected) {
        t->out_of_order++;
    }
    t->next_expected++;
    if (t->next_expected == EL8_TASKS) {
        rs_test_latch_signal(&t->done);
    }
}

/* Submits one task; the lock makes "submission order" a total order across
 * the two submitting threads. Returns false when all were submitted. */
static bool el8_submit(struct el8 *t)
{
    rs__mutex_lock(&t->submit_lock);
    long seq = t->next_submit;
    if (seq == EL8_TASKS) {
        rs__mutex_unlock(&t->submit_lock);
        return false;
    }
    t->next_submit++;
    struct el8_task *et = &t->tasks[seq];
    et->seq = seq;
    rs_task_init(&et->task, el8_run, t, "el8");
    int rc = rs_event_loop_schedule_serialized(t->loop, &et->task);
    rs__mutex_unlock(&t->submit_lock);
    assert_int_equal(rc, 0);
    return true;
}

static void el8_feeder(rs_task *task, void *arg, rs_task_status status)
{
    struct el8 *t = arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    bool more = true;
    for (int i = 0; i < EL8_BATCH && more; i++) {
        more = el8_submit(t);
    }
    if (more) {
        rs_task_init(task, el8_feeder, t, "el8 feeder");
        rs_event_loop_schedule_now(t->loop, task);
    }
}

static void test_el8_serialized_tasks_keep_submission_order(void **state)
{
    struct el8 t = {.loop = *state};
    t.tasks = calloc(EL8_TASKS, sizeof *t.tasks);
    assert_non_null(t.tasks);
    rs__mutex_init(&t.submit_lock);
    rs_test_latch_init(&t.done, 1);
    rs_task_init(&t.feeder, el8_feeder, &t, "el8 feeder");
    assert_int_equal(rs_event_loop_schedule_now(t.loop, &t.feeder), 0);
    while (el8_submit(&t)) {
    }
    rs_test_latch_await(&t.done, "100k serialized tasks");
    assert_int_equal(t.next_expected, EL8_TASKS);
    assert_int_equal(t.out_of_order, 0);
    rs_test_latch_clean_up(&t.done);
    rs__mutex_clean_up(&t.submit_lock);
    free(t.tasks);
}

/* ---- EL9 ---- */

static void test_el9_backend_creation_contract(void **state)
{
    (void)state;
#if RS_TEST_IOCP
    const char *expected = "iocp";
    rs_backend mine = RS_BACKEND_IOCP, other = RS_BACKEND_LIBEVENT;
#else
    const char *expected = "libevent";
    rs_backend mine = RS_BACKEND_LIBEVENT, other = RS_BACKEND_IOCP;
#endif
    assert_string_equal(rs_backend_name(), expected);
    assert_int_equal(rs_backend_id(), mine);

    rs_event_loop_options options = {.backend = other};
    assert_null_with(rs_event_loop_new(&options), RS_ERROR_PLATFORM_NOT_SUPPORTED);
    rs_event_loop_group_options group_options = {.loop_count = 1, .backend = other};
    assert_null_with(rs_event_loop_group_new(&group_options), RS_ERROR_PLATFORM_NOT_SUPPORTED);

    options.backend = mine;
    rs_event_loop *loop = rs_event_loop_new(&options);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_backend(loop), mine);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    options.backend = RS_BACKEND_DEFAULT;
    loop = rs_event_loop_new(&options);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_backend(loop), mine);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
}

/* ---- EL10 ---- */

#define EL10_TASKS 40

static void join_loop_thread(void *arg)
{
    void **args = arg;
    rs_event_loop_wait_for_stop(args[0]);
    rs_test_latch_signal(args[1]);
}

struct el10_batch {
    rs_event_loop *loop;
    struct record *tasks;
    struct rs_test_latch *latch;
    int failures;
};

/* On the loop thread, so that no task runs before all are scheduled, however
 * slowly the scheduling goes (valgrind, a loaded machine). */
static void el10_schedule(void *arg)
{
    struct el10_batch *b = arg;
    struct record *tasks = b->tasks;
    uint64_t base = rs_event_loop_now(b->loop) + 5000000u;
    /* Deadlines 0..78 ms after base, scheduled in a scrambled order, two
     * tasks per deadline so equal times must keep scheduling order. */
    for (int i = 0; i < EL10_TASKS; i++) {
        int k = (i * 17) % EL10_TASKS;
        record_init(&tasks[k], b->loop, b->latch);
        tasks[k].due_ns = base + (uint64_t)(k / 2) * 4000000u;
        tasks[k].sched_pos = i;
        if (rs_event_loop_schedule_at(b->loop, &tasks[k].task, tasks[k].due_ns) != 0) {
            b->failures++;
        }
    }
}

static void test_el10_timed_tasks_in_time_order_never_early(void **state)
{
    rs_event_loop *loop = *state;
    struct record tasks[EL10_TASKS];
    struct rs_test_latch latch;
    rs_test_latch_init(&latch, EL10_TASKS);
    order_counter = 0;
    struct el10_batch batch = {loop, tasks, &latch, 0};
    rs_test_run_on_loop(loop, el10_schedule, &batch);
    assert_int_equal(batch.failures, 0);
    rs_test_latch_await(&latch, "40 timed tasks");
    for (int k = 0; k < EL10_TASKS; k++) {
        assert_int_equal(tasks[k].runs, 1);
        assert_true(tasks[k].ran_at_ns >= tasks[k].due_ns);
        if (k > 0) {
            assert_true(tasks[k].due_ns >= tasks[k - 1].due_ns);
            if (tasks[k].due_ns > tasks[k - 1].due_ns) {
                assert_true(tasks[k].order > tasks[k - 1].order);
            }
        }
    }
    for (int k = 0; k + 1 < EL10_TASKS; k += 2) {
        /* Same deadline: the one scheduled first runs first. */
        bool first_scheduled_first = tasks[k].sched_pos < tasks[k + 1].sched_pos;
        assert_true(first_scheduled_first == (tasks[k].order < tasks[k + 1].order));
    }
    rs_test_latch_clean_up(&latch);

    /* A task an hour away does not keep the loop from stopping. Static: the
     * teardown's destroy cancels it, and so runs it, after this returns. */
    static struct record distant;
    record_init(&distant, loop, NULL);
    uint64_t hour = 3600ull * 1000000000ull;
    assert_int_equal(rs_event_loop_schedule_at(loop, &distant.task, rs_event_loop_now(loop) + hour),
                     0);
    assert_int_equal(rs_event_loop_stop(loop), 0);
    struct rs_test_latch stopped;
    rs_test_latch_init(&stopped, 1);
    void *args[2] = {loop, &stopped};
    rs__thread joiner;
    assert_int_equal(rs__thread_start(&joiner, join_loop_thread, args, "el10 join"), 0);
    rs_test_latch_await(&stopped, "the loop to stop with a distant-future task pending");
    rs__thread_join(&joiner);
    assert_int_equal(distant.runs, 0);
    assert_int_equal(rs_event_loop_run(loop),
                     0); /* the teardown destroys it: distant is cancelled */
    rs_test_latch_clean_up(&stopped);
}

/* ---- EL11 ---- */

struct el11 {
    rs_event_loop *loop;
    struct record inner;
    int cancel_rc;
    long runs_after_cancel;
    bool cancelled_inline;
};

static void el11_cancel_on_loop(void *arg)
{
    struct el11 *t = arg;
    record_init(&t->inner, t->loop, NULL);
    uint64_t later = rs_event_loop_now(t->loop) + 60ull * 1000000000ull;
    assert_int_equal(rs_event_loop_schedule_at(t->loop, &t->inner.task, later), 0);
    t->cancel_rc = rs_event_loop_cancel_task(t->loop, &t->inner.task);
    t->cancelled_inline = t->inner.runs == 1;
}

static void el11_cancel_again_on_loop(void *arg)
{
    struct el11 *t = arg;
    t->cancel_rc = rs_event_loop_cancel_task(t->loop, &t->inner.task);
    t->runs_after_cancel = t->inner.runs;
}

static void test_el11_cancel_from_any_thread(void **state)
{
    rs_event_loop *loop = *state;

    /* From a foreign thread: the function runs CANCELED, on the loop thread. */
    struct rs_test_latch latch;
    rs_test_latch_init(&latch, 1);
    struct record foreign;
    record_init(&foreign, loop, &latch);
    uint64_t later = rs_event_loop_now(loop) + 60ull * 1000000000ull;
    assert_int_equal(rs_event_loop_schedule_at(loop, &foreign.task, later), 0);
    assert_int_equal(rs_event_loop_cancel_task(loop, &foreign.task), 0);
    rs_test_latch_await(&latch, "the cancelled task's callback");
    assert_int_equal(foreign.runs, 1);
    assert_int_equal(foreign.status, RS_TASK_STATUS_CANCELED);
    assert_true(foreign.on_thread);
    assert_int_equal(rs_event_loop_cancel_task(loop, &foreign.task), 0); /* harmless again */
    assert_int_equal(foreign.runs, 1);

    /* From the loop thread: cancelled inline, before cancel returns. */
    struct el11 t = {.loop = loop};
    rs_test_run_on_loop(loop, el11_cancel_on_loop, &t);
    assert_int_equal(t.cancel_rc, 0);
    assert_true(t.cancelled_inline);
    assert_int_equal(t.inner.status, RS_TASK_STATUS_CANCELED);
    assert_true(t.inner.on_thread);
    rs_test_run_on_loop(loop, el11_cancel_again_on_loop, &t);
    assert_int_equal(t.cancel_rc, 0);
    assert_int_equal(t.runs_after_cancel, 1);

    /* A task that already ran: cancel changes nothing, from either side. */
    rs_test_latch_clean_up(&latch);
    rs_test_latch_init(&latch, 1);
    struct record ran;
    record_init(&ran, loop, &latch);
    assert_int_equal(rs_event_loop_schedule_now(loop, &ran.task), 0);
    rs_test_latch_await(&latch, "a task to run");
    assert_int_equal(rs_event_loop_cancel_task(loop, &ran.task), 0);
    t.inner = ran;
    t.inner.task.arg = &t.inner;
    rs_test_run_on_loop(loop, el11_cancel_again_on_loop, &t);
    assert_int_equal(t.runs_after_cancel, 1);
    assert_int_equal(ran.runs, 1);
    assert_int_equal(ran.status, RS_TASK_STATUS_RUN);

    /* A task never scheduled: nothing happens. */
    struct record never;
    record_init(&never, loop, NULL);
    assert_int_equal(rs_event_loop_cancel_task(loop, &never.task), 0);
    assert_int_equal(never.runs, 0);
    rs_test_latch_clean_up(&latch);
}

/* ---- EL12 ---- */

struct el12 {
    rs_event_loop *loop;
    int wait_rc, wait_err, destroy_rc, destroy_err;
};

static void el12_on_loop(void *arg)
{
    struct el12 *t = arg;
    t->wait_rc = rs_event_loop_wait_for_stop(t->loop);
    t->wait_err = rs_last_error();
    t->destroy_rc = rs_event_loop_destroy(t->loop);
    t->destroy_err = rs_last_error();
}

static void test_el12_wait_for_stop_on_own_thread_fails(void **state)
{
    struct el12 t = {.loop = *state};
    rs_test_run_on_loop(t.loop, el12_on_loop, &t);
    assert_int_equal(t.wait_rc, -1);
    assert_string_equal(rs_error_name(t.wait_err), "RS_ERROR_WOULD_DEADLOCK");
    assert_int_equal(t.destroy_rc, -1);
    assert_string_equal(rs_error_name(t.destroy_err), "RS_ERROR_WOULD_DEADLOCK");
    /* The loop is unharmed. */
    struct rs_test_latch latch;
    rs_test_latch_init(&latch, 1);
    struct record r;
    record_init(&r, t.loop, &latch);
    assert_int_equal(rs_event_loop_schedule_now(t.loop, &r.task), 0);
    rs_test_latch_await(&latch, "a task after the refused calls");
    rs_test_latch_clean_up(&latch);
}

/* ---- bad input ---- */

static void test_el_bad_input(void **state)
{
    rs_event_loop *loop = *state;
    rs_task task;
    rs_task_init(&task, NULL, NULL, NULL);
    assert_fails_with(rs_event_loop_schedule_now(NULL, &task), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_schedule_now(loop, NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_schedule_now(loop, &task), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_schedule_at(loop, NULL, 0), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_schedule_serialized(NULL, &task), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_cancel_task(loop, NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_cancel_task(NULL, &task), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_run(NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_stop(NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_wait_for_stop(NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_destroy(NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_false(rs_event_loop_is_on_thread(NULL));
    assert_int_equal(rs_event_loop_now(NULL), 0);

    /* Scheduling a task that is already scheduled fails and changes nothing. */
    struct rs_test_latch latch;
    rs_test_latch_init(&latch, 1);
    struct record r;
    record_init(&r, loop, &latch);
    uint64_t later = rs_event_loop_now(loop) + 60ull * 1000000000ull;
    assert_int_equal(rs_event_loop_schedule_at(loop, &r.task, later), 0);
    assert_fails_with(rs_event_loop_schedule_now(loop, &r.task), RS_ERROR_INVALID_STATE);
    assert_int_equal(r.runs, 0);
    assert_int_equal(rs_event_loop_cancel_task(loop, &r.task), 0);
    rs_test_latch_await(&latch, "the cancelled task");
    assert_int_equal(r.runs, 1);
    assert_int_equal(r.status, RS_TASK_STATUS_CANCELED);
    rs_test_latch_clean_up(&latch);

    /* Double destroy: the second call is refused, not a double free. */
    rs_event_loop *other = rs_event_loop_new(NULL);
    assert_non_null(other);
    assert_int_equal(rs_event_loop_destroy(other), 0);
    assert_fails_with(rs_event_loop_destroy(other), RS_ERROR_INVALID_ARGUMENT);

    assert_null_with(rs_event_loop_group_new(NULL), RS_ERROR_INVALID_ARGUMENT);
    rs_event_loop_group_options too_many = {.loop_count = 5000};
    assert_null_with(rs_event_loop_group_new(&too_many), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_event_loop_group_release(NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_null_with(rs_event_loop_group_get_next(NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_null(rs_event_loop_group_acquire(NULL));
    assert_int_equal(rs_event_loop_group_count(NULL), 0);
}

/* EL3 and EL13 are IOCP scenarios: see test_iocp.c. EL14 is RW1, the
 * readiness watch of a raw socket: see test_watch.c. */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_el1_foreign_thread_tasks_run_on_loop_thread,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_el2_destroy_cancels_future_task_on_destroying_thread,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_el4_stop_then_run_again, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_el5_many_stops_then_destroy, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_el6_group_default_size_is_affinity_aware,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_el7_group_released_from_its_own_loop,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_el8_serialized_tasks_keep_submission_order,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_el9_backend_creation_contract, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_el10_timed_tasks_in_time_order_never_early,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_el11_cancel_from_any_thread, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_el12_wait_for_stop_on_own_thread_fails,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_el_bad_input, rs_test_setup_loop,
                                        rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("event_loop", tests);
}
