/* Cross-thread tasks: producer threads racing the loop's drain and its last
 * look before a wait lose no wake-up (EL15), and tasks queued while the loop
 * is busy cost no wake-up (EL16). On whichever backend is built. */
#include "rs_test.h"

#include "../common/atomics.h"

#include <stdlib.h>
#include <string.h>

/* ---- EL15 ---- */

enum {
    EL15_PRODUCERS = 4,
    EL15_TASKS = 5000, /* per producer */
    /* Every this many tasks a producer waits until its task ran, so the
     * loop runs dry and goes to its last look and its wait while the other
     * producers keep scheduling. */
    EL15_HANDOFF_EVERY = 8,
};

struct el15;

struct el15_producer {
    struct el15 *t;
    rs_task tasks[EL15_TASKS];
    struct rs_test_counter handed_off; /* this producer's hand-off tasks that ran */
    long scheduled;
    bool schedule_failed;
    bool handoff_timed_out;
    rs__thread thread;
};

struct el15 {
    rs_event_loop *loop;
    struct rs_test_counter ran;
    volatile long wrong_thread; /* tasks run off the loop's thread */
    volatile long canceled;
    struct el15_producer producers[EL15_PRODUCERS];
};

static bool el15_is_handoff(long i)
{
    return i % EL15_HANDOFF_EVERY == EL15_HANDOFF_EVERY - 1;
}

static void el15_task(rs_task *task, void *arg, rs_task_status status)
{
    struct el15_producer *p = arg;
    if (!rs_event_loop_is_on_thread(p->t->loop)) {
        rs__atomic_add(&p->t->wrong_thread, 1);
    }
    if (status != RS_TASK_STATUS_RUN) {
        rs__atomic_add(&p->t->canceled, 1);
    }
    if (el15_is_handoff(task - p->tasks)) {
        rs_test_counter_add(&p->handed_off, 1);
    }
    rs_test_counter_add(&p->t->ran, 1);
}

static void el15_produce(void *arg)
{
    struct el15_producer *p = arg;
    long handoffs = 0;
    for (long i = 0; i < EL15_TASKS; i++) {
        rs_task_init(&p->tasks[i], el15_task, p, "el15");
        if (rs_event_loop_schedule_now(p->t->loop, &p->tasks[i]) != 0) {
            p->schedule_failed = true;
            return;
        }
        p->scheduled++;
        if (el15_is_handoff(i)) {
            handoffs++;
            if (!rs_test_counter_wait_at_least(&p->handed_off, handoffs, RS_TEST_TIMEOUT_MS)) {
                p->handoff_timed_out = true;
                return;
            }
        }
    }
}

static void test_el15_producers_racing_the_drain_lose_no_wake_up(void **state)
{
    struct el15 *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->loop = *state;
    rs_test_counter_init(&t->ran);
    for (int i = 0; i < EL15_PRODUCERS; i++) {
        struct el15_producer *p = &t->producers[i];
        p->t = t;
        rs_test_counter_init(&p->handed_off);
    }
    int started = 0;
    for (; started < EL15_PRODUCERS; started++) {
        struct el15_producer *p = &t->producers[started];
        if (rs__thread_start(&p->thread, el15_produce, p, "el15 producer") != 0) {
            break;
        }
    }
    /* Producers return by themselves: a hand-off waits a bounded time. */
    for (int i = 0; i < started; i++) {
        rs__thread_join(&t->producers[i].thread);
    }
    long scheduled = 0;
    bool failed = false, timed_out = false;
    for (int i = 0; i < started; i++) {
        scheduled += t->producers[i].scheduled;
        failed = failed || t->producers[i].schedule_failed;
        timed_out = timed_out || t->producers[i].handoff_timed_out;
    }
    /* Every task scheduled runs (the loop must keep running them after the
     * producers stopped), so its memory can go afterwards. */
    bool all_ran = rs_test_counter_wait_at_least(&t->ran, scheduled, RS_TEST_TIMEOUT_MS);
    long long ran = rs_test_counter_get(&t->ran);
    long wrong_thread = rs__atomic_load(&t->wrong_thread);
    long canceled = rs__atomic_load(&t->canceled);
    if (all_ran) {
        for (int i = 0; i < EL15_PRODUCERS; i++) {
            rs_test_counter_clean_up(&t->producers[i].handed_off);
        }
        rs_test_counter_clean_up(&t->ran);
        free(t);
    } /* else leaked on purpose: tasks still queued call into it */
    assert_int_equal(started, EL15_PRODUCERS);
    assert_false(failed);
    assert_false(timed_out);
    assert_true(all_ran);
    assert_int_equal(scheduled, (long)EL15_PRODUCERS * EL15_TASKS);
    assert_int_equal(ran, scheduled);
    assert_int_equal(wrong_thread, 0);
    assert_int_equal(canceled, 0);
}

