/*
 * reseau-bench: runs each workload on reseau and on its peers in one process,
 * N repetitions each, and prints the median, min-max and the ratio to the
 * floor (the blocking-socket version natively, raw IOCP on Windows).
 *
 *   reseau-bench [--quick] [--reps N] [--workload NAME[,NAME]] [--impl NAME[,NAME]]
 *                [--ops N] [--conns N] [--json] [--list]
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthread_condattr_setclock */
#endif
#include "bench.h"

#include <reseau/reseau.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _WIN32
#include <windows.h>
#include <io.h>
#define isatty _isatty
#define fileno _fileno
#else
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

/* ---- portable helpers ---- */

#ifdef _WIN32
uint64_t bench_now_ns(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;
    if (!freq.QuadPart) {
        QueryPerformanceFrequency(&freq);
    }
    QueryPerformanceCounter(&now);
    return (uint64_t)((double)now.QuadPart * 1e9 / (double)freq.QuadPart);
}

struct bench_latch {
    SRWLOCK lock;
    CONDITION_VARIABLE cond;
    bool set;
};

struct bench_latch *bench_latch_new(void)
{
    struct bench_latch *l = calloc(1, sizeof *l);
    if (l) {
        InitializeSRWLock(&l->lock);
        InitializeConditionVariable(&l->cond);
    }
    return l;
}

void bench_latch_free(struct bench_latch *l)
{
    free(l);
}

void bench_latch_signal(struct bench_latch *l)
{
    AcquireSRWLockExclusive(&l->lock);
    l->set = true;
    ReleaseSRWLockExclusive(&l->lock);
    WakeAllConditionVariable(&l->cond);
}

bool bench_latch_wait(struct bench_latch *l, uint64_t timeout_ns)
{
    uint64_t deadline = bench_now_ns() + timeout_ns;
    AcquireSRWLockExclusive(&l->lock);
    while (!l->set) {
        uint64_t now = bench_now_ns();
        if (now >= deadline) {
            break;
        }
        SleepConditionVariableSRW(&l->cond, &l->lock, (DWORD)((deadline - now) / 1000000u + 1), 0);
    }
    bool set = l->set;
    ReleaseSRWLockExclusive(&l->lock);
    return set;
}

struct bench_thread {
    HANDLE handle;
    void (*fn)(void *);
    void *arg;
};

static DWORD WINAPI thread_main(LPVOID p)
{
    struct bench_thread *t = p;
    t->fn(t->arg);
    return 0;
}

struct bench_thread *bench_thread_start(void (*fn)(void *), void *arg)
{
    struct bench_thread *t = calloc(1, sizeof *t);
    if (!t) {
        return NULL;
    }
    t->fn = fn;
    t->arg = arg;
    t->handle = CreateThread(NULL, 0, thread_main, t, 0, NULL);
    if (!t->handle) {
        free(t);
        return NULL;
    }
    return t;
}

void bench_thread_join(struct bench_thread *t)
{
    WaitForSingleObject(t->handle, INFINITE);
    CloseHandle(t->handle);
    free(t);
}
#else
uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct bench_latch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool set;
};

struct bench_latch *bench_latch_new(void)
{
    struct bench_latch *l = calloc(1, sizeof *l);
    if (!l) {
        return NULL;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, &attr);
    pthread_condattr_destroy(&attr);
    return l;
}

