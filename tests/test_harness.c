/*
 * HO10, a self-test of the harness: a scenario that fails or times out stops
 * its loops and releases its handles before the next test starts.
 *
 * main() first runs a group of scenarios that fail on purpose, in the ways a
 * real test fails: a bounded wait that times out while a loop thread is
 * calling back into the test (a pipe transfer, a socket echo), an assertion
 * that fails in the middle of a transfer, and a task on a busy loop whose
 * wait times out before it ran. Their names do not start with test_, so the
 * summary does not count their failures. The harness reports to this file
 * what its teardown found for each of them. Then the reported group checks
 * that every one of them failed as intended, that its teardown released
 * what it had left open (library leak check included) without error, that
 * no callback or task reached it afterwards, and that a scenario run after
 * them works on a clean library.
 */
#include "pipe_harness.h"
#include "socket_fixture.h"

#include "../common/atomics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what the harness saw of each deliberately failing scenario ---- */

enum { MAX_OUTCOMES = 16 };

struct seen {
    const char *name;
    struct rs_test_outcome outcome;
};

static struct seen outcomes[MAX_OUTCOMES];
static size_t outcome_count;
static int victims_rc = -1;

static void record_outcome(const char *name, const struct rs_test_outcome *outcome)
{
    if (outcome_count < MAX_OUTCOMES) {
        outcomes[outcome_count].name = name;
        outcomes[outcome_count].outcome = *outcome;
        outcome_count++;
    }
}

static const struct rs_test_outcome *outcome_of(const char *name)
{
    for (size_t i = 0; i < outcome_count; i++) {
        if (strcmp(outcomes[i].name, name) == 0) {
            return &outcomes[i].outcome;
        }
    }
    fail_msg("the scenario %s did not run", name);
    return NULL;
}

/* Calls from a loop into a failed scenario's frame (must stay 0). */
static volatile long stale_calls;

/* ---- the scenarios that fail on purpose ---- */

/* A wait that times out is made to time out quickly; everything else keeps
 * the normal bound. */
enum { SHORT_TIMEOUT_MS = 50 };

static bool free_buffer(void *obj)
{
    free(obj);
    return true;
}

/* Test data owned by the test: a failed scenario must not leak it either
 * (memcheck counts a leak as an error). Owned before what reads it, since
 * the harness releases the newest first. */
static unsigned char *owned_data(size_t len, unsigned seed)
{
    unsigned char *data = pt_make_data(len, seed);
    rs_test_own(data, free_buffer, NULL);
    return data;
}

/* A pipe transfer in small reads: the read loop keeps calling back into the
 * test while it waits. Returns once the reader got the first bytes. */
static struct pipe_test *start_slow_transfer(struct pipe_fixture *f, size_t len)
{
    unsigned char *data = owned_data(len, 10);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = len;
    t->chunk = 4096;
    t->max_reads = 1;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    pt_write(t, data, len, 1);
    pt_await(t, t->received > 0, "the first bytes");
    return t;
}

enum { TRANSFER_LEN = 4u << 20 };

static void victim_pipe_wait_times_out(void **state)
{
    struct pipe_test *t = start_slow_transfer(*state, TRANSFER_LEN);
    rs_test_set_timeout_ms(SHORT_TIMEOUT_MS);
    pt_await(t, t->received > TRANSFER_LEN, "more bytes than were written");
}

static void victim_pipe_assertion_fails(void **state)
{
    struct pipe_test *t = start_slow_transfer(*state, TRANSFER_LEN);
    /* Read under the lock: the reader is still taking bytes. */
    rs_test_counter_lock(&t->counter);
    size_t received = t->received;
    rs_test_counter_unlock(&t->counter);
    assert_int_equal(received, TRANSFER_LEN + 1);
}

static void victim_socket_wait_times_out(void **state)
{
    rs_event_loop *loop = *state;
    /* Owned first, released last: after the sockets that write from it. */
    unsigned char *data = owned_data(TRANSFER_LEN, 11);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, true, 8);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_peer_subscribe(client);
    sk_peer_write(client, data, TRANSFER_LEN);
    sk_peer_wait_bytes(client, 1);
    rs_test_set_timeout_ms(SHORT_TIMEOUT_MS);
    sk_peer_wait_bytes(client, TRANSFER_LEN + 1);
}

/* A task that keeps the loop busy until the scenario's teardown lets it go. */
struct blocker {
    rs_event_loop *loop;
    rs_task task;
    struct rs_test_latch release;
    struct rs_test_latch started;
};

