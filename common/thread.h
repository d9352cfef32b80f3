/*
 * Portable threads, mutexes, condition variables and once-initialisation:
 * pthreads on POSIX, Win32 (SRWLOCK, CONDITION_VARIABLE, InitOnce) on Windows,
 * where Debian's mingw-w64 uses the win32 thread model.
 */
#ifndef RS_COMMON_THREAD_H
#define RS_COMMON_THREAD_H

#include <stdbool.h>
#include <stdint.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
typedef struct rs__thread {
    HANDLE handle;
} rs__thread;
typedef SRWLOCK rs__mutex;
typedef CONDITION_VARIABLE rs__condvar;
typedef INIT_ONCE rs__once;
#define RS__MUTEX_INIT SRWLOCK_INIT
#define RS__ONCE_INIT INIT_ONCE_STATIC_INIT
#else
#include <pthread.h>
typedef struct rs__thread {
    pthread_t handle;
} rs__thread;
typedef pthread_mutex_t rs__mutex;
typedef pthread_cond_t rs__condvar;
typedef pthread_once_t rs__once;
#define RS__MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define RS__ONCE_INIT PTHREAD_ONCE_INIT
#endif

typedef void(rs__thread_fn)(void *arg);

/* Returns 0 or -1 with RS_ERROR_SYS_CALL_FAILURE / RS_ERROR_OUT_OF_MEMORY raised. */
int rs__thread_start(rs__thread *thread, rs__thread_fn *fn, void *arg, const char *name);
void rs__thread_join(rs__thread *thread);
/* Starts a thread nobody joins. */
int rs__thread_start_detached(rs__thread_fn *fn, void *arg, const char *name);
/* A non-zero id, unique among live threads. */
uint64_t rs__thread_current_id(void);
#ifndef _WIN32
/* True on a thread the library started, where SIGPIPE is blocked for the
 * thread's whole life. */
bool rs__thread_sigpipe_blocked(void);
#endif

void rs__mutex_init(rs__mutex *m);
void rs__mutex_clean_up(rs__mutex *m);
void rs__mutex_lock(rs__mutex *m);
void rs__mutex_unlock(rs__mutex *m);

void rs__condvar_init(rs__condvar *c);
void rs__condvar_clean_up(rs__condvar *c);
void rs__condvar_wait(rs__condvar *c, rs__mutex *m);
/* Returns false on timeout. */
bool rs__condvar_wait_ns(rs__condvar *c, rs__mutex *m, uint64_t timeout_ns);
void rs__condvar_signal(rs__condvar *c);
void rs__condvar_broadcast(rs__condvar *c);

void rs__once_run(rs__once *once, void (*fn)(void));

#endif