void bench_latch_free(struct bench_latch *l)
{
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void bench_latch_signal(struct bench_latch *l)
{
    pthread_mutex_lock(&l->lock);
    l->set = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

bool bench_latch_wait(struct bench_latch *l, uint64_t timeout_ns)
{
    uint64_t deadline = bench_now_ns() + timeout_ns;
    struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
    pthread_mutex_lock(&l->lock);
    while (!l->set && pthread_cond_timedwait(&l->cond, &l->lock, &ts) == 0) {
    }
    bool set = l->set;
    pthread_mutex_unlock(&l->lock);
    return set;
}

struct bench_thread {
    pthread_t handle;
    void (*fn)(void *);
    void *arg;
};

static void *thread_main(void *p)
{
    struct bench_thread *t = p;
    t->fn(t->arg);
    return NULL;
}

struct bench_thread *bench_thread_start(void (*fn)(void *), void *arg)
{
    struct bench_thread *t = calloc(1, sizeof *t);
    if (!t) {
        return NULL;
    }
    t->fn = fn;
    t->arg = arg;
    if (pthread_create(&t->handle, NULL, thread_main, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void bench_thread_join(struct bench_thread *t)
{
    pthread_join(t->handle, NULL);
    free(t);
}
#endif

void bench_prefault(void *p, size_t bytes)
{
    /* volatile: a store of what calloc already gave must not be elided. */
    volatile unsigned char *b = p;
    for (size_t i = 0; i < bytes; i += 4096) {
        b[i] = 0;
    }
    if (bytes) {
        b[bytes - 1] = 0;
    }
}

void bench_fail(struct bench_result *r, const char *fmt, ...)
{
    if (r->status == BENCH_FAILED) {
        return;
    }
    r->status = BENCH_FAILED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note, sizeof r->note, fmt, ap);
    va_end(ap);
}

/* ---- round-trip latencies ---- */

static unsigned latency_bucket(uint64_t ns)
{
    if (ns < BENCH_LATENCY_SUB) {
        return (unsigned)ns;
    }
    unsigned e = 63;
    while (!(ns >> e)) {
        e--;
    }
    /* e >= 3: the 3 bits below the top one pick the bucket within [2^e, 2^(e+1)). */
    return (e - 2) * BENCH_LATENCY_SUB + (unsigned)((ns >> (e - 3)) & (BENCH_LATENCY_SUB - 1));
}

void bench_latency_add(struct bench_latency *h, uint64_t ns)
{
    h->bucket[latency_bucket(ns)]++;
    h->count++;
}

uint64_t bench_latency_quantile(const struct bench_latency *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    rank = rank < 1 ? 1 : rank > h->count ? h->count : rank;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_LATENCY_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            if (i < BENCH_LATENCY_SUB) {
                return i;
            }
            unsigned e = i / BENCH_LATENCY_SUB + 2;
            uint64_t low = (1ull << e) + ((uint64_t)(i % BENCH_LATENCY_SUB) << (e - 3));
            return low + (1ull << (e - 3)) / 2;
        }
    }
    return 0;
}

/* ---- workloads and implementations ---- */

struct workload_info {
    const char *name;
    const char *unit;
    /* The figure is a time (lower is better) rather than a rate. */
    bool is_time;
    /* Multiplier from ops per second to the unit. */
    double scale;
};

static const struct workload_info workloads[BW_COUNT] = {
    [BW_PINGPONG] = {"pingpong", "round trips/s", false, 1.0},
    [BW_STREAM] = {"stream", "MB/s", false, 1e-6},
    [BW_CONNECT] = {"connect", "connections/s", false, 1.0},
    [BW_TASKS] = {"tasks", "tasks/s", false, 1.0},
    [BW_TIMERS] = {"timers", "s until all fired", true, 1.0},
    [BW_UDP] = {"udp", "datagrams/s", false, 1.0},
    [BW_FANIN] = {"fanin", "round trips/s", false, 1.0},
    [BW_PIPE] = {"pipe", "MB/s", false, 1e-6},
    [BW_WATCH] = {"watch", "round trips/s", false, 1.0},
    [BW_UDP_TO] = {"udp_to", "datagrams/s", false, 1.0},
    [BW_IDLE] = {"idle", "heap B/conn", true, 1.0},
};

static const struct bench_impl *const impls[] = {
    &bench_impl_reseau,
#ifdef _WIN32
    &bench_impl_iocp,
    &bench_impl_iocp_thread,
    &bench_impl_iocp_padded,
#else
    &bench_impl_libevent,
    &bench_impl_libuv,
    &bench_impl_blocking,
#endif
};
#define IMPL_COUNT (sizeof impls / sizeof impls[0])
#ifdef _WIN32
static const char *const floor_name = "iocp";
#else
static const char *const floor_name = "blocking";
#endif

static struct bench_params full_params(void)
{
    struct bench_params p = {
        .pingpong_trips = 200000,
        .stream_bytes = 1ull << 30,
        .connects = 10000,
        .tasks = 1000000,
        .timers = 1000000,
        .timer_span_ns = 1000000000ull,
        .udp_datagrams = 1000000,
        .udp_window = 64,
        .fanin_connections = 200,
        .fanin_ns = 3000000000ull,
        .pipe_bytes = 1ull << 30,
        .watch_trips = 200000,
        .idle_connections = 10000,
    };
    return p;
}

static struct bench_params quick_params(void)
{
    struct bench_params p = {
        .pingpong_trips = 2000,
        .stream_bytes = 16ull << 20,
        .connects = 200,
        .tasks = 20000,
        .timers = 20000,
        .timer_span_ns = 100000000ull,
        .udp_datagrams = 20000,
        .udp_window = 64,
        .fanin_connections = 20,
        .fanin_ns = 200000000ull,
        .pipe_bytes = 16ull << 20,
        .watch_trips = 2000,
        .idle_connections = 200,
    };
    return p;
}

/* --ops N: the operation count of every workload, for differential
 * measurements (N operations minus 0 operations). */
static void set_ops(struct bench_params *p, long n)
{
    p->pingpong_trips = n;
    p->stream_bytes = (uint64_t)n * BENCH_CHUNK;
    p->connects = n;
    p->tasks = n;
    p->timers = n;
    p->udp_datagrams = n;
    p->pipe_bytes = (uint64_t)n * BENCH_CHUNK;
    p->watch_trips = n;
    p->fanin_trips = n > 0 ? n : -1;
}

/*
 * A fanin of n connections holds 2n descriptors in this one process (both
 * ends of each), plus a few of the loops' own: the soft RLIMIT_NOFILE (often 1,024)
 * is raised to the hard limit, and a hard limit too low is reported before
 * anything runs. Returns false (with the reason in note) when it is too low.
 */
static bool descriptors_for(int conns, char *note, size_t len)
{
#ifdef _WIN32
    (void)conns;
    (void)note;
    (void)len;
    return true;
#else
    rlim_t need = (rlim_t)conns * 2 + 16;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return true; /* unknown: the run reports what fails */
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        snprintf(note, len,
                 "RLIMIT_NOFILE is %llu (hard %llu): %d connections need %llu descriptors; "
                 "raise the hard limit (ulimit -Hn)",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, conns,
                 (unsigned long long)need);
        return false;
    }
    return true;
#endif
}

/* ---- results ---- */

struct cell {
    const struct bench_impl *impl;
    enum bench_workload w;
    enum bench_status status;
    int runs;
    double values[64];
    double values2[64]; /* idle: resident bytes per connection */
    double median2;
    uint64_t lost;
    uint64_t sent;
    uint64_t wakeups, wake_ops; /* summed over the runs that counted them */
    bool has_wakeups;
    /* fanin: each run's round-trip latency quantiles (ns), and their medians. */
    double p50[64], p99[64];
    double p50_median, p99_median;
    double median, min, max;
    char note[160];
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double figure(enum bench_workload w, const struct bench_result *r)
{
    if (w == BW_IDLE) {
        return r->value;
    }
    double s = (double)r->elapsed_ns / 1e9;
    if (workloads[w].is_time) {
        return s;
    }
    return s > 0 ? (double)r->ops / s * workloads[w].scale : 0.0;
}

static double median_of(const double *values, int n, double *min, double *max)
{
    double sorted[64];
    memcpy(sorted, values, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    if (min) {
        *min = sorted[0];
        *max = sorted[n - 1];
    }
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
}

static void summarize(struct cell *c)
{
    if (c->runs == 0) {
        return;
    }
    c->median = median_of(c->values, c->runs, &c->min, &c->max);
    if (c->w == BW_FANIN) {
        c->p50_median = median_of(c->p50, c->runs, NULL, NULL);
        c->p99_median = median_of(c->p99, c->runs, NULL, NULL);
    }
    if (c->w == BW_IDLE) {
        c->median2 = median_of(c->values2, c->runs, NULL, NULL);
    }
}

/* Speed relative to the floor: above 1 is faster than the floor. For a time
 * figure the ratio is inverted so that the direction is the same. */
static bool ratio_of(const struct cell *c, const struct cell *floor_cell, double *out)
{
    if (!floor_cell || c->status != BENCH_OK || floor_cell->status != BENCH_OK || c->median <= 0 ||
        floor_cell->median <= 0) {
        return false;
    }
    *out =
        workloads[c->w].is_time ? floor_cell->median / c->median : c->median / floor_cell->median;
    return true;
}

static void format_value(char *buf, size_t len, enum bench_workload w, double v)
{
    if (w == BW_IDLE) {
        snprintf(buf, len, "%.0f", v);
    } else if (workloads[w].is_time) {
        snprintf(buf, len, "%.3f", v);
    } else if (v >= 100) {
        snprintf(buf, len, "%.0f", v);
    } else {
        snprintf(buf, len, "%.1f", v);
    }
}

static const char *status_name(enum bench_status s)
{
    return s == BENCH_OK ? "ok" : s == BENCH_NA ? "n/a" : "failed";
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', out);
        }
        fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
    }
    fputc('"', out);
}

static const struct cell *find_floor(const struct cell *cells, size_t n, enum bench_workload w)
{
    for (size_t i = 0; i < n; i++) {
        if (cells[i].w == w && !strcmp(cells[i].impl->name, floor_name)) {
            return &cells[i];
        }
    }
    return NULL;
}

static void print_table(const struct cell *cells, size_t n, int reps)
{
    printf("reseau %s, %s backend; median of %d run(s); speed = median / floor (%s), above 1 is "
           "faster\n\n",
           rs_version(), rs_backend_name(), reps, floor_name);
    printf("%-9s %-11s %10s %25s %7s  %s\n", "workload", "impl", "median", "min-max", "speed",
           "unit / note");
    for (size_t i = 0; i < n; i++) {
        const struct cell *c = &cells[i];
        const char *wname = workloads[c->w].name;
        if (c->status != BENCH_OK) {
            printf("%-9s %-11s %10s %25s %7s  %s\n", wname, c->impl->name, status_name(c->status),
                   "", "", c->note);
            continue;
        }
        char med[32], lo[32], hi[32], range[72], ratio_text[16] = "-";
        format_value(med, sizeof med, c->w, c->median);
        format_value(lo, sizeof lo, c->w, c->min);
        format_value(hi, sizeof hi, c->w, c->max);
        snprintf(range, sizeof range, "%s-%s", lo, hi);
        double ratio;
        if (ratio_of(c, find_floor(cells, n, c->w), &ratio)) {
            snprintf(ratio_text, sizeof ratio_text, "%.2f", ratio);
        }
        char extra[96] = "";
        if (c->w == BW_UDP || c->w == BW_UDP_TO) {
            snprintf(extra, sizeof extra, " (lost %llu of %llu)", (unsigned long long)c->lost,
                     (unsigned long long)c->sent);
        } else if (c->w == BW_FANIN) {
            snprintf(extra, sizeof extra, "; latency p50 %.1f us, p99 %.1f us", c->p50_median / 1e3,
                     c->p99_median / 1e3);
        } else if (c->w == BW_IDLE) {
            snprintf(extra, sizeof extra, ", RSS %.0f B/conn (median), %llu connections",
                     c->median2, (unsigned long long)(c->sent / (uint64_t)c->runs));
        }
        if (c->has_wakeups && c->wake_ops) {
            snprintf(extra, sizeof extra, " (%.0f wake-ups per 1M)",
                     (double)c->wakeups * 1e6 / (double)c->wake_ops);
        }
        printf("%-9s %-11s %10s %25s %7s  %s%s%s%s\n", wname, c->impl->name, med, range, ratio_text,
               workloads[c->w].unit, extra, c->note[0] ? "; " : "", c->note);
    }
}

static void print_json(const struct cell *cells, size_t n, int reps, bool quick)
{
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    printf("{\"date\":\"%s\",\"reseau\":\"%s\",\"backend\":\"%s\",\"floor\":\"%s\",\"reps\":%d,"
           "\"quick\":%s,\"results\":[",
           date, rs_version(), rs_backend_name(), floor_name, reps, quick ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        const struct cell *c = &cells[i];
        printf("%s\n{\"workload\":\"%s\",\"impl\":\"%s\",\"unit\":\"%s\",\"status\":\"%s\"",
               i ? "," : "", workloads[c->w].name, c->impl->name, workloads[c->w].unit,
               status_name(c->status));
        if (c->status == BENCH_OK) {
            printf(",\"median\":%.6g,\"min\":%.6g,\"max\":%.6g,\"values\":[", c->median, c->min,
                   c->max);
            for (int k = 0; k < c->runs; k++) {
                printf("%s%.6g", k ? "," : "", c->values[k]);
            }
            printf("]");
            double ratio;
            if (ratio_of(c, find_floor(cells, n, c->w), &ratio)) {
                printf(",\"speed_vs_floor\":%.4f", ratio);
            }
            if (c->w == BW_IDLE) {
                printf(",\"rss_per_conn\":%.6g", c->median2);
            }
            if (c->w == BW_UDP || c->w == BW_UDP_TO) {
                printf(",\"lost\":%llu,\"sent\":%llu", (unsigned long long)c->lost,
                       (unsigned long long)c->sent);
            } else if (c->w == BW_FANIN) {
                printf(",\"p50_us\":%.6g,\"p99_us\":%.6g", c->p50_median / 1e3,
                       c->p99_median / 1e3);
            }
            if (c->has_wakeups && c->wake_ops) {
                printf(",\"wakeups_per_million\":%.1f",
                       (double)c->wakeups * 1e6 / (double)c->wake_ops);
            }
        }
        printf(",\"note\":");
        json_string(stdout, c->note);
        printf("}");
    }
    printf("\n]}\n");
}

/* ---- command line ---- */

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: reseau-bench [options]\n"
                 "  --quick            tiny counts, one run each (proves the tool works)\n"
                 "  --reps N           runs per workload and implementation (default 5, quick 1)\n"
                 "  --workload LIST    comma-separated workloads (default: all)\n"
                 "  --impl LIST        comma-separated implementations (default: all)\n"
                 "  --ops N            operation count of every selected workload (round\n"
                 "                     trips, 64 KiB chunks, connections, tasks, timers,\n"
                 "                     datagrams, fanin round trips in all), for\n"
                 "                     differential instruction or request counts\n"
                 "  --conns N          fanin and idle connections (fanin default 200, quick\n"
                 "                     20; idle default 10000, quick 200; up to 10000 and\n"
                 "                     more, as RLIMIT_NOFILE allows)\n"
                 "  --json             machine-readable output instead of the table\n"
                 "  --list             list workloads and implementations\n");
    return code;
}

