/*
 * Allocation-failure injection: each scenario is repeated with allocation
 * 1, 2, 3, ... failing, until a run completes with no failure injected. Every
 * run must fail cleanly (-1 and RS_ERROR_OUT_OF_MEMORY), leak nothing (the
 * library's own block counter, so the check works under Wine too) and call
 * every callback it owes exactly once.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_failure_loop_life_cycle),
        cmocka_unit_test(test_alloc_failure_group),
        cmocka_unit_test(test_alloc_failure_resolve),
    };
    return RS_TEST_MAIN("alloc_failure", tests);
}
