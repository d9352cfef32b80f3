/* Compiler differences, in one place. */
#ifndef RS_COMMON_COMPAT_H
#define RS_COMMON_COMPAT_H

#if defined(_MSC_VER) && !defined(__clang__)
#define RS__THREAD_LOCAL __declspec(thread)
#define RS__PRINTF(f, a)
/* A hint only: fetch the cache line at p for writing. */
#define RS__PREFETCH_FOR_WRITE(p) ((void)(p))
#else
#define RS__THREAD_LOCAL _Thread_local
#define RS__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define RS__PREFETCH_FOR_WRITE(p) __builtin_prefetch((p), 1, 3)
#endif

#define RS__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Pointer to the struct that contains `member` at address ptr. */
#define RS__CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