static bool in_list(const char *list, const char *name)
{
    if (!list) {
        return true;
    }
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) {
            return true;
        }
        p += len + (end ? 1 : 0);
    }
    return false;
}

static bool list_valid(const char *list, bool workload)
{
    if (!list) {
        return true;
    }
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool found = false;
        size_t count = workload ? (size_t)BW_COUNT : IMPL_COUNT;
        for (size_t i = 0; i < count; i++) {
            const char *name = workload ? workloads[i].name : impls[i]->name;
            found = found || (strlen(name) == len && !strncmp(p, name, len));
        }
        if (!found) {
            fprintf(stderr, "reseau-bench: unknown %s '%.*s' (see --list)\n",
                    workload ? "workload" : "implementation", (int)len, p);
            return false;
        }
        p += len + (end ? 1 : 0);
    }
    return true;
}

int main(int argc, char **argv)
{
#ifdef _WIN32
    if (argc == 4 && !strcmp(argv[1], "--idle-client")) {
        return bench_idle_client_main((uint16_t)atoi(argv[2]), atol(argv[3]));
    }
#endif
    bool quick = false, json = false;
    int reps = 0;
    long ops = -1;
    long conns = 0;
    const char *wlist = NULL, *ilist = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            quick = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--reps") && v) {
            reps = atoi(v);
            i++;
        } else if (!strcmp(a, "--ops") && v) {
            ops = atol(v);
            i++;
        } else if (!strcmp(a, "--conns") && v) {
            conns = atol(v);
            if (conns < 1 || conns > 1000000) {
                fprintf(stderr, "reseau-bench: --conns must be 1..1000000\n");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--workload") && v) {
            wlist = v;
            i++;
        } else if (!strcmp(a, "--impl") && v) {
            ilist = v;
            i++;
        } else if (!strcmp(a, "--list")) {
            for (int w = 0; w < BW_COUNT; w++) {
                printf("workload %-9s %s\n", workloads[w].name, workloads[w].unit);
            }
            for (size_t k = 0; k < IMPL_COUNT; k++) {
                printf("impl     %-11s %s\n", impls[k]->name, impls[k]->description);
            }
            return 0;
        } else if (!strcmp(a, "--help")) {
            return usage(stdout, 0);
        } else {
            fprintf(stderr, "reseau-bench: bad argument '%s'\n", a);
            return usage(stderr, 2);
        }
    }
    if (!list_valid(wlist, true) || !list_valid(ilist, false)) {
        return 2;
    }
    if (reps == 0) {
        reps = quick ? 1 : 5;
    }
    if (reps < 1 || reps > 64 || ops < -1) {
        fprintf(stderr, "reseau-bench: --reps must be 1..64 and --ops at least 0\n");
        return 2;
    }
    struct bench_params params = quick ? quick_params() : full_params();
    if (ops >= 0) {
        set_ops(&params, ops);
    }
    if (conns > 0) {
        params.fanin_connections = (int)conns;
        params.idle_connections = conns;
    }
    if (params.fanin_trips > 0 && params.fanin_trips < params.fanin_connections) {
        params.fanin_trips = params.fanin_connections; /* one round trip per connection at least */
    }
    char fd_note[160] = "";
    if (in_list(wlist, workloads[BW_FANIN].name) &&
        !descriptors_for(params.fanin_connections, fd_note, sizeof fd_note)) {
        fprintf(stderr, "reseau-bench: fanin: %s\n", fd_note);
    }

    static struct cell cells[BW_COUNT * IMPL_COUNT];
    size_t ncells = 0;
    int failures = 0;
    for (int w = 0; w < BW_COUNT; w++) {
        for (size_t k = 0; k < IMPL_COUNT; k++) {
            if (in_list(wlist, workloads[w].name) && in_list(ilist, impls[k]->name)) {
                cells[ncells].impl = impls[k];
                cells[ncells].w = (enum bench_workload)w;
                if (w == BW_FANIN && fd_note[0] && impls[k]->run[w]) {
                    cells[ncells].status = BENCH_FAILED;
                    snprintf(cells[ncells].note, sizeof cells[ncells].note, "%s", fd_note);
                    failures++;
                }
                ncells++;
            }
        }
    }
    bool ready[IMPL_COUNT];
    for (size_t k = 0; k < IMPL_COUNT; k++) {
        ready[k] = !impls[k]->init || impls[k]->init() == 0;
    }
    bool tty = isatty(fileno(stderr));
    size_t total = ncells * (size_t)reps, step = 0;
    /* Repetitions are the outer loop so that a load change on the machine
     * spreads over every implementation rather than hitting one of them. */
    for (int rep = 0; rep < reps; rep++) {
        for (size_t i = 0; i < ncells; i++) {
            struct cell *c = &cells[i];
            size_t k = 0;
            while (impls[k] != c->impl) {
                k++;
            }
            step++;
            if (!c->impl->run[c->w] || !ready[k] || c->status == BENCH_FAILED) {
                c->status = c->status == BENCH_FAILED ? BENCH_FAILED
                            : ready[k]                ? BENCH_NA
                                                      : BENCH_FAILED;
                if (!c->note[0]) {
                    snprintf(c->note, sizeof c->note, "%s",
                             !ready[k]                ? "initialisation failed"
                             : c->impl->na_note[c->w] ? c->impl->na_note[c->w]
                                                      : "not implemented");
                }
                continue;
            }
            fprintf(stderr, "%s[%zu/%zu] %s on %s, run %d/%d   %s", tty ? "\r" : "", step, total,
                    workloads[c->w].name, c->impl->name, rep + 1, reps, tty ? "" : "\n");
            fflush(stderr);
            struct bench_result r;
            memset(&r, 0, sizeof r);
            static struct bench_latency latency;
            memset(&latency, 0, sizeof latency);
            r.latency = c->w == BW_FANIN ? &latency : NULL;
            c->impl->run[c->w](&params, &r);
            if (r.status == BENCH_OK) {
                c->p50[c->runs] = (double)bench_latency_quantile(&latency, 0.50);
                c->p99[c->runs] = (double)bench_latency_quantile(&latency, 0.99);
                c->values2[c->runs] = r.value2;
                c->values[c->runs++] = figure(c->w, &r);
                c->lost += r.lost;
                c->sent += r.ops + r.lost;
                if (r.has_wakeups) {
                    c->has_wakeups = true;
                    c->wakeups += r.wakeups;
                    c->wake_ops += r.ops;
                }
                if (r.note[0]) {
                    snprintf(c->note, sizeof c->note, "%s", r.note);
                }
            } else {
                c->status = r.status;
                snprintf(c->note, sizeof c->note, "%s", r.note);
                failures += r.status == BENCH_FAILED;
            }
        }
    }
    if (tty) {
        fprintf(stderr, "\r%60s\r", "");
    }
    for (size_t k = 0; k < IMPL_COUNT; k++) {
        if (ready[k] && impls[k]->clean_up) {
            impls[k]->clean_up();
        }
    }
    for (size_t i = 0; i < ncells; i++) {
        summarize(&cells[i]);
    }
    if (json) {
        print_json(cells, ncells, reps, quick);
    } else {
        print_table(cells, ncells, reps);
    }
    return failures ? 1 : 0;
}
