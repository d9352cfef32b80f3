#ifndef _WIN32
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getifaddrs, IFF_LOOPBACK */
#endif
#endif

#include "rs_test.h"

#include "../common/atomics.h"

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

void rs_test_counter_init(struct rs_test_counter *counter)
{
    rs__mutex_init(&counter->lock);
    rs__condvar_init(&counter->cond);
    counter->value = 0;
}

void rs_test_counter_clean_up(struct rs_test_counter *counter)
{
    rs__condvar_clean_up(&counter->cond);
    rs__mutex_clean_up(&counter->lock);
}

void rs_test_counter_add(struct rs_test_counter *counter, long long n)
{
    rs__mutex_lock(&counter->lock);
    counter->value += n;
    rs__condvar_broadcast(&counter->cond);
    rs__mutex_unlock(&counter->lock);
}

long long rs_test_counter_get(struct rs_test_counter *counter)
{
    rs__mutex_lock(&counter->lock);
    long long value = counter->value;
    rs__mutex_unlock(&counter->lock);
    return value;
}

bool rs_test_counter_wait_at_least(struct rs_test_counter *counter, long long target,
                                   uint64_t timeout_ms)
{
    uint64_t deadline = rs__clock_now_ns() + timeout_ms * 1000000u;
    rs__mutex_lock(&counter->lock);
    while (counter->value < target) {
        uint64_t now = rs__clock_now_ns();
        if (now >= deadline) {
            break;
        }
        rs__condvar_wait_ns(&counter->cond, &counter->lock, deadline - now);
    }
    bool reached = counter->value >= target;
    rs__mutex_unlock(&counter->lock);
    return reached;
}

void rs_test_counter_lock(struct rs_test_counter *counter)
{
    rs__mutex_lock(&counter->lock);
}

void rs_test_counter_unlock(struct rs_test_counter *counter)
{
    rs__mutex_unlock(&counter->lock);
}

void rs_test_counter_unlock_add(struct rs_test_counter *counter, long long n)
{
    counter->value += n;
    rs__condvar_broadcast(&counter->cond);
    rs__mutex_unlock(&counter->lock);
}

bool rs_test_counter_wait_change(struct rs_test_counter *counter, uint64_t deadline_ns)
{
    uint64_t now = rs__clock_now_ns();
    if (now >= deadline_ns) {
        return false;
    }
    rs__condvar_wait_ns(&counter->cond, &counter->lock, deadline_ns - now);
    return true;
}

void rs_test_latch_init(struct rs_test_latch *latch, long count)
{
    rs_test_counter_init(&latch->signals);
    latch->count = count;
}

void rs_test_latch_clean_up(struct rs_test_latch *latch)
{
    rs_test_counter_clean_up(&latch->signals);
}

void rs_test_latch_signal(struct rs_test_latch *latch)
{
    rs_test_counter_add(&latch->signals, 1);
}

