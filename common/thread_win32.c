#include "thread.h"

#include "alloc.h"
#include "error.h"

#include <process.h>
#include <string.h>

struct trampoline {
    rs__thread_fn *fn;
    void *arg;
};

static unsigned __stdcall thread_main(void *p)
{
    struct trampoline t = *(struct trampoline *)p;
    rs__mem_release(p);
    t.fn(t.arg);
    return 0;
}

static HANDLE start(rs__thread_fn *fn, void *arg)
{
    struct trampoline *t = rs__mem_acquire(sizeof *t);
    if (!t) {
        return NULL;
    }
    t->fn = fn;
    t->arg = arg;
    /* _beginthreadex, not CreateThread: the C runtime's per-thread state is
     * set up for threads it starts. */
    uintptr_t h = _beginthreadex(NULL, 0, thread_main, t, 0, NULL);
    if (h == 0) {
        rs__mem_release(t);
        rs_raise(RS_ERROR_SYS_CALL_FAILURE);
        return NULL;
    }
    return (HANDLE)h;
}

int rs__thread_start(rs__thread *thread, rs__thread_fn *fn, void *arg, const char *name)
{
    (void)name;
    thread->handle = start(fn, arg);
    return thread->handle ? 0 : -1;
}

int rs__thread_start_detached(rs__thread_fn *fn, void *arg, const char *name)
{
    (void)name;
    HANDLE h = start(fn, arg);
    if (!h) {
        return -1;
    }
    CloseHandle(h);
    return 0;
}

void rs__thread_join(rs__thread *thread)
{
    WaitForSingleObject(thread->handle, INFINITE);
    CloseHandle(thread->handle);
    thread->handle = NULL;
}

uint64_t rs__thread_current_id(void)
{
    return (uint64_t)GetCurrentThreadId();
}

void rs__mutex_init(rs__mutex *m)
{
    InitializeSRWLock(m);
}

void rs__mutex_clean_up(rs__mutex *m)
{
    (void)m; /* SRW locks hold no resources */
}

void rs__mutex_lock(rs__mutex *m)
{
    AcquireSRWLockExclusive(m);
}

void rs__mutex_unlock(rs__mutex *m)
{
    ReleaseSRWLockExclusive(m);
}

void rs__condvar_init(rs__condvar *c)
{
    InitializeConditionVariable(c);
}

void rs__condvar_clean_up(rs__condvar *c)
{
    (void)c;
}

void rs__condvar_wait(rs__condvar *c, rs__mutex *m)
{
    SleepConditionVariableSRW(c, m, INFINITE, 0);
}

bool rs__condvar_wait_ns(rs__condvar *c, rs__mutex *m, uint64_t timeout_ns)
{
    uint64_t ms = (timeout_ns + 999999u) / 1000000u;
    DWORD wait = ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
    return SleepConditionVariableSRW(c, m, wait, 0) || GetLastError() != ERROR_TIMEOUT;
}

void rs__condvar_signal(rs__condvar *c)
{
    WakeConditionVariable(c);
}

void rs__condvar_broadcast(rs__condvar *c)
{
    WakeAllConditionVariable(c);
}

static BOOL CALLBACK once_trampoline(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)ctx;
    void (*fn)(void);
    memcpy(&fn, &param, sizeof fn);
    fn();
    return TRUE;
}

void rs__once_run(rs__once *once, void (*fn)(void))
{
    PVOID param;
    memcpy(&param, &fn, sizeof param);
    InitOnceExecuteOnce(once, once_trampoline, param, NULL);
}
