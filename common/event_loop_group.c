/* Event-loop groups: N running loops, load-aware choice, refcounted shutdown. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include "event_loop_impl.h"

#include "alloc.h"
#include "atomics.h"
#include "error.h"
#include "log.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <sched.h>
#include <unistd.h>
#endif

#define MAX_LOOPS 4096

struct rs_event_loop_group {
    volatile long refcount;
    volatile long rng; /* xorshift state for get_next */
    rs_event_loop_group_shutdown_fn *on_shutdown;
    void *shutdown_user_data;
    size_t count;
    rs_event_loop *loops[];
};

unsigned rs_usable_cpu_count(void)
{
#if defined(_WIN32)
    /* The process affinity mask, not the machine's processor count: a job
     * object or `start /affinity` narrows it. */
    DWORD_PTR process_mask = 0;
    DWORD_PTR system_mask = 0;
    if (GetProcessAffinityMask(GetCurrentProcess(), &process_mask, &system_mask) && process_mask) {
        unsigned n = 0;
        for (; process_mask; process_mask &= process_mask - 1) {
            n++;
        }
        return n;
    }
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return info.dwNumberOfProcessors ? (unsigned)info.dwNumberOfProcessors : 1u;
#elif defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) {
            return (unsigned)n;
        }
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
#endif
}

static void destroy_loops(rs_event_loop_group *group, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        rs_event_loop_destroy(group->loops[i]);
    }
}

rs_event_loop_group *rs_event_loop_group_new(const rs_event_loop_group_options *options)
{
    if (!options || options->loop_count > MAX_LOOPS) {
        return rs__raise_null(RS_ERROR_INVALID_ARGUMENT);
    }
    size_t count = options->loop_count ? options->loop_count : rs_usable_cpu_count();
    rs_event_loop_group *group = rs__mem_calloc(1, sizeof *group + count * sizeof(rs_event_loop *));
    if (!group) {
        return NULL;
    }
    group->refcount = 1;
    group->rng = (long)(0x2545F491u ^ (uintptr_t)group);
    group->on_shutdown = options->on_shutdown;
    group->shutdown_user_data = options->shutdown_user_data;
    rs_event_loop_options loop_options = {.backend = options->backend};
    for (size_t i = 0; i < count; i++) {
        group->loops[i] = rs_event_loop_new(&loop_options);
        if (!group->loops[i] || rs_event_loop_run(group->loops[i]) != 0) {
            int err = rs_last_error();
            destroy_loops(group, group->loops[i] ? i + 1 : i);
            rs__mem_release(group);
            return rs__raise_null(err);
        }
        group->count = i + 1;
    }
    return group;
}

rs_event_loop_group *rs_event_loop_group_acquire(rs_event_loop_group *group)
{
    if (group) {
        rs__atomic_add(&group->refcount, 1);
    }
    return group;
}

static void shut_down(void *arg)
{
    rs_event_loop_group *group = arg;
    destroy_loops(group, group->count);
    rs_event_loop_group_shutdown_fn *fn = group->on_shutdown;
    void *user_data = group->shutdown_user_data;
    rs__mem_release(group);
    if (fn) {
        fn(user_data);
    }
}

int rs_event_loop_group_release(rs_event_loop_group *group)
{
    if (!group) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs__atomic_add(&group->refcount, -1) != 0) {
        return 0;
    }
    for (size_t i = 0; i < group->count; i++) {
        if (rs_event_loop_is_on_thread(group->loops[i])) {
            /* A loop cannot join its own thread: shut down from a new one. */
            if (rs__thread_start_detached(shut_down, group, "rs-group-stop") == 0) {
                return 0;
            }
            RS__LOG(RS_LOG_ERROR, "cannot start the group shutdown thread; loops leak");
            return -1;
        }
    }
    shut_down(group);
    return 0;
}

size_t rs_event_loop_group_count(const rs_event_loop_group *group)
{
    return group ? group->count : 0;
}

rs_event_loop *rs_event_loop_group_get_loop(const rs_event_loop_group *group, size_t index)
{
    if (!group || index >= group->count) {
        return rs__raise_null(RS_ERROR_INVALID_ARGUMENT);
    }
    return group->loops[index];
}

static unsigned long next_random(rs_event_loop_group *group)
{
    /* A racy xorshift is fine: the picks only need to spread. */
    unsigned long x = (unsigned long)rs__atomic_load(&group->rng);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x &= 0x7fffffffUL;
    rs__atomic_store(&group->rng, (long)(x ? x : 1));
    return x;
}

rs_event_loop *rs_event_loop_group_get_next(rs_event_loop_group *group)
{
    if (!group) {
        return rs__raise_null(RS_ERROR_INVALID_ARGUMENT);
    }
    if (group->count == 1) {
        return group->loops[0];
    }
    /* Power of two choices: nearly as balanced as scanning every loop, at the
     * cost of two reads. */
    unsigned long r = next_random(group);
    rs_event_loop *a = group->loops[r % group->count];
    rs_event_loop *b = group->loops[(r >> 12) % group->count];
    return rs__atomic_load(&b->load) < rs__atomic_load(&a->load) ? b : a;
}
