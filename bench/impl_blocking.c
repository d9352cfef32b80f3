/*
 * The kernel floor: the workloads with blocking system calls and no event
 * loop at all. One thread drives both ends (a loopback send lands in the
 * peer's buffer before it returns), so no poll and no context switch is
 * counted. Tasks are a mutex + condition
 * variable queue; timers a binary heap in an array and a sleeping thread.
 * fanin has no blocking equivalent short of a thread per connection.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include "bench.h"
#include "posix_net.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const unsigned char payload[BENCH_CHUNK];
static unsigned char sink[BENCH_CHUNK];

static bool read_exactly(int fd, unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static bool write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0) {
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static void bl_pingpong(const struct bench_params *p, struct bench_result *r)
{
    uint16_t port;
    int fds[2];
    int listener = bench_tcp_listener(&port);
    if (listener < 0 || bench_tcp_pair(listener, port, false, fds) != 0) {
        bench_fail(r, "set-up: %s", strerror(errno));
        if (listener >= 0) {
            close(listener);
        }
        return;
    }
    unsigned char buf[BENCH_PINGPONG_SIZE];
    uint64_t start = bench_now_ns();
    long i = 0;
    for (; i < p->pingpong_trips; i++) {
        if (!write_all(fds[0], payload, sizeof buf) || !read_exactly(fds[1], buf, sizeof buf) ||
            !write_all(fds[1], buf, sizeof buf) || !read_exactly(fds[0], buf, sizeof buf)) {
            bench_fail(r, "round trip: %s", strerror(errno));
            break;
        }
    }
    r->elapsed_ns = bench_now_ns() - start;
    r->ops = (uint64_t)i;
    close(fds[0]);
    close(fds[1]);
    close(listener);
}

/* ---- stream and pipe ----
 *
 * One thread: write a 64 KiB chunk, then read until it has all arrived. A
 * writer thread would measure context switches instead (the pipe holds
 * exactly one chunk), and a 64 KiB write fits an empty loopback connection. */

static void flow(int wfd, int rfd, uint64_t total, struct bench_result *r)
{
    uint64_t start = bench_now_ns();
    uint64_t received = 0;
    while (received < total) {
        size_t len = total - received < BENCH_CHUNK ? (size_t)(total - received) : BENCH_CHUNK;
        if (!write_all(wfd, payload, len) || !read_exactly(rfd, sink, len)) {
            bench_fail(r, "chunk: %s", strerror(errno));
            break;
        }
        received += len;
    }
    r->elapsed_ns = bench_now_ns() - start;
    r->ops = received;
}

static void bl_stream(const struct bench_params *p, struct bench_result *r)
{
    uint16_t port;
    int fds[2];
    int listener = bench_tcp_listener(&port);
    if (listener < 0 || bench_tcp_pair(listener, port, false, fds) != 0) {
        bench_fail(r, "set-up: %s", strerror(errno));
    } else {
        flow(fds[0], fds[1], p->stream_bytes, r);
        close(fds[0]);
        close(fds[1]);
    }
    if (listener >= 0) {
        close(listener);
    }
}

static void bl_pipe(const struct bench_params *p, struct bench_result *r)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        bench_fail(r, "pipe2: %s", strerror(errno));
        return;
    }
    flow(fds[1], fds[0], p->pipe_bytes, r);
    close(fds[0]);
    close(fds[1]);
}

/* ---- connect ---- */

static void bl_connect(const struct bench_params *p, struct bench_result *r)
{
    uint16_t port;
    int listener = bench_tcp_listener(&port);
    if (listener < 0) {
        bench_fail(r, "listener: %s", strerror(errno));
        return;
    }
    uint64_t start = bench_now_ns();
    long i = 0;
    for (; i < p->connects; i++) {
        int c = bench_tcp_connect(port);
        int s = c < 0 ? -1 : accept(listener, NULL, NULL);
        if (s < 0) {
            bench_fail(r, "connect/accept: %s", strerror(errno));
            if (c >= 0) {
                close(c);
            }
            break;
        }
        close(c);
        close(s);
    }
    r->elapsed_ns = bench_now_ns() - start;
    r->ops = (uint64_t)i;
    close(listener);
}

/* ---- tasks: mutex + condition variable + list ---- */

struct bl_task {
    struct bl_task *next;
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct bl_task *head, *tail;
    bool sleeping; /* under lock: the consumer waits on cond */
    long n;
    long wakeups; /* condition signals (producer thread) */
};

static void consumer_main(void *arg)
{
    struct queue *q = arg;
    long done = 0;
    while (done < q->n) {
        pthread_mutex_lock(&q->lock);
        while (!q->head) {
            q->sleeping = true;
            pthread_cond_wait(&q->cond, &q->lock);
        }
        q->sleeping = false;
        struct bl_task *list = q->head;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        for (; list; list = list->next) {
            done++;
        }
    }
}

static void bl_tasks(const struct bench_params *p, struct bench_result *r)
{
    struct queue q;
    memset(&q, 0, sizeof q);
    q.n = p->tasks;
    struct bl_task *items = calloc((size_t)q.n + 1, sizeof *items);
    if (!items) {
        bench_fail(r, "out of memory");
        return;
    }
    bench_prefault(items, ((size_t)q.n + 1) * sizeof *items);
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.cond, NULL);
    uint64_t start = bench_now_ns();
    struct bench_thread *t = bench_thread_start(consumer_main, &q);
    for (long i = 0; i < q.n; i++) {
        items[i].next = NULL;
        pthread_mutex_lock(&q.lock);
        if (q.tail) {
            q.tail->next = &items[i];
        } else {
            q.head = &items[i];
        }
        q.tail = &items[i];
        bool wake = q.sleeping;
        pthread_mutex_unlock(&q.lock);
        if (wake) {
            q.wakeups++;
            pthread_cond_signal(&q.cond);
        }
    }
    bench_thread_join(t);
    r->elapsed_ns = bench_now_ns() - start;
    r->ops = (uint64_t)q.n;
    r->wakeups = (uint64_t)q.wakeups;
    r->has_wakeups = true;
    pthread_cond_destroy(&q.cond);
    pthread_mutex_destroy(&q.lock);
    free(items);
}

