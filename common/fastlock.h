/*
 * A small mutex for short critical sections on hot paths (the loop's
 * cross-thread queue). On Linux it is the classic three-state futex lock
 * (0 free, 1 held, 2 held with waiters): taking and releasing a free lock is
 * one atomic instruction each, about a tenth of pthread_mutex_lock/unlock's
 * instruction count, and waiters sleep in the kernel instead of spinning.
 * The atomics carry acquire/release order, so thread sanitizers see the
 * happens-before edges. Elsewhere it is the platform mutex.
 */
#ifndef RS_COMMON_FASTLOCK_H
#define RS_COMMON_FASTLOCK_H

#include "thread.h"

#if defined(__linux__)

typedef struct rs__fastlock {
    int state;
} rs__fastlock;

void rs__fastlock_wait(rs__fastlock *lock);
void rs__fastlock_wake(rs__fastlock *lock);

static inline void rs__fastlock_init(rs__fastlock *lock)
{
    lock->state = 0;
}

static inline void rs__fastlock_clean_up(rs__fastlock *lock)
{
    (void)lock;
}

static inline void rs__fastlock_lock(rs__fastlock *lock)
{
    int expected = 0;
    if (!__atomic_compare_exchange_n(&lock->state, &expected, 1, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED)) {
        rs__fastlock_wait(lock);
    }
}

static inline void rs__fastlock_unlock(rs__fastlock *lock)
{
    if (__atomic_exchange_n(&lock->state, 0, __ATOMIC_RELEASE) == 2) {
        rs__fastlock_wake(lock);
    }
}

#else

typedef rs__mutex rs__fastlock;
#define rs__fastlock_init rs__mutex_init
#define rs__fastlock_clean_up rs__mutex_clean_up
#define rs__fastlock_lock rs__mutex_lock
#define rs__fastlock_unlock rs__mutex_unlock

#endif

#endif
