/* Host-resolution scenarios HR1-HR4 (test-scenarios.md). */
#include "rs_test.h"

#include "../common/atomics.h"

#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#endif

struct lookup {
    rs_event_loop *loop;
    struct rs_test_latch done;
    volatile long calls;
    int error;
    size_t count;
    rs_host_address addresses[64];
    bool on_loop_thread;
    uint64_t thread_id;
    bool inside_task; /* set by a loop task around its rs_resolve call */
    bool delivered_inside_task;
};

static void on_result(const char *host, int error_code, const rs_host_address *addresses,
                      size_t count, void *user_data)
{
    (void)host;
    struct lookup *l = user_data;
    l->error = error_code;
    l->count = count < 64 ? count : 64;
    if (addresses) {
        memcpy(l->addresses, addresses, l->count * sizeof *addresses);
    }
    l->on_loop_thread = rs_event_loop_is_on_thread(l->loop);
    l->thread_id = rs__thread_current_id();
    l->delivered_inside_task = l->inside_task;
    rs__atomic_add(&l->calls, 1);
    rs_test_latch_signal(&l->done);
}

static void lookup_init(struct lookup *l, rs_event_loop *loop)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    rs_test_latch_init(&l->done, 1);
}

static bool has_address(const struct lookup *l, rs_address_family family, const char *text)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->addresses[i].family == family && strcmp(l->addresses[i].address, text) == 0) {
            return true;
        }
    }
    return false;
}

static void resolve_and_wait(struct lookup *l, const char *host)
{
    assert_int_equal(rs_resolve(l->loop, host, on_result, l), 0);
    rs_test_latch_await(&l->done, host);
    assert_int_equal(l->calls, 1);
}

static void resolve_inside_task(void *arg)
{
    struct lookup *l = arg;
    l->inside_task = true;
    assert_int_equal(rs_resolve(l->loop, "localhost", on_result, l), 0);
    l->inside_task = false;
}

static void test_hr1_localhost_resolves_to_loopback_on_loop_thread(void **state)
{
    rs_event_loop *loop = *state;
    struct lookup l;
    lookup_init(&l, loop);
    resolve_and_wait(&l, "localhost");
    assert_int_equal(l.error, 0);
    assert_true(l.count >= 1);
    assert_true(has_address(&l, RS_ADDRESS_IPV4, "127.0.0.1") ||
                has_address(&l, RS_ADDRESS_IPV6, "::1"));
    for (size_t i = 0; i < l.count; i++) {
        bool loopback = strncmp(l.addresses[i].address, "127.", 4) == 0 ||
                        strcmp(l.addresses[i].address, "::1") == 0;
        assert_true(loopback);
    }
    assert_true(l.on_loop_thread);
    assert_int_not_equal(l.thread_id, rs__thread_current_id());
    rs_test_latch_clean_up(&l.done);

    /* Started on the loop thread: the result comes after the task returned. */
    lookup_init(&l, loop);
    rs_test_run_on_loop(loop, resolve_inside_task, &l);
    rs_test_latch_await(&l.done, "localhost from a loop task");
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.error, 0);
    assert_false(l.delivered_inside_task);
    assert_true(l.on_loop_thread);
    rs_test_latch_clean_up(&l.done);
}

static void test_hr2_numeric_addresses_resolve_to_themselves(void **state)
{
    rs_event_loop *loop = *state;
    struct lookup l;
    lookup_init(&l, loop);
    resolve_and_wait(&l, "127.0.0.1");
    assert_int_equal(l.error, 0);
    assert_int_equal(l.count, 1);
    assert_true(has_address(&l, RS_ADDRESS_IPV4, "127.0.0.1"));
    rs_test_latch_clean_up(&l.done);

    lookup_init(&l, loop);
    resolve_and_wait(&l, "::1");
    assert_int_equal(l.error, 0);
    assert_int_equal(l.count, 1);
    assert_true(has_address(&l, RS_ADDRESS_IPV6, "::1"));
    rs_test_latch_clean_up(&l.done);
}