/* ---- timers: a binary heap of deadlines in an array ---- */

static void heap_push(uint64_t *h, long *n, uint64_t v)
{
    long i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static void heap_pop(uint64_t *h, long *n)
{
    uint64_t v = h[--*n];
    long i = 0;
    for (;;) {
        long c = 2 * i + 1;
        if (c >= *n) {
            break;
        }
        if (c + 1 < *n && h[c + 1] < h[c]) {
            c++;
        }
        if (h[c] >= v) {
            break;
        }
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static void bl_timers(const struct bench_params *p, struct bench_result *r)
{
    uint64_t *heap = malloc(((size_t)p->timers + 1) * sizeof *heap);
    if (!heap) {
        bench_fail(r, "out of memory");
        return;
    }
    long n = 0, fired = 0;
    uint64_t start = bench_now_ns();
    uint64_t seed = BENCH_RAND_SEED;
    for (long i = 0; i < p->timers; i++) {
        heap_push(heap, &n, start + bench_rand_next(&seed) % p->timer_span_ns);
    }
    while (n > 0) {
        uint64_t now = bench_now_ns();
        while (n > 0 && heap[0] <= now) {
            heap_pop(heap, &n);
            fired++;
        }
        if (n > 0) {
            struct timespec ts = {(time_t)(heap[0] / 1000000000u), (long)(heap[0] % 1000000000u)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        }
    }
    r->elapsed_ns = bench_now_ns() - start;
    r->ops = (uint64_t)fired;
    free(heap);
}

/* ---- udp: send a window, then read it back ---- */

static void bl_udp(const struct bench_params *p, struct bench_result *r)
{
    int fds[2];
    if (bench_udp_pair(false, fds) != 0) {
        bench_fail(r, "udp set-up: %s", strerror(errno));
        return;
    }
    struct timeval tv = {0, (suseconds_t)(BENCH_UDP_STALL_NS / 1000u)};
    setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint64_t n = (uint64_t)p->udp_datagrams, sent = 0, received = 0, lost = 0;
    unsigned char buf[2048];
    uint64_t start = bench_now_ns();
    while (received + lost < n) {
        while (sent < n && sent - received - lost < (uint64_t)p->udp_window) {
            if (send(fds[0], payload, BENCH_UDP_SIZE, 0) < 0) {
                bench_fail(r, "udp send: %s", strerror(errno));
                goto out;
            }
            sent++;
        }
        if (recv(fds[1], buf, sizeof buf, 0) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                bench_fail(r, "udp recv: %s", strerror(errno));
                goto out;
            }
            lost = sent - received; /* nothing for a whole stall period */
            continue;
        }
        bench_udp_arrived(sent, &received, &lost);
    }
out:
    r->elapsed_ns = bench_now_ns() - start;
    r->ops = received;
    r->lost = lost;
    close(fds[0]);
    close(fds[1]);
}

/* ---- udp_to: the same, unconnected: sendto and recvfrom ---- */

static void bl_udp_to(const struct bench_params *p, struct bench_result *r)
{
    int fds[2];
    struct sockaddr_in to;
    if (bench_udp_unconnected_pair(fds, &to) != 0) {
        bench_fail(r, "udp set-up: %s", strerror(errno));
        return;
    }
    struct timeval tv = {0, (suseconds_t)(BENCH_UDP_STALL_NS / 1000u)};
    setsockopt(fds[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint64_t n = (uint64_t)p->udp_datagrams, sent = 0, received = 0, lost = 0;
    unsigned char buf[2048];
    struct sockaddr_storage from;
    uint64_t start = bench_now_ns();
    while (received + lost < n) {
        while (sent < n && sent - received - lost < (uint64_t)p->udp_window) {
            if (sendto(fds[0], payload, BENCH_UDP_SIZE, 0, (const struct sockaddr *)&to,
                       sizeof to) < 0) {
                bench_fail(r, "udp sendto: %s", strerror(errno));
                goto out;
            }
            sent++;
        }
        socklen_t len = sizeof from;
        if (recvfrom(fds[1], buf, sizeof buf, 0, (struct sockaddr *)&from, &len) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                bench_fail(r, "udp recvfrom: %s", strerror(errno));
                goto out;
            }
            lost = sent - received; /* nothing for a whole stall period */
            continue;
        }
        bench_udp_arrived(sent, &received, &lost);
    }
out:
    r->elapsed_ns = bench_now_ns() - start;
    r->ops = received;
    r->lost = lost;
    close(fds[0]);
    close(fds[1]);
}

const struct bench_impl bench_impl_blocking = {
    .name = "blocking",
    .description = "blocking system calls, no event loop: the kernel floor",
    .run =
        {
            [BW_PINGPONG] = bl_pingpong,
            [BW_STREAM] = bl_stream,
            [BW_CONNECT] = bl_connect,
            [BW_TASKS] = bl_tasks,
            [BW_TIMERS] = bl_timers,
            [BW_UDP] = bl_udp,
            [BW_PIPE] = bl_pipe,
            [BW_UDP_TO] = bl_udp_to,
        },
    .na_note =
        {
            [BW_FANIN] = "no blocking equivalent without a thread per connection",
            [BW_IDLE] = "no blocking equivalent without a thread per connection",
            [BW_WATCH] = "readiness needs a poller: its pingpong row is the kernel floor",
        },
};
