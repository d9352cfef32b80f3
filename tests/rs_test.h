/*
 * The shared test harness: CMocka plus a few helpers so test bodies read like
 * the scenario list. Tests may use common/ internals (threads, clock); they
 * never depend on a backend unless the scenario is backend-specific, and then
 * they report a skip with its reason on the other backend.
 */
#ifndef RS_TEST_H
#define RS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <reseau/reseau.h>

#include "../common/clock.h"
#include "../common/compat.h"
#include "../common/thread.h"

/*
 * Every wait in a test is bounded by this; a hang fails with a message. The
 * bound is RS_TEST_BASE_TIMEOUT_MS times the factor in the environment
 * variable RS_TEST_TIME_SCALE (a positive number, default 1): a slow or
 * loaded machine, or a run under valgrind, sets a larger factor instead of
 * every test guessing at speed. rs_test_set_timeout_ms overrides it for the
 * current test only (the harness self-test makes waits time out on purpose).
 */
#define RS_TEST_BASE_TIMEOUT_MS 20000
uint64_t rs_test_timeout_ms(void);
void rs_test_set_timeout_ms(uint64_t ms);
#define RS_TEST_TIMEOUT_MS rs_test_timeout_ms()

/* Reports a CMocka skip with its reason on the test's output. */
#define RS_TEST_SKIP(reason)                                                                       \
    do {                                                                                           \
        print_message("[  SKIP    ] reason: %s\n", (reason));                                      \
        skip();                                                                                    \
    } while (0)

/* Asserts that a call failed with -1 and the given error code. */
#define assert_fails_with(call, code)                                                              \
    do {                                                                                           \
        int rs_test_rc_ = (call);                                                                  \
        assert_int_equal(rs_test_rc_, -1);                                                         \
        assert_string_equal(rs_error_name(rs_last_error()), rs_error_name(code));                  \
    } while (0)

#define assert_null_with(call, code)                                                               \
    do {                                                                                           \
        assert_null(call);                                                                         \
        assert_string_equal(rs_error_name(rs_last_error()), rs_error_name(code));                  \
    } while (0)

/*
 * A counter that callbacks bump from any thread and a test waits on: the one
 * way scenarios count callbacks, bytes or events. Waits are bounded.
 */
struct rs_test_counter {
    rs__mutex lock;
    rs__condvar cond;
    long long value;
};

void rs_test_counter_init(struct rs_test_counter *counter);
void rs_test_counter_clean_up(struct rs_test_counter *counter);
/* Adds n (may be negative) and wakes waiters. */
void rs_test_counter_add(struct rs_test_counter *counter, long long n);
long long rs_test_counter_get(struct rs_test_counter *counter);
/* True when the value reached at least `target` within timeout_ms. */
bool rs_test_counter_wait_at_least(struct rs_test_counter *counter, long long target,
                                   uint64_t timeout_ms);
/* Fails the test with `what` when the value does not reach `target` in RS_TEST_TIMEOUT_MS. */
#define rs_test_counter_await(counter, target, what)                                               \
    do {                                                                                           \
        if (!rs_test_counter_wait_at_least((counter), (target), RS_TEST_TIMEOUT_MS)) {             \
            rs_test_fail_timeout(what);                                                            \
        }                                                                                          \
    } while (0)

/*
 * A scenario whose callbacks record more than a count (bytes read, the last
 * error, flags) keeps that record under its counter's lock, and the counter
 * counts the records: rs_test_counter_lock, change the fields, then
 * rs_test_counter_unlock_add(counter, 1), which wakes the waiters (or
 * rs_test_counter_unlock after only reading). rs_test_counter_await_until
 * waits, bounded, until expr (read under the lock) holds.
 */
void rs_test_counter_lock(struct rs_test_counter *counter);
void rs_test_counter_unlock(struct rs_test_counter *counter);
/* Adds n, wakes waiters and unlocks (the lock is held). */
void rs_test_counter_unlock_add(struct rs_test_counter *counter, long long n);
/* With the lock held: waits for the next change, or until deadline_ns by
 * rs__clock_now_ns; false if the deadline had passed. */
bool rs_test_counter_wait_change(struct rs_test_counter *counter, uint64_t deadline_ns);
#define rs_test_counter_await_until(counter, expr, what)                                           \
    do {                                                                                           \
        uint64_t rs_deadline_ = rs__clock_now_ns() + RS_TEST_TIMEOUT_MS * 1000000ull;              \
        rs_test_counter_lock(counter);                                                             \
        while (!(expr)) {                                                                          \
            if (!rs_test_counter_wait_change((counter), rs_deadline_)) {                           \
                rs_test_counter_unlock(counter);                                                   \
                rs_test_fail_timeout(what);                                                        \
            }                                                                                      \
        }                                                                                          \
        rs_test_counter_unlock(counter);                                                           \
    } while (0)