/* ---- EL16 ---- */

enum { EL16_TASKS = 1000 };

struct el16 {
    rs_event_loop *loop;
    rs_task blocker;
    rs_task tasks[EL16_TASKS];
    rs_task late;
    struct rs_test_counter blocker_started;
    struct rs_test_counter release;
    struct rs_test_counter ran;
    bool release_timed_out;
};

/* Keeps the loop busy until the test thread has queued the tasks. */
static void el16_blocker(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct el16 *t = arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    rs_test_counter_add(&t->blocker_started, 1);
    t->release_timed_out = !rs_test_counter_wait_at_least(&t->release, 1, RS_TEST_TIMEOUT_MS);
}

static void el16_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    struct el16 *t = arg;
    rs_test_counter_add(&t->ran, 1);
}

static uint64_t el16_wakeups(rs_event_loop *loop)
{
    rs_event_loop_metrics m;
    assert_int_equal(rs_event_loop_get_metrics(loop, &m, sizeof m), 0);
    return m.wakeups;
}

/* A failed test lets the blocker return; the state is leaked on purpose,
 * since tasks still queued call into it when the loop is destroyed. */
static bool el16_release(void *obj)
{
    rs_test_counter_add(&((struct el16 *)obj)->release, 1);
    return false;
}

static void test_el16_tasks_queued_while_the_loop_is_busy_cost_no_wake_up(void **state)
{
    struct el16 *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->loop = *state;
    rs_test_counter_init(&t->blocker_started);
    rs_test_counter_init(&t->release);
    rs_test_counter_init(&t->ran);
    rs_task_init(&t->blocker, el16_blocker, t, "el16 blocker");
    rs_task_init(&t->late, el16_task, t, "el16 late");

    uint64_t before = el16_wakeups(t->loop);
    assert_int_equal(rs_event_loop_schedule_now(t->loop, &t->blocker), 0);
    /* From here a failure releases the blocker before the loop is torn down. */
    rs_test_own(t, el16_release, NULL);
    rs_test_counter_await(&t->blocker_started, 1, "the blocking task to start");
    for (int i = 0; i < EL16_TASKS; i++) {
        rs_task_init(&t->tasks[i], el16_task, t, "el16");
        assert_int_equal(rs_event_loop_schedule_now(t->loop, &t->tasks[i]), 0);
    }
    rs_test_counter_add(&t->release, 1);
    rs_test_counter_await(&t->ran, EL16_TASKS, "the tasks queued while the loop was busy");
    assert_false(t->release_timed_out);
    /* Exactly one: the blocker's own (the loop was waiting, or had not yet
     * looked, with the flag down), received by the time the tasks after it
     * ran, since the loop's look before its next wait finds them queued and
     * only polls, which reads it. The tasks queued while the blocker ran find
     * the flag still raised and cost none. */
    uint64_t busy = el16_wakeups(t->loop) - before;
    assert_int_equal(busy, 1);

    /* Once the loop has gone back to its wait, a task wakes it again. */
    assert_int_equal(rs_event_loop_schedule_now(t->loop, &t->late), 0);
    rs_test_counter_await(&t->ran, EL16_TASKS + 1, "a task scheduled after the loop went idle");
    rs_test_disown(t);
    rs_test_counter_clean_up(&t->blocker_started);
    rs_test_counter_clean_up(&t->release);
    rs_test_counter_clean_up(&t->ran);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_el15_producers_racing_the_drain_lose_no_wake_up,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(
            test_el16_tasks_queued_while_the_loop_is_busy_cost_no_wake_up, rs_test_setup_loop,
            rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("task_queue", tests);
}