static void block_loop(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    struct blocker *b = arg;
    /* The bound is read before the test may shorten it for its own wait. */
    uint64_t bound = 2 * RS_TEST_TIMEOUT_MS;
    rs_test_latch_signal(&b->started);
    rs_test_latch_wait(&b->release, bound);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* Lets the loop go, then waits until it ran what was queued behind the
 * blocker (the abandoned task among it), and frees the blocker. */
static bool unblock(void *obj)
{
    struct blocker *b = obj;
    rs_test_latch_signal(&b->release);
    rs_test_run_on_loop(b->loop, nothing, NULL);
    rs_test_latch_clean_up(&b->started);
    rs_test_latch_clean_up(&b->release);
    free(b);
    return true;
}

/* Its arg is in the frame of a scenario that has failed. */
static void must_not_run(void *arg)
{
    (void)arg;
    rs__atomic_add(&stale_calls, 1);
}

static void victim_task_wait_times_out(void **state)
{
    rs_event_loop *loop = *state;
    struct blocker *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->loop = loop;
    rs_test_latch_init(&b->release, 1);
    rs_test_latch_init(&b->started, 1);
    rs_task_init(&b->task, block_loop, b, "blocker");
    rs_test_own(b, unblock, NULL);
    assert_int_equal(rs_event_loop_schedule_now(loop, &b->task), 0);
    rs_test_latch_await(&b->started, "the blocking task");
    int ran = 0;
    rs_test_set_timeout_ms(SHORT_TIMEOUT_MS);
    rs_test_run_on_loop(loop, must_not_run, &ran);
}

/* ---- the checks ---- */

static void assert_cleaned_up_after(const char *name, size_t at_least_released)
{
    const struct rs_test_outcome *o = outcome_of(name);
    assert_false(o->body_returned); /* it did fail part-way */
    assert_true(o->released >= at_least_released);
    assert_false(o->release_failed);
    assert_int_equal(o->teardown_rc, 0); /* loops destroyed, no library leak */
    assert_int_equal(rs__atomic_load(&stale_calls), 0);
}

static void test_ho10_failed_group_reports_its_failures(void **state)
{
    (void)state;
    assert_int_equal(victims_rc, 1);
    assert_int_equal(outcome_count, 4);
}

static void test_ho10_timed_out_pipe_scenario_is_cleaned_up(void **state)
{
    (void)state;
    assert_cleaned_up_after("victim_pipe_wait_times_out", 2); /* the pipe, its data */
}

static void test_ho10_failed_assertion_in_pipe_scenario_is_cleaned_up(void **state)
{
    (void)state;
    assert_cleaned_up_after("victim_pipe_assertion_fails", 2);
}

static void test_ho10_timed_out_socket_scenario_is_cleaned_up(void **state)
{
    (void)state;
    /* The server's guard, the client, the accepted peer, the data. */
    assert_cleaned_up_after("victim_socket_wait_times_out", 4);
}

static void test_ho10_timed_out_task_never_runs_into_the_dead_frame(void **state)
{
    (void)state;
    assert_cleaned_up_after("victim_task_wait_times_out", 1);
}

/* The next scenario, on both fixtures, starts from a clean library. */
static void test_ho10_next_scenario_runs_clean(void **state)
{
    struct pipe_fixture *f = *state;
    static const unsigned char hello[] = "after the failures";
    struct pipe_test *t = pt_new(f);
    t->expect = hello;
    t->expect_len = sizeof hello;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    pt_write(t, hello, sizeof hello, 1);
    pt_await(t, t->write_calls == 1 && t->received == sizeof hello, "the write and the read");
    pt_assert_writes_succeeded(t);
    assert_false(t->mismatch);
    pt_close_all(t);
    assert_int_equal(rs__atomic_load(&stale_calls), 0);
}

static void test_ho10_timeouts_scale_with_the_environment(void **state)
{
    (void)state;
    /* A factor in (0, 1000]; anything else reads as 1. */
    double factor = 1.0;
    const char *text = getenv("RS_TEST_TIME_SCALE");
    if (text && *text) {
        char *end = NULL;
        double parsed = strtod(text, &end);
        if (*end == '\0' && parsed > 0.0 && parsed <= 1000.0) {
            factor = parsed;
        }
    }
    assert_int_equal(rs_test_timeout_ms(), (uint64_t)(RS_TEST_BASE_TIMEOUT_MS * factor));
    rs_test_set_timeout_ms(7);
    assert_int_equal(RS_TEST_TIMEOUT_MS, 7);
    rs_test_set_timeout_ms(0);
    assert_int_equal(rs_test_timeout_ms(), (uint64_t)(RS_TEST_BASE_TIMEOUT_MS * factor));
}

int main(void)
{
    const struct CMUnitTest victims[] = {
        cmocka_unit_test_setup_teardown(victim_pipe_wait_times_out, pt_setup_two_loops,
                                        pt_teardown_loops),
        cmocka_unit_test_setup_teardown(victim_pipe_assertion_fails, pt_setup_one_loop,
                                        pt_teardown_loops),
        cmocka_unit_test_setup_teardown(victim_socket_wait_times_out, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(victim_task_wait_times_out, rs_test_setup_loop,
                                        rs_test_teardown_loop),
    };
    print_message("HO10: the %d scenarios of the next group fail on purpose\n",
                  (int)RS__ARRAY_LEN(victims));
    rs_test_set_outcome_sink(record_outcome);
    victims_rc = RS_TEST_MAIN("harness_failing_on_purpose", victims);
    rs_test_set_outcome_sink(NULL);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ho10_failed_group_reports_its_failures),
        cmocka_unit_test(test_ho10_timed_out_pipe_scenario_is_cleaned_up),
        cmocka_unit_test(test_ho10_failed_assertion_in_pipe_scenario_is_cleaned_up),
        cmocka_unit_test(test_ho10_timed_out_socket_scenario_is_cleaned_up),
        cmocka_unit_test(test_ho10_timed_out_task_never_runs_into_the_dead_frame),
        cmocka_unit_test_setup_teardown(test_ho10_next_scenario_runs_clean, pt_setup_two_loops,
                                        pt_teardown_loops),
        cmocka_unit_test(test_ho10_timeouts_scale_with_the_environment),
    };
    return RS_TEST_MAIN("harness", tests);
}
