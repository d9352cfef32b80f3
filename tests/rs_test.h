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

/* Every wait in a test is bounded by this; a hang fails with a message. */
#define RS_TEST_TIMEOUT_MS 20000

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

/* A count-down latch: wait until `count` signals arrived, with a bound. */
struct rs_test_latch {
    rs__mutex lock;
    rs__condvar cond;
    long remaining;
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
            fail_msg("timed out waiting for %s", (what));                                          \
        }                                                                                          \
    } while (0)

/* Fixture: library initialised, and a leak check at the end. */
int rs_test_setup_library(void **state);
int rs_test_teardown_library(void **state);

/* Fixture: library initialised and one running loop in *state. */
int rs_test_setup_loop(void **state);
int rs_test_teardown_loop(void **state);

/* Runs fn(arg) on the loop thread and waits for it (bounded). */
void rs_test_run_on_loop(rs_event_loop *loop, void (*fn)(void *arg), void *arg);

/* Copies the loopback interface's name as the OS reports it (IFF_LOOPBACK;
 * on Windows the software-loopback adapter's NDIS name); false if none. */
bool rs_test_loopback_interface(char *name, size_t size);

/* Runs a CMocka group and prints the per-backend line the summary script reads.
 * Returns 0 or 1 (CMocka's count of failures could read as SKIP/ERROR). */
int rs_test_run_group(const char *group, const struct CMUnitTest *tests, size_t count);
#define RS_TEST_MAIN(group, tests)                                                                 \
    rs_test_run_group((group), (tests), sizeof(tests) / sizeof((tests)[0]))

#endif
