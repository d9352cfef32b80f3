/*
 * The idle workload's measurement, shared by every POSIX implementation so
 * that each is measured the same way: N TCP connections are opened by a
 * child process (so that the measured process holds only the accepted ends,
 * and the descriptor limit is spent once), the implementation accepts each
 * and subscribes it for reads, and the growth of the heap (every live
 * malloc chunk of every thread, counted by the interposer in idle_posix.c)
 * and of the resident set between before and after is divided by N.
 */
#ifndef RESEAU_BENCH_IDLE_H
#define RESEAU_BENCH_IDLE_H

#include "bench.h"

#include <stdbool.h>
#include <stdint.h>

/* A figure that could not be read. */
#define BENCH_MEM_NONE INT64_MIN

struct bench_mem {
    int64_t heap; /* bytes of live malloc chunks (usable size plus header) */
    int64_t rss;  /* resident bytes */
};

/* Starts counting the heap and samples (before), or samples (after) and
 * stops: free heap pages are returned to the OS first. heap is
 * BENCH_MEM_NONE where the interposer is not built in; it may be negative
 * at the start (another thread freed meanwhile): only the difference
 * counts. */
void bench_mem_start(struct bench_mem *before);
void bench_mem_stop(struct bench_mem *after);

/* Raises RLIMIT_NOFILE's soft limit to the hard one; false (failure recorded
 * with the limit and what the run needs) if n connections cannot fit. */
bool bench_idle_fd_limit(long n, struct bench_result *r);

/* Forks the client process, which connects n times to 127.0.0.1:port and
 * keeps the connections until bench_idle_clients_stop. -1 (failure
 * recorded) on error. */
int bench_idle_clients_start(uint16_t port, long n, struct bench_result *r);
/* Ends the client process (its connections close) and reaps it; stops
 * the heap count if a failed run left it on. */
void bench_idle_clients_stop(void);

/* Why the heap figure could not be read (each platform's sampler says). */
const char *bench_idle_no_heap_reason(void);

/* Records the result: before and after are samples around n connections
 * (idle.c, one rule for every platform). */
void bench_idle_result(struct bench_result *r, long n, const struct bench_mem *before,
                       const struct bench_mem *after);

#endif
