/*
 * Internal atomics on plain integers. Public structs (rs_task) hold plain
 * `long` fields so that public headers need no <stdatomic.h>; the library
 * accesses them only through these wrappers.
 */
#ifndef RS_COMMON_ATOMICS_H
#define RS_COMMON_ATOMICS_H

#include <stdbool.h>
#include <stdint.h>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>

static inline long rs__atomic_load(const volatile long *p)
{
    return _InterlockedCompareExchange((volatile long *)p, 0, 0);
}
static inline void rs__atomic_store(volatile long *p, long v)
{
    _InterlockedExchange(p, v);
}
static inline long rs__atomic_exchange(volatile long *p, long v)
{
    return _InterlockedExchange(p, v);
}
static inline bool rs__atomic_cas(volatile long *p, long expected, long desired)
{
    return _InterlockedCompareExchange(p, desired, expected) == expected;
}
/* int fields (rs_task's state word): long is int's size on Windows. */
static inline int rs__atomic_load_int(const volatile int *p)
{
    return (int)_InterlockedCompareExchange((volatile long *)p, 0, 0);
}
static inline void rs__atomic_store_int(volatile int *p, int v)
{
    _InterlockedExchange((volatile long *)p, v);
}
static inline bool rs__atomic_cas_int(volatile int *p, int expected, int desired)
{
    return _InterlockedCompareExchange((volatile long *)p, desired, expected) == expected;
}
static inline long rs__atomic_add(volatile long *p, long v)
{
    return _InterlockedExchangeAdd(p, v) + v;
}
static inline uint64_t rs__atomic_load_u64(const volatile uint64_t *p)
{
    return (uint64_t)_InterlockedCompareExchange64((volatile long long *)p, 0, 0);
}
static inline void rs__atomic_store_u64(volatile uint64_t *p, uint64_t v)
{
    _InterlockedExchange64((volatile long long *)p, (long long)v);
}
/* Pointer fields, any pointer type. */
#define RS__ATOMIC_LOAD_PTR(p) _InterlockedCompareExchangePointer((void *volatile *)(p), NULL, NULL)
#define RS__ATOMIC_STORE_PTR(p, v) ((void)_InterlockedExchangePointer((void *volatile *)(p), (v)))
/* bool fields. */
static inline bool rs__atomic_cas_u64(volatile uint64_t *p, uint64_t expected, uint64_t desired)
{
    return (uint64_t)_InterlockedCompareExchange64((volatile long long *)p, (long long)desired,
                                                   (long long)expected) == expected;
}
#define RS__ATOMIC_LOAD_BOOL(p) (_InterlockedOr8((volatile char *)(p), 0) != 0)
#define RS__ATOMIC_STORE_BOOL(p, v) ((void)_InterlockedExchange8((volatile char *)(p), (char)(v)))
/* Single-writer 64-bit counters (loop metrics): a load and a store, no
 * locked instruction; aligned 64-bit accesses are whole on x64. */
static inline uint64_t rs__atomic_load_relaxed_u64(const volatile uint64_t *p)
{
    return *p;
}
static inline void rs__atomic_store_relaxed_u64(volatile uint64_t *p, uint64_t v)
{
    *p = v;
}
#else

/* Pointer fields, any pointer type. */
#define RS__ATOMIC_LOAD_PTR(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define RS__ATOMIC_STORE_PTR(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* bool fields. */
#define RS__ATOMIC_LOAD_BOOL(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define RS__ATOMIC_STORE_BOOL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static inline long rs__atomic_load(const volatile long *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void rs__atomic_store(volatile long *p, long v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline long rs__atomic_exchange(volatile long *p, long v)
{
    return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}
static inline bool rs__atomic_cas(volatile long *p, long expected, long desired)
{
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}
/* int fields (rs_task's state word). */
static inline int rs__atomic_load_int(const volatile int *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void rs__atomic_store_int(volatile int *p, int v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline bool rs__atomic_cas_int(volatile int *p, int expected, int desired)
{
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}
/* Returns the new value. */
static inline long rs__atomic_add(volatile long *p, long v)
{
    return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL);
}
static inline uint64_t rs__atomic_load_u64(const volatile uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void rs__atomic_store_u64(volatile uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline bool rs__atomic_cas_u64(volatile uint64_t *p, uint64_t expected, uint64_t desired)
{
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_ACQUIRE);
}
/* Single-writer 64-bit counters (loop metrics): relaxed, so a bump is a
 * plain load and store (no locked instruction), and a reader on another
 * thread still sees each value whole. */
static inline uint64_t rs__atomic_load_relaxed_u64(const volatile uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void rs__atomic_store_relaxed_u64(volatile uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
#endif

#endif
