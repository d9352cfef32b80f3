/*
 * The idle workload's measurement on POSIX (idle.h): a heap counter that
 * interposes malloc for the whole process, the resident set from
 * /proc/self/statm, the descriptor limit and the client process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* malloc_usable_size */
#endif
#include "idle.h"

#include "posix_net.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>

/*
 * Every allocation of the process (reseau, libevent, libuv, glibc itself)
 * comes through these, which the executable defines ahead of glibc's, so
 * the count covers every thread's arena alike: mallinfo2 would see the main
 * arena only, and reseau's loop runs on a thread of its own. A chunk counts
 * as its usable size plus the size word in front of it, what malloc takes
 * from the heap for it (its rounding included, fragmentation not).
 */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

/* Counted only between bench_mem_start and bench_mem_stop, so that the
 * other workloads pay one test per call: the bytes allocated minus the bytes
 * freed in that window are the growth of the live heap. */
static long long heap_live;
static int counting;

static size_t chunk_bytes(void *p)
{
    return p ? malloc_usable_size(p) + sizeof(size_t) : 0;
}

static void *counted(void *p)
{
    if (p && __atomic_load_n(&counting, __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&heap_live, (long long)chunk_bytes(p), __ATOMIC_RELAXED);
    }
    return p;
}

void *malloc(size_t size)
{
    return counted(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
    return counted(__libc_calloc(n, size));
}

void free(void *p)
{
    if (p && __atomic_load_n(&counting, __ATOMIC_RELAXED)) {
        __atomic_sub_fetch(&heap_live, (long long)chunk_bytes(p), __ATOMIC_RELAXED);
    }
    __libc_free(p);
}

void *realloc(void *p, size_t size)
{
    if (!__atomic_load_n(&counting, __ATOMIC_RELAXED)) {
        return __libc_realloc(p, size);
    }
    size_t old = chunk_bytes(p);
    void *q = __libc_realloc(p, size);
    if (q || size == 0) {
        __atomic_sub_fetch(&heap_live, (long long)old, __ATOMIC_RELAXED);
        counted(q);
    }
    return q;
}

void *memalign(size_t align, size_t size)
{
    return counted(__libc_memalign(align, size));
}

void *aligned_alloc(size_t align, size_t size)
{
    return counted(__libc_memalign(align, size));
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0) {
        return EINVAL;
    }
    void *p = counted(__libc_memalign(align, size));
    if (!p) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

static int64_t heap_now(void)
{
    return (int64_t)__atomic_load_n(&heap_live, __ATOMIC_RELAXED);
}

/* Starting counts from zero: the window's growth is what is read. */
static void heap_count(bool on)
{
    if (on) {
        __atomic_store_n(&heap_live, 0, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&counting, on ? 1 : 0, __ATOMIC_SEQ_CST);
}
#else
static void heap_count(bool on)
{
    (void)on;
}

static int64_t heap_now(void)
{
    return BENCH_MEM_NONE;
}
#endif

static void sample(struct bench_mem *out)
{
#ifdef __GLIBC__
    /* Free heap pages (earlier runs') go back to the OS first, so that the
     * resident set counts the memory in use: otherwise a run reuses pages
     * an earlier one left resident and shows no growth. */
    malloc_trim(0);
#endif
    out->heap = heap_now();
    out->rss = BENCH_MEM_NONE;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long size, resident;
        if (fscanf(f, "%ld %ld", &size, &resident) == 2) {
            out->rss = (int64_t)resident * sysconf(_SC_PAGESIZE);
        }
        fclose(f);
    }
}

void bench_mem_start(struct bench_mem *before)
{
    heap_count(true);
    sample(before);
}

void bench_mem_stop(struct bench_mem *after)
{
    sample(after);
    heap_count(false);
}

/* The connections plus the loop's own descriptors and stdio. */
#define IDLE_FD_RESERVE 64

bool bench_idle_fd_limit(long n, struct bench_result *r)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        bench_fail(r, "getrlimit: %s", strerror(errno));
        return false;
    }
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)(n + IDLE_FD_RESERVE) > rl.rlim_cur) {
        bench_fail(r,
                   "%ld connections need %ld descriptors, RLIMIT_NOFILE allows %llu (hard "
                   "limit): lower --conns or raise the limit (ulimit -Hn)",
                   n, n + IDLE_FD_RESERVE, (unsigned long long)rl.rlim_cur);
        return false;
    }
    return true;
}

static pid_t client_pid = -1;
static int client_pipe = -1; /* closing it tells the client to exit */

static void client_main(uint16_t port, long n, int quit_fd)
{
    /* Descriptors are not freed: the process exits when told to, the
     * connections closing with it. */
    for (long i = 0; i < n; i++) {
        if (bench_tcp_connect(port) < 0) {
            fprintf(stderr, "idle client: connect %ld of %ld: %s\n", i + 1, n, strerror(errno));
            _exit(1);
        }
    }
    char c;
    while (read(quit_fd, &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
}

int bench_idle_clients_start(uint16_t port, long n, struct bench_result *r)
{
    int fds[2];
    if (pipe(fds) != 0) {
        bench_fail(r, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        bench_fail(r, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[1]);
        client_main(port, n, fds[0]);
    }
    close(fds[0]);
    client_pid = pid;
    client_pipe = fds[1];
    return 0;
}

void bench_idle_clients_stop(void)
{
    heap_count(false); /* a run that failed between start and stop */
    if (client_pid < 0) {
        return;
    }
    close(client_pipe);
    int status;
    while (waitpid(client_pid, &status, 0) < 0 && errno == EINTR) {
    }
    client_pid = -1;
    client_pipe = -1;
}

const char *bench_idle_no_heap_reason(void)
{
    return "no heap counter in this build (glibc only)";
}