bool rs_test_latch_wait(struct rs_test_latch *latch, uint64_t timeout_ms)
{
    return rs_test_counter_wait_at_least(&latch->signals, latch->count, timeout_ms);
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

/* ---- timeouts ---- */

/* Loop threads read these (a callback's bounded wait): atomics. */
static volatile uint64_t timeout_override_ms;
static volatile uint64_t scaled_ms;

/* RS_TEST_BASE_TIMEOUT_MS times RS_TEST_TIME_SCALE, read once. */
static uint64_t scaled_timeout_ms(void)
{
    uint64_t scaled = rs__atomic_load_u64(&scaled_ms);
    if (!scaled) {
        double factor = 1.0;
        const char *text = getenv("RS_TEST_TIME_SCALE");
        if (text && *text) {
            char *end = NULL;
            double parsed = strtod(text, &end);
            if (end && *end == '\0' && parsed > 0.0 && parsed <= 1000.0) {
                factor = parsed;
            } else {
                fprintf(stderr, "RS_TEST_TIME_SCALE=%s is not a factor in (0, 1000]: using 1\n",
                        text);
            }
        }
        uint64_t ms = (uint64_t)(RS_TEST_BASE_TIMEOUT_MS * factor);
        scaled = ms ? ms : 1;
        rs__atomic_store_u64(&scaled_ms, scaled);
    }
    return scaled;
}

uint64_t rs_test_timeout_ms(void)
{
    uint64_t override = rs__atomic_load_u64(&timeout_override_ms);
    return override ? override : scaled_timeout_ms();
}

void rs_test_set_timeout_ms(uint64_t ms)
{
    rs__atomic_store_u64(&timeout_override_ms, ms);
}

/* ---- resources a test owns ---- */

struct owned {
    void *obj;
    bool (*release)(void *obj);
    void (*abandon)(void *obj);
    struct owned *next; /* newest first */
};

/* Loop threads register what they create (an accepted peer), so a lock. */
static rs__mutex owned_lock = RS__MUTEX_INIT;
static struct owned *owned_list;

void rs_test_own(void *obj, bool (*release)(void *obj), void (*abandon)(void *obj))
{
    struct owned *o = malloc(sizeof *o);
    assert_non_null(o);
    o->obj = obj;
    o->release = release;
    o->abandon = abandon;
    rs__mutex_lock(&owned_lock);
    o->next = owned_list;
    owned_list = o;
    rs__mutex_unlock(&owned_lock);
}

void rs_test_disown(void *obj)
{
    rs__mutex_lock(&owned_lock);
    for (struct owned **at = &owned_list; *at; at = &(*at)->next) {
        if ((*at)->obj == obj) {
            struct owned *o = *at;
            *at = o->next;
            free(o);
            break;
        }
    }
    rs__mutex_unlock(&owned_lock);
}

void rs_test_abandon_owned(void)
{
    rs__mutex_lock(&owned_lock);
    struct owned *list = owned_list;
    rs__mutex_unlock(&owned_lock);
    /* Entries are only removed by this (the test's) thread, so the list
     * read above stays valid; newer entries a loop adds go in front. */
    for (struct owned *o = list; o; o = o->next) {
        if (o->abandon) {
            o->abandon(o->obj);
        }
    }
}

/* Releases everything still owned, newest first. */
static size_t release_owned(bool *all_released)
{
    size_t released = 0;
    *all_released = true;
    for (;;) {
        rs__mutex_lock(&owned_lock);
        struct owned *o = owned_list;
        if (o) {
            owned_list = o->next;
        }
        rs__mutex_unlock(&owned_lock);
        if (!o) {
            return released;
        }
        released++;
        if (!o->release(o->obj)) {
            *all_released = false;
        }
        free(o);
    }
}

/* ---- running a function on a loop thread ---- */

/*
 * Heap-owned, so that a wait that times out can leave it behind: the task
 * still queued on the loop then finds `abandoned` and frees it without
 * calling fn, whose arg may point into the failed test's dead frame.
 */
enum on_loop_state { ON_LOOP_QUEUED, ON_LOOP_RUNNING, ON_LOOP_DONE };

struct on_loop {
    rs_task task;
    void (*fn)(void *arg);
    void *arg;
    rs__mutex lock;
    rs__condvar cond;
    enum on_loop_state state;
    bool abandoned;
};

static void on_loop_free(struct on_loop *ol)
{
    rs__condvar_clean_up(&ol->cond);
    rs__mutex_clean_up(&ol->lock);
    free(ol);
}

static void on_loop_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct on_loop *ol = arg;
    rs__mutex_lock(&ol->lock);
    if (ol->abandoned) {
        rs__mutex_unlock(&ol->lock);
        on_loop_free(ol);
        return;
    }
    ol->state = ON_LOOP_RUNNING;
    rs__mutex_unlock(&ol->lock);
    if (status == RS_TASK_STATUS_RUN) {
        ol->fn(ol->arg);
    }
    rs__mutex_lock(&ol->lock);
    ol->state = ON_LOOP_DONE;
    rs__condvar_broadcast(&ol->cond);
    rs__mutex_unlock(&ol->lock);
}

/* Waits (lock held) until the task is done or the deadline passed. */
static bool on_loop_wait(struct on_loop *ol, uint64_t deadline)
{
    while (ol->state != ON_LOOP_DONE) {
        uint64_t now = rs__clock_now_ns();
        if (now >= deadline) {
            return false;
        }
        rs__condvar_wait_ns(&ol->cond, &ol->lock, deadline - now);
    }
    return true;
}

