/* Library scenarios LB1-LB4 (test-scenarios.md). */
#include "rs_test.h"

#include "../common/atomics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if RS_TEST_IOCP
#include "../backends/iocp/iocp_backend.h"
#endif

#define LB1_THREADS 16

struct lb1 {
    struct rs_test_latch start;
    volatile long failures;
};

static void lb1_init_thread(void *arg)
{
    struct lb1 *t = arg;
    /* All threads wait at the gate, then call init together. */
    rs_test_latch_signal(&t->start);
    rs_test_latch_wait(&t->start, RS_TEST_TIMEOUT_MS);
    if (rs_library_init() != 0) {
        rs__atomic_add(&t->failures, 1);
    }
}

static void test_lb1_init_cleanup_refcount_and_concurrent_init(void **state)
{
    (void)state;
    assert_int_equal(rs_library_init_count(), 0);
    assert_int_equal(rs_library_init(), 0);
    assert_int_equal(rs_library_init(), 0);
    assert_int_equal(rs_library_init_count(), 2);
    assert_int_equal(rs_library_cleanup(), 0);
    assert_int_equal(rs_library_init_count(), 1);
    /* Still usable after a non-final cleanup. */
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    assert_int_equal(rs_library_cleanup(), 0);
    assert_int_equal(rs_library_init_count(), 0);

    struct lb1 t = {0};
    rs_test_latch_init(&t.start, LB1_THREADS);
    rs__thread threads[LB1_THREADS];
    for (int i = 0; i < LB1_THREADS; i++) {
        assert_int_equal(rs__thread_start(&threads[i], lb1_init_thread, &t, "lb1"), 0);
    }
    for (int i = 0; i < LB1_THREADS; i++) {
        rs__thread_join(&threads[i]);
    }
    assert_int_equal(t.failures, 0);
    assert_int_equal(rs_library_init_count(), LB1_THREADS);
    loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    for (int i = 0; i < LB1_THREADS; i++) {
        assert_int_equal(rs_library_cleanup(), 0);
    }
    assert_int_equal(rs_library_init_count(), 0);
    assert_fails_with(rs_library_cleanup(), RS_ERROR_LIBRARY_NOT_INITIALIZED);
    assert_int_equal(rs_live_allocations(), 0);
    rs_test_latch_clean_up(&t.start);
}

static void test_lb2_winsock_version_checked_and_cleanup_paired(void **state)
{
    (void)state;
#if RS_TEST_IOCP
    long startups = rs__winsock_startup_count();
    long cleanups = rs__winsock_cleanup_count();
    assert_int_equal(startups, cleanups);

    assert_int_equal(rs_library_init(), 0);
    assert_int_equal(rs_library_init(), 0);
    assert_int_equal(rs__winsock_startup_count(), startups + 1); /* once per 0 -> 1 */
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    assert_true(s != INVALID_SOCKET);
    closesocket(s);
    assert_non_null(rs__winsock_ipv4.accept_ex);
    assert_non_null(rs__winsock_ipv4.connect_ex);
    assert_non_null(rs__winsock_ipv4.get_accept_ex_sockaddrs);
    assert_int_equal(rs_library_cleanup(), 0);
    assert_int_equal(rs__winsock_cleanup_count(), cleanups);
    assert_int_equal(rs_library_cleanup(), 0);
    assert_int_equal(rs__winsock_cleanup_count(), cleanups + 1);
    /* Winsock is really released: this process made no other WSAStartup. */
    s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    assert_true(s == INVALID_SOCKET);
    assert_int_equal(WSAGetLastError(), WSANOTINITIALISED);

    /* A negotiated version other than 2.2 fails init clearly, and the
     * successful WSAStartup behind it is still paired with a WSACleanup. */
    rs__winsock_test_force_version(MAKEWORD(1, 1));
    assert_fails_with(rs_library_init(), RS_ERROR_PLATFORM_NOT_SUPPORTED);
    rs__winsock_test_force_version(0);
    assert_int_equal(rs_library_init_count(), 0);
    assert_int_equal(rs__winsock_startup_count(), rs__winsock_cleanup_count());
    assert_int_equal(rs_library_init(), 0);
    assert_int_equal(rs_library_cleanup(), 0);
    assert_int_equal(rs__winsock_startup_count(), rs__winsock_cleanup_count());
#elif defined(_WIN32)
    RS_TEST_SKIP("the start-up and clean-up counters and the extension functions checked here are "
                 "the iocp backend's (winsock_init.c); the libevent backend's WSAStartup 2.2 and "
                 "its WSACleanup are le_win32.c's");
#else
    RS_TEST_SKIP("Winsock exists only on Windows: the libevent backend has no startup to check");
#endif
}