/* A count-down latch: wait until `count` signals arrived, with a bound. A
 * counter (above) of the signals, waited on until it reaches `count`. */
struct rs_test_latch {
    struct rs_test_counter signals;
    long count;
};

void rs_test_latch_init(struct rs_test_latch *latch, long count);
void rs_test_latch_clean_up(struct rs_test_latch *latch);
void rs_test_latch_signal(struct rs_test_latch *latch);
/* True when the count reached zero within timeout_ms. */
bool rs_test_latch_wait(struct rs_test_latch *latch, uint64_t timeout_ms);
/* Fails the test with `what` when the latch does not reach zero in RS_TEST_TIMEOUT_MS. */
#define rs_test_latch_await(latch, what)                                                           \
    do {                                                                                           \
        if (!rs_test_latch_wait((latch), RS_TEST_TIMEOUT_MS)) {                                    \
            rs_test_fail_timeout(what);                                                            \
        }                                                                                          \
    } while (0)

/*
 * Resources a test owns (HO10). A test that fails or times out leaves its
 * body by CMocka's longjmp: nothing after the failing line runs, and the
 * body's stack frame is gone. So whatever a loop thread may still call back
 * into lives on the heap and is registered here; the harness's teardown
 * (every test run by rs_test_run_group gets it, before the fixture's own
 * teardown destroys the loops) releases what is still registered, newest
 * first, so that the next test starts with no loop thread calling into the
 * old test and the library's leak check clean. A test whose body returned
 * with resources still registered fails: it forgot to close something.
 * Register a buffer before the objects that read or write it, so that they
 * are released before it is.
 *
 * release(obj) stops every callback into obj and frees it; it returns false
 * if it could not (then obj is leaked on purpose rather than freed under a
 * callback). abandon(obj), which may be NULL, runs when a harness wait
 * times out, before the failure unwinds the body: it cuts obj's links into
 * the body's stack frame.
 */
void rs_test_own(void *obj, bool (*release)(void *obj), void (*abandon)(void *obj));
/* Forgets obj (the test closed it itself). */
void rs_test_disown(void *obj);
/* Runs the abandon functions of what the current test owns. */
void rs_test_abandon_owned(void);
/* Fails the current test with "timed out waiting for `what`", after cutting
 * what it owns loose from its frame. */
#define rs_test_fail_timeout(what)                                                                 \
    do {                                                                                           \
        rs_test_abandon_owned();                                                                   \
        fail_msg("timed out waiting for %s", (what));                                              \
    } while (0)

/* What the harness saw of one test, for its self-test. */
struct rs_test_outcome {
    bool body_returned;  /* false: the body failed (or was skipped) part-way */
    size_t released;     /* resources the teardown had to release */
    bool release_failed; /* one of them could not be released */
    int teardown_rc;     /* the whole teardown's result (0 = clean) */
};
/* Called after each test's teardown, with the test's name. NULL: none. */
void rs_test_set_outcome_sink(void (*sink)(const char *name, const struct rs_test_outcome *));

/* Fixture: library initialised, and a leak check at the end. */
int rs_test_setup_library(void **state);
int rs_test_teardown_library(void **state);

/* Fixture: library initialised and one running loop in *state. */
int rs_test_setup_loop(void **state);
int rs_test_teardown_loop(void **state);

/* Runs fn(arg) on the loop thread and waits for it (bounded). If the wait
 * times out before fn started, fn never runs (its arg may be in the failed
 * test's dead frame); once started, the wait lasts until fn returned. */
void rs_test_run_on_loop(rs_event_loop *loop, void (*fn)(void *arg), void *arg);
/* The same, ms after now by the loop's clock: a bounded way to let the
 * loop's own timers pass. */
void rs_test_run_on_loop_after(rs_event_loop *loop, uint64_t ms, void (*fn)(void *arg), void *arg);

/* Copies the loopback interface's name as the OS reports it (IFF_LOOPBACK;
 * on Windows the software-loopback adapter's NDIS name); false if none. */
bool rs_test_loopback_interface(char *name, size_t size);

/* True when the test runs under Wine (ntdll exports wine_get_version); for
 * skips whose reason is a Wine limitation, the check still running on
 * Windows. */
bool rs_test_under_wine(void);

/* Runs a CMocka group and prints the per-backend line the summary script reads.
 * Every test gets the harness's setup and teardown around its own (owned
 * resources, timeout override). The environment variable RS_TEST_FILTER,
 * if set, selects tests by name (CMocka's cmocka_set_test_filter pattern:
 * `*` and `?` wildcards).
 * Returns 0 or 1 (CMocka's count of failures could read as SKIP/ERROR). */
int rs_test_run_group(const char *group, const struct CMUnitTest *tests, size_t count);
#define RS_TEST_MAIN(group, tests)                                                                 \
    rs_test_run_group((group), (tests), sizeof(tests) / sizeof((tests)[0]))

#endif
