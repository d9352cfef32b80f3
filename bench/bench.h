/*
 * reseau-bench: the workload table every implementation fills in, and the
 * few portable helpers they share (clock, latch, thread, pseudo-random
 * deadlines). Workload definitions: docs/performance.md.
 */
#ifndef RESEAU_BENCH_H
#define RESEAU_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bench_workload {
    BW_PINGPONG,
    BW_STREAM,
    BW_CONNECT,
    BW_TASKS,
    BW_TIMERS,
    BW_UDP,
    BW_FANIN,
    BW_PIPE,
    BW_WATCH,
    /* udp without connect: send-to and receive-from on bound sockets. */
    BW_UDP_TO,
    /* N idle accepted connections: heap and resident bytes per connection. */
    BW_IDLE,
    BW_COUNT
};

/* Operation counts of one run; --quick and the callgrind script shrink them. */
struct bench_params {
    long pingpong_trips;
    uint64_t stream_bytes;
    long connects;
    long tasks;
    long timers;
    uint64_t timer_span_ns; /* deadlines fall in [start, start + span) */
    long udp_datagrams;
    int udp_window;        /* datagrams sent but not yet received (or given up as lost) */
    int fanin_connections; /* --conns N */
    uint64_t fanin_ns;
    /* fanin: round trips in all (--ops), or 0 to run for fanin_ns, or -1 for
     * none (connections set up and torn down only). */
    long fanin_trips;
    uint64_t pipe_bytes;
    long watch_trips; /* pingpong driven by readiness of sockets the bench owns */
    long idle_connections;
};

#define BENCH_PINGPONG_SIZE 64
#define BENCH_CHUNK (64 * 1024)
#define BENCH_MAX_OUTSTANDING 4
#define BENCH_UDP_SIZE 64
/* A window that makes no progress for this long is counted as lost. */
#define BENCH_UDP_STALL_NS 100000000ull

/* A datagram arrived. One given up as lost after a stall that then arrives
 * (late: held up longer than the stall period, as a loaded Wine server can
 * hold a readiness report) takes back one loss; the datagrams are alike, so
 * which one cannot be told. So received + lost never exceeds sent, and the
 * count in flight, sent - received - lost, never wraps below zero, which
 * would stop the sender for good while the stall check finds nothing in
 * flight. */
static inline void bench_udp_arrived(uint64_t sent, uint64_t *received, uint64_t *lost)
{
    if (*lost > 0 && *received + *lost >= sent) {
        (*lost)--;
    }
    (*received)++;
}

enum bench_status { BENCH_OK = 0, BENCH_NA, BENCH_FAILED };

struct bench_result {
    enum bench_status status;
    /* Wall time of the measured part, and the operations it covered (round
     * trips, bytes, connections, tasks, timers, datagrams received). */
    uint64_t elapsed_ns;
    uint64_t ops;
    /* udp: datagrams given up as lost. */
    uint64_t lost;
    /* tasks: times the consumer was woken by the producer (wake-up signals
     * consumed or posted), with has_wakeups set by implementations that count. */
    uint64_t wakeups;
    bool has_wakeups;
    /* fanin: where the implementation records the latency of every round
     * trip (set by the caller; NULL for the other workloads). */
    struct bench_latency *latency;
    char note[160]; /* why n/a, or what failed */
    /* idle: heap and resident bytes per connection (the figure is value). */
    double value, value2;
};

/*
 * Round-trip latencies in log-linear buckets: 8 per power of two, so a
 * quantile is within 12.5% of the exact figure, with a fixed 4 KiB of
 * counts whatever the number of round trips.
 */
#define BENCH_LATENCY_SUB 8
#define BENCH_LATENCY_BUCKETS (64 * BENCH_LATENCY_SUB)
struct bench_latency {
    uint64_t count;
    uint64_t bucket[BENCH_LATENCY_BUCKETS];
};
void bench_latency_add(struct bench_latency *h, uint64_t ns);
/* The q-quantile (0 < q <= 1) in nanoseconds: the middle of its bucket. */
uint64_t bench_latency_quantile(const struct bench_latency *h, double q);

/* A fanin run to a count: connection i's share of total round trips among
 * n connections (total >= n, so every connection makes one at least). */
static inline long bench_share(long total, int n, int i)
{
    return total / n + (i < total % n ? 1 : 0);
}

typedef void(bench_fn)(const struct bench_params *p, struct bench_result *r);

struct bench_impl {
    const char *name;
    const char *description;
    /* NULL: the implementation cannot do the workload (reported as n/a with na_note). */
    bench_fn *run[BW_COUNT];
    const char *na_note[BW_COUNT];
    /* Called once before the first workload and after the last; may be NULL. */
    int (*init)(void);
    void (*clean_up)(void);
};

extern const struct bench_impl bench_impl_reseau;
#ifdef _WIN32
extern const struct bench_impl bench_impl_iocp;
extern const struct bench_impl bench_impl_iocp_thread;
extern const struct bench_impl bench_impl_iocp_padded;
#else
extern const struct bench_impl bench_impl_libevent;
extern const struct bench_impl bench_impl_libuv;
extern const struct bench_impl bench_impl_blocking;
#endif

/* Writes every page of a fresh allocation, so that the kernel's first-touch
 * page faults are taken during set-up rather than inside the clock. */
void bench_prefault(void *p, size_t bytes);

#ifdef _WIN32
/* The idle workload of the raw IOCP floor, and its client process
 * (idle_win32.c: the program run as --idle-client PORT N). */
void bench_io_idle(const struct bench_params *p, struct bench_result *r);
int bench_idle_client_main(uint16_t port, long n);
#else
/* The idle workload of the native peers (idle_peers.c). */
void bench_le_idle(const struct bench_params *p, struct bench_result *r);
void bench_uv_idle(const struct bench_params *p, struct bench_result *r);
#endif

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

/* Records a failure (printf-style note) unless one is already recorded. */
void bench_fail(struct bench_result *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Deterministic pseudo-random numbers, so every implementation gets the
 * same timer deadlines. */
static inline uint64_t bench_rand_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}
#define BENCH_RAND_SEED 0x9e3779b97f4a7c15ull

/* A one-shot latch: the thread running a loop signals, the bench thread waits
 * (bounded; returns false on timeout). */
struct bench_latch;
struct bench_latch *bench_latch_new(void);
void bench_latch_free(struct bench_latch *l);
void bench_latch_signal(struct bench_latch *l);
bool bench_latch_wait(struct bench_latch *l, uint64_t timeout_ns);

/* A joinable thread. */
struct bench_thread;
struct bench_thread *bench_thread_start(void (*fn)(void *), void *arg);
void bench_thread_join(struct bench_thread *t);

/* Listen backlog of the peers whose fanin connects every client at once
 * (Linux caps it at net.core.somaxconn, 4,096 by default). */
#define BENCH_BACKLOG 4096

/* Every workload gives up after this long: the tool always finishes. */
#define BENCH_TIMEOUT_NS (120ull * 1000000000ull)

#endif