static void test_lb3_every_error_code_has_name_and_sentence(void **state)
{
    (void)state;
    for (int code = 0; code < RS_ERROR_COUNT; code++) {
        const char *name = rs_error_name(code);
        const char *text = rs_error_str(code);
        assert_non_null(name);
        assert_non_null(text);
        assert_int_equal(strncmp(name, "RS_ERROR_", 9), 0);
        assert_true(strlen(text) > 3);
        assert_int_equal(text[strlen(text) - 1], '.');
        for (int other = 0; other < code; other++) {
            assert_string_not_equal(name, rs_error_name(other));
        }
    }
    assert_string_equal(rs_error_name(RS_ERROR_TIMEOUT), "RS_ERROR_TIMEOUT");
    assert_string_equal(rs_error_name(-1), "RS_ERROR_UNKNOWN");
    assert_string_equal(rs_error_name(RS_ERROR_COUNT), "RS_ERROR_UNKNOWN");
    assert_string_equal(rs_error_str(RS_ERROR_COUNT + 7), rs_error_str(RS_ERROR_UNKNOWN));
    assert_int_equal(rs_raise(RS_ERROR_TIMEOUT), -1);
    assert_int_equal(rs_last_error(), RS_ERROR_TIMEOUT);
}

struct lb_thread_error {
    int seen;
};

static void other_thread_error(void *arg)
{
    struct lb_thread_error *t = arg;
    t->seen = rs_last_error();
    rs_raise(RS_ERROR_BROKEN_PIPE);
}

static void test_lb3_last_error_is_thread_local(void **state)
{
    (void)state;
    rs_raise(RS_ERROR_TIMEOUT);
    struct lb_thread_error t = {-1};
    rs__thread th;
    assert_int_equal(rs__thread_start(&th, other_thread_error, &t, "lb3"), 0);
    rs__thread_join(&th);
    assert_int_equal(t.seen, RS_ERROR_SUCCESS);
    assert_int_equal(rs_last_error(), RS_ERROR_TIMEOUT);
}

static void test_lb4_entry_points_before_init_fail(void **state)
{
    (void)state;
    assert_int_equal(rs_library_init_count(), 0);
    assert_null_with(rs_event_loop_new(NULL), RS_ERROR_LIBRARY_NOT_INITIALIZED);
    rs_event_loop_group_options options = {.loop_count = 1};
    assert_null_with(rs_event_loop_group_new(&options), RS_ERROR_LIBRARY_NOT_INITIALIZED);
    assert_fails_with(rs_library_cleanup(), RS_ERROR_LIBRARY_NOT_INITIALIZED);
    assert_int_equal(rs_live_allocations(), 0);
}

static int count_acquires;

static void *counting_acquire(rs_allocator *a, size_t size)
{
    (void)a;
    count_acquires++;
    return malloc(size);
}

static void counting_release(rs_allocator *a, void *p)
{
    (void)a;
    free(p);
}

static void test_lb_allocator_hook(void **state)
{
    (void)state;
    rs_allocator counting = {counting_acquire, counting_release, NULL};
    rs_allocator broken = {NULL, counting_release, NULL};
    assert_fails_with(rs_set_allocator(&broken), RS_ERROR_INVALID_ARGUMENT);
    assert_int_equal(rs_set_allocator(&counting), 0);
    assert_int_equal(rs_library_init(), 0);
    assert_fails_with(rs_set_allocator(NULL), RS_ERROR_INVALID_STATE);
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_true(count_acquires > 0);
    assert_true(rs_live_allocations() > 0);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    assert_int_equal(rs_library_cleanup(), 0);
    assert_int_equal(rs_live_allocations(), 0);
    assert_int_equal(rs_set_allocator(NULL), 0);
}

static void test_lb_version_and_backend_identity(void **state)
{
    (void)state;
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", RS_VERSION_MAJOR, RS_VERSION_MINOR,
             RS_VERSION_PATCH);
    assert_string_equal(rs_version(), expected);
    assert_string_equal(rs_version(), RS_TEST_PROJECT_VERSION);
    assert_true(rs_backend_id() == RS_BACKEND_LIBEVENT || rs_backend_id() == RS_BACKEND_IOCP);
    assert_string_equal(rs_backend_name(),
                        rs_backend_id() == RS_BACKEND_IOCP ? "iocp" : "libevent");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lb1_init_cleanup_refcount_and_concurrent_init),
        cmocka_unit_test(test_lb2_winsock_version_checked_and_cleanup_paired),
        cmocka_unit_test(test_lb3_every_error_code_has_name_and_sentence),
        cmocka_unit_test(test_lb3_last_error_is_thread_local),
        cmocka_unit_test(test_lb4_entry_points_before_init_fail),
        cmocka_unit_test(test_lb_allocator_hook),
        cmocka_unit_test(test_lb_version_and_backend_identity),
    };
    return RS_TEST_MAIN("library", tests);
}
