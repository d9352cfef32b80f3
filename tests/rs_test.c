#ifndef _WIN32
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getifaddrs, IFF_LOOPBACK */
#endif
#endif

#include "rs_test.h"

#ifdef _WIN32
#include <winsock2.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>
#else
#include <ifaddrs.h>
#include <net/if.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * Copies the name of this host's loopback interface, as the OS itself reports
 * it, into name: the interface flagged IFF_LOOPBACK ("lo" on Linux, "lo0" on
 * the BSDs), or on Windows the NDIS name of the software-loopback adapter
 * (which need not be the same under Wine as on Windows). False if there is
 * none.
 */
bool rs_test_loopback_interface(char *name, size_t size)
{
    bool found = false;
#ifdef _WIN32
    ULONG len = 16 * 1024;
    IP_ADAPTER_ADDRESSES *list = NULL;
    ULONG rc = ERROR_BUFFER_OVERFLOW;
    /* The adapter list can grow between the sizing call and the real one. */
    for (int attempt = 0; attempt < 4 && rc == ERROR_BUFFER_OVERFLOW; attempt++) {
        free(list);
        list = malloc(len);
        assert_non_null(list);
        rc = GetAdaptersAddresses(
            AF_UNSPEC, GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER,
            NULL, list, &len);
    }
    if (rc == NO_ERROR) {
        for (IP_ADAPTER_ADDRESSES *a = list; a && !found; a = a->Next) {
            if (a->IfType == IF_TYPE_SOFTWARE_LOOPBACK) {
                found = ConvertInterfaceLuidToNameA(&a->Luid, name, size) == NO_ERROR;
            }
        }
    }
    free(list);
#else
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) == 0) {
        for (struct ifaddrs *ifa = list; ifa && !found; ifa = ifa->ifa_next) {
            if ((ifa->ifa_flags & IFF_LOOPBACK) && strlen(ifa->ifa_name) < size) {
                strcpy(name, ifa->ifa_name);
                found = true;
            }
        }
        freeifaddrs(list);
    }
#endif
    return found;
}
