#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include "thread.h"

#include "alloc.h"
#include "compat.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

struct trampoline {
    rs__thread_fn *fn;
    void *arg;
    char name[16];
};

static RS__THREAD_LOCAL bool sigpipe_blocked;

bool rs__thread_sigpipe_blocked(void)
{
    return sigpipe_blocked;
}

static void *thread_main(void *p)
{
    struct trampoline t = *(struct trampoline *)p;
    rs__mem_release(p);
    /* SIGPIPE stays blocked on the library's threads for their whole life:
     * a write to a pipe whose reader is gone then costs no signal-mask
     * calls around it (le_pipe.c), and the application's disposition of
     * SIGPIPE, process-wide, is untouched. A SIGPIPE sent to the process
     * goes to one of the application's threads, as before. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpipe_blocked = pthread_sigmask(SIG_BLOCK, &pipe_set, NULL) == 0;
#if defined(__linux__)
    if (t.name[0]) {
        pthread_setname_np(pthread_self(), t.name);
    }
#endif
    t.fn(t.arg);
    return NULL;
}

static int start(pthread_t *out, rs__thread_fn *fn, void *arg, const char *name, bool detached)
{
    struct trampoline *t = rs__mem_acquire(sizeof *t);
    if (!t) {
        return -1;
    }
    t->fn = fn;
    t->arg = arg;
    t->name[0] = '\0';
    if (name) {
        strncpy(t->name, name, sizeof t->name - 1);
        t->name[sizeof t->name - 1] = '\0';
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (detached) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    }
    int rc = pthread_create(out, &attr, thread_main, t);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        rs__mem_release(t);
        RS__LOG(RS_LOG_ERROR, "pthread_create failed: %s", strerror(rc));
        return rs_raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    return 0;
}

int rs__thread_start(rs__thread *thread, rs__thread_fn *fn, void *arg, const char *name)
{
    return start(&thread->handle, fn, arg, name, false);
}

int rs__thread_start_detached(rs__thread_fn *fn, void *arg, const char *name)
{
    pthread_t t;
    return start(&t, fn, arg, name, true);
}

void rs__thread_join(rs__thread *thread)
{
    pthread_join(thread->handle, NULL);
}

uint64_t rs__thread_current_id(void)
{
    /* The address of a thread-local object is unique among live threads and
     * cheaper to read than any system call. */
    static _Thread_local char marker;
    return (uint64_t)(uintptr_t)&marker;
}

void rs__mutex_init(rs__mutex *m)
{
    pthread_mutex_init(m, NULL);
}

void rs__mutex_clean_up(rs__mutex *m)
{
    pthread_mutex_destroy(m);
}

void rs__mutex_lock(rs__mutex *m)
{
    pthread_mutex_lock(m);
}

void rs__mutex_unlock(rs__mutex *m)
{
    pthread_mutex_unlock(m);
}

void rs__condvar_init(rs__condvar *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
#if !defined(__APPLE__)
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}

void rs__condvar_clean_up(rs__condvar *c)
{
    pthread_cond_destroy(c);
}

void rs__condvar_wait(rs__condvar *c, rs__mutex *m)
{
    pthread_cond_wait(c, m);
}

bool rs__condvar_wait_ns(rs__condvar *c, rs__mutex *m, uint64_t timeout_ns)
{
#if defined(__APPLE__)
    struct timespec rel = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    return pthread_cond_timedwait_relative_np(c, m, &rel) != ETIMEDOUT;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + timeout_ns % 1000000000u;
    ts.tv_sec += (time_t)(timeout_ns / 1000000000u + ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return pthread_cond_timedwait(c, m, &ts) != ETIMEDOUT;
#endif
}

void rs__condvar_signal(rs__condvar *c)
{
    pthread_cond_signal(c);
}

void rs__condvar_broadcast(rs__condvar *c)
{
    pthread_cond_broadcast(c);
}

void rs__once_run(rs__once *once, void (*fn)(void))
{
    pthread_once(once, fn);
}

#if defined(__linux__)
#include "fastlock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Slow path of rs__fastlock_lock: mark the lock contended (2) and sleep until
 * an unlock finds the mark and wakes one waiter. */
void rs__fastlock_wait(rs__fastlock *lock)
{
    while (__atomic_exchange_n(&lock->state, 2, __ATOMIC_ACQUIRE) != 0) {
        syscall(SYS_futex, &lock->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    }
}

void rs__fastlock_wake(rs__fastlock *lock)
{
    syscall(SYS_futex, &lock->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
#endif