static void test_hr3_invalid_names_fail_with_invalid_name(void **state)
{
    rs_event_loop *loop = *state;
    char too_long[300];
    memset(too_long, 'a', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    for (int i = 60; i < 299; i += 61) {
        too_long[i] = '.'; /* labels are fine; only the total is too long */
    }
    char long_label[70];
    memset(long_label, 'b', 64);
    strcpy(long_label + 64, ".com");
    const char *bad[] = {"",         too_long,       long_label,  "bad name",   "a..b",
                         ".leading", "ex!ample.com", "tab\there", "semi;colon", "::g"};
    struct lookup l;
    lookup_init(&l, loop);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_fails_with(rs_resolve(loop, bad[i], on_result, &l), RS_ERROR_DNS_INVALID_NAME);
        assert_false(rs_host_name_is_valid(bad[i]));
    }
    assert_fails_with(rs_resolve(loop, NULL, on_result, &l), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_resolve(NULL, "localhost", on_result, &l), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_resolve(loop, "localhost", NULL, &l), RS_ERROR_INVALID_ARGUMENT);
    assert_false(rs_host_name_is_valid(NULL));
    assert_true(rs_host_name_is_valid("example.com."));
    assert_true(rs_host_name_is_valid("a-b_c.example"));
    assert_true(rs_host_name_is_valid("::1"));
    assert_int_equal(l.calls, 0);

    /* A valid name that does not exist fails in the callback, not at once. */
    resolve_and_wait(&l, "no-such-host.invalid");
    assert_true(l.error == RS_ERROR_DNS_QUERY_FAILED || l.error == RS_ERROR_DNS_NO_ADDRESS);
    assert_int_equal(l.count, 0);
    rs_test_latch_clean_up(&l.done);
}

static void test_hr4_resolves_after_library_init_only(void **state)
{
    (void)state;
    /* This runs first in a fresh process: nothing has started Winsock. */
#ifdef _WIN32
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    assert_true(s == INVALID_SOCKET);
    assert_int_equal(WSAGetLastError(), WSANOTINITIALISED);
#endif
    struct lookup l;
    int not_a_loop = 0;
    assert_fails_with(rs_resolve((rs_event_loop *)(void *)&not_a_loop, "localhost", on_result, &l),
                      RS_ERROR_LIBRARY_NOT_INITIALIZED);

    assert_int_equal(rs_library_init(), 0);
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_run(loop), 0);
    lookup_init(&l, loop);
    resolve_and_wait(&l, "localhost");
    assert_int_equal(l.error, 0);
    assert_true(l.count >= 1);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    rs_test_latch_clean_up(&l.done);
    assert_int_equal(rs_library_cleanup(), 0);
    assert_int_equal(rs_live_allocations(), 0);
}

static void test_hr_loop_destroyed_with_lookups_in_flight(void **state)
{
    (void)state;
    enum { N = 8 };
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_run(loop), 0);
    struct lookup l[N];
    for (int i = 0; i < N; i++) {
        lookup_init(&l[i], loop);
        assert_int_equal(rs_resolve(loop, i % 2 ? "localhost" : "127.0.0.1", on_result, &l[i]), 0);
    }
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    /* Whether the worker, the loop or the destroy answered, each lookup was
     * answered exactly once by the time destroy returned. */
    for (int i = 0; i < N; i++) {
        assert_int_equal(l[i].calls, 1);
        assert_true(l[i].error == 0 || l[i].error == RS_ERROR_EVENT_LOOP_SHUTDOWN);
        rs_test_latch_clean_up(&l[i].done);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hr4_resolves_after_library_init_only),
        cmocka_unit_test_setup_teardown(test_hr1_localhost_resolves_to_loopback_on_loop_thread,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_hr2_numeric_addresses_resolve_to_themselves,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_hr3_invalid_names_fail_with_invalid_name,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_hr_loop_destroyed_with_lookups_in_flight,
                                        rs_test_setup_library, rs_test_teardown_library),
    };
    return RS_TEST_MAIN("host_resolver", tests);
}
