#include "rs_test.h"

#include <stdio.h>
#include <stdlib.h>

void rs_test_latch_init(struct rs_test_latch *latch, long count)
{
    rs__mutex_init(&latch->lock);
    rs__condvar_init(&latch->cond);
    latch->remaining = count;
}

void rs_test_latch_clean_up(struct rs_test_latch *latch)
{
    rs__condvar_clean_up(&latch->cond);
    rs__mutex_clean_up(&latch->lock);
}

void rs_test_latch_signal(struct rs_test_latch *latch)
{
    rs__mutex_lock(&latch->lock);
    if (latch->remaining > 0 && --latch->remaining == 0) {
        rs__condvar_broadcast(&latch->cond);
    }
    rs__mutex_unlock(&latch->lock);
}

bool rs_test_latch_wait(struct rs_test_latch *latch, uint64_t timeout_ms)
{
    uint64_t deadline = rs__clock_now_ns() + timeout_ms * 1000000u;
    rs__mutex_lock(&latch->lock);
    while (latch->remaining > 0) {
        uint64_t now = rs__clock_now_ns();
        if (now >= deadline) {
            break;
        }
        rs__condvar_wait_ns(&latch->cond, &latch->lock, deadline - now);
    }
    bool done = latch->remaining == 0;
    rs__mutex_unlock(&latch->lock);
    return done;
}

int rs_test_setup_library(void **state)
{
    (void)state;
    return rs_library_init();
}

int rs_test_teardown_library(void **state)
{
    (void)state;
    if (rs_library_cleanup() != 0) {
        return -1;
    }
    if (rs_live_allocations() != 0) {
        print_error("leak check: %lld blocks still allocated by the library\n",
                    (long long)rs_live_allocations());
        return -1;
    }
    return 0;
}

int rs_test_setup_loop(void **state)
{
    if (rs_library_init() != 0) {
        return -1;
    }
    rs_event_loop *loop = rs_event_loop_new(NULL);
    if (!loop || rs_event_loop_run(loop) != 0) {
        return -1;
    }
    *state = loop;
    return 0;
}

int rs_test_teardown_loop(void **state)
{
    if (rs_event_loop_destroy(*state) != 0) {
        return -1;
    }
    return rs_test_teardown_library(state);
}

struct on_loop {
    rs_task task;
    void (*fn)(void *arg);
    void *arg;
    struct rs_test_latch done;
};

static void on_loop_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct on_loop *ol = arg;
    if (status == RS_TASK_STATUS_RUN) {
        ol->fn(ol->arg);
    }
    rs_test_latch_signal(&ol->done);
}

void rs_test_run_on_loop(rs_event_loop *loop, void (*fn)(void *arg), void *arg)
{
    struct on_loop ol = {.fn = fn, .arg = arg};
    rs_test_latch_init(&ol.done, 1);
    rs_task_init(&ol.task, on_loop_task, &ol, "rs_test_run_on_loop");
    assert_int_equal(rs_event_loop_schedule_now(loop, &ol.task), 0);
    rs_test_latch_await(&ol.done, "a task on the loop thread");
    rs_test_latch_clean_up(&ol.done);
}

int rs_test_run_group(const char *group, const struct CMUnitTest *tests, size_t count)
{
    int failed = _cmocka_run_group_tests(group, tests, count, NULL, NULL);
    printf("reseau-group %s backend=%s failed=%d\n", group, rs_backend_name(), failed);
    fflush(stdout);
    return failed ? 1 : 0;
}