void rs_test_run_on_loop_after(rs_event_loop *loop, uint64_t ms, void (*fn)(void *arg), void *arg)
{
    struct on_loop *ol = calloc(1, sizeof *ol);
    assert_non_null(ol);
    ol->fn = fn;
    ol->arg = arg;
    rs__mutex_init(&ol->lock);
    rs__condvar_init(&ol->cond);
    rs_task_init(&ol->task, on_loop_task, ol, "rs_test_run_on_loop");
    int rc =
        ms ? rs_event_loop_schedule_at(loop, &ol->task, rs_event_loop_now(loop) + ms * 1000000u)
           : rs_event_loop_schedule_now(loop, &ol->task);
    if (rc != 0) {
        on_loop_free(ol);
        fail_msg("scheduling a task on the loop failed: %s", rs_error_name(rs_last_error()));
    }
    uint64_t timeout_ns = (ms + rs_test_timeout_ms()) * 1000000u;
    rs__mutex_lock(&ol->lock);
    bool done = on_loop_wait(ol, rs__clock_now_ns() + timeout_ns);
    if (!done && ol->state == ON_LOOP_RUNNING) {
        /* fn is using arg now: returning would pull its frame from under it.
         * Another bound, and past it the process is beyond saving. */
        done = on_loop_wait(ol, rs__clock_now_ns() + timeout_ns);
        if (!done) {
            fprintf(stderr, "a function run on a loop thread did not return in %llu ms\n",
                    (unsigned long long)(2 * timeout_ns / 1000000u));
            abort();
        }
    }
    if (!done) {
        ol->abandoned = true;
        rs__mutex_unlock(&ol->lock);
        rs_test_fail_timeout("a task on the loop thread");
    }
    rs__mutex_unlock(&ol->lock);
    on_loop_free(ol);
}

void rs_test_run_on_loop(rs_event_loop *loop, void (*fn)(void *arg), void *arg)
{
    rs_test_run_on_loop_after(loop, 0, fn, arg);
}

/* ---- groups ---- */

/* Each test's own functions, behind the harness's. */
struct wrapped {
    const struct CMUnitTest *test;
    struct rs_test_outcome outcome;
};

static struct wrapped *current;
static void (*outcome_sink)(const char *name, const struct rs_test_outcome *);

void rs_test_set_outcome_sink(void (*sink)(const char *name, const struct rs_test_outcome *))
{
    outcome_sink = sink;
}

static int wrapped_setup(void **state)
{
    current = *state;
    memset(&current->outcome, 0, sizeof current->outcome);
    *state = current->test->initial_state;
    return current->test->setup_func ? current->test->setup_func(state) : 0;
}

static void wrapped_test(void **state)
{
    current->test->test_func(state);
    current->outcome.body_returned = true;
}

static int wrapped_teardown(void **state)
{
    struct wrapped *w = current;
    bool all_released = true;
    int rc = 0;
    /* The releases wait with the normal bound, not a test's short one. */
    rs_test_set_timeout_ms(0);
    w->outcome.released = release_owned(&all_released);
    w->outcome.release_failed = !all_released;
    if (!all_released) {
        print_error("harness: a resource the test left could not be released (leaked)\n");
        rc = -1;
    }
    if (w->outcome.body_returned && w->outcome.released) {
        print_error("harness: the test returned with %lu resources still open\n",
                    (unsigned long)w->outcome.released);
        rc = -1;
    }
    if (w->test->teardown_func && w->test->teardown_func(state) != 0) {
        rc = -1;
    }
    w->outcome.teardown_rc = rc;
    if (outcome_sink) {
        outcome_sink(w->test->name, &w->outcome);
    }
    current = NULL;
    return rc;
}

int rs_test_run_group(const char *group, const struct CMUnitTest *tests, size_t count)
{
    const char *filter = getenv("RS_TEST_FILTER");
    if (filter && *filter) {
        cmocka_set_test_filter(filter);
    }
    struct CMUnitTest *run = calloc(count, sizeof *run);
    struct wrapped *wraps = calloc(count, sizeof *wraps);
    if (!run || !wraps) {
        fprintf(stderr, "out of memory for the test list\n");
        return 1;
    }
    for (size_t i = 0; i < count; i++) {
        wraps[i].test = &tests[i];
        run[i] = (struct CMUnitTest){
            .name = tests[i].name,
            .test_func = wrapped_test,
            .setup_func = wrapped_setup,
            .teardown_func = wrapped_teardown,
            .initial_state = &wraps[i],
        };
    }
    int failed = _cmocka_run_group_tests(group, run, count, NULL, NULL);
    free(wraps);
    free(run);
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

bool rs_test_under_wine(void)
{
#ifdef _WIN32
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version") != NULL;
#else
    return false;
#endif
}
