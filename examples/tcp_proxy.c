/*
 * tcp_proxy: forwards every accepted TCP connection to an upstream server,
 * bytes both ways, on one event loop. Stops on Ctrl-C.
 *
 *   tcp_proxy --upstream-port N [--upstream-host ADDR] [--host ADDR] [--port N]
 *             [--max-queue BYTES] [--help]
 *
 * The two rules that make a proxy safe, and the part to copy:
 *  - Back-pressure, per direction: bytes read from one side are written to
 *    the other; while the other side's write queue
 *    (rs_socket_get_write_queue_size) holds more than --max-queue bytes,
 *    the proxy stops reading the first side
 *    (rs_socket_unsubscribe_from_readable_events): what it sends stays in
 *    the kernel and TCP slows it down. The write completion that brings the
 *    queue to a quarter of the bound subscribes again, which reports the
 *    data that waited. So a peer that reads slowly, or never, costs the
 *    proxy at most --max-queue bytes plus one read per direction.
 *  - Half-close: when one side ends its stream, what it sent is still
 *    delivered; then the proxy shuts down the write side towards the other
 *    (which reads end of stream), and the other direction goes on until it
 *    ends too. A reset on either side closes both; a side that is paused is
 *    not read, so its reset is seen once the proxy reads it again (or a
 *    write to the other side fails).
 *
 * When a connection pair ends it prints the bytes each way and the highest
 * write queue it saw ("peak queued N bytes"), the figure that shows the
 * bound held.
 *
 * Try it:  echo_server --port 9000,  tcp_proxy --port 9001 --upstream-port 9000,
 *          then  nc 127.0.0.1 9001
 */
#include <reseau/reseau.h>

#include "interrupts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#endif

/* One read; also the most one write adds above the bound. */
#define READ_SIZE (64u << 10)
#define DEFAULT_MAX_QUEUE (1u << 20)

struct pair;

/* One direction: bytes read from sockets[from] are written to sockets[!from]. */
struct direction {
    struct pair *pair;
    int from;
    bool subscribed; /* the readable callback of sockets[from] is on */
    bool paused;     /* unsubscribed because the other side's queue is full */
    bool ended;      /* sockets[from] reached end of stream */
    bool shut;       /* the write side of sockets[!from] was shut down */
    unsigned long long bytes;
    size_t peak; /* the highest write queue of sockets[!from] */
};

/* A client and its upstream, on the loop thread only. */
struct pair {
    rs_socket *sockets[2]; /* 0: the client, 1: the upstream */
    struct direction dir[2];
    long id;
    long writes; /* whose completion has not run yet */
    bool closed; /* both sockets destroyed; freed when writes is 0 */
    struct pair *prev;
    struct pair *next;
};

/* One forwarded chunk: valid until its write completes, which may be after
 * the pair was closed. */
struct chunk {
    struct direction *dir;
    unsigned char bytes[];
};

static struct {
    rs_event_loop *loop;
    rs_socket_endpoint upstream;
    size_t max_queue;
    size_t resume_below;
    struct pair *pairs; /* loop thread only */
    long served;        /* loop thread only */
} proxy;

static size_t queued(rs_socket *s)
{
    size_t n = 0;
    rs_socket_get_write_queue_size(s, &n); /* loop thread: cannot fail */
    return n;
}

static void pair_free_if_idle(struct pair *p)
{
    if (p->closed && p->writes == 0) {
        free(p);
    }
}

static void pair_close(struct pair *p, const char *why)
{
    if (p->closed) {
        return;
    }
    p->closed = true;
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        proxy.pairs = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    }
    size_t peak = p->dir[0].peak > p->dir[1].peak ? p->dir[0].peak : p->dir[1].peak;
    printf("pair %ld closed (%s): client to upstream %llu bytes, upstream to client %llu "
           "bytes, peak queued %zu bytes\n",
           p->id, why, p->dir[0].bytes, p->dir[1].bytes, peak);
    fflush(stdout);
    /* Writes still queued complete later, with a NULL socket. */
    for (int i = 0; i < 2; i++) {
        if (p->sockets[i]) {
            rs_socket_destroy(p->sockets[i]);
            p->sockets[i] = NULL;
        }
    }
    pair_free_if_idle(p);
}

static void stop_reading(struct direction *d)
{
    if (d->subscribed) {
        rs_socket_unsubscribe_from_readable_events(d->pair->sockets[d->from]);
        d->subscribed = false;
    }
}

static void on_readable(rs_socket *socket, int error_code, void *user_data);

static int start_reading(struct direction *d)
{
    if (rs_socket_subscribe_to_readable_events(d->pair->sockets[d->from], on_readable, d) != 0) {
        return -1;
    }
    d->subscribed = true;
    return 0;
}

/* The side d reads ended: once everything it sent is written, end the
 * stream towards the other side; when both directions ended, close. */
static void finish_if_done(struct direction *d)
{
    struct pair *p = d->pair;
    rs_socket *to = p->sockets[!d->from];
    if (!d->ended || d->shut || queued(to) != 0) {
        return; /* the last completion calls again */
    }
    d->shut = true;
    if (rs_socket_shutdown(to, RS_SOCKET_DIRECTION_WRITE) != 0) {
        pair_close(p, rs_error_name(rs_last_error()));
        return;
    }
    if (p->dir[0].shut && p->dir[1].shut) {
        pair_close(p, "both ends finished");
    }
}

static void on_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct chunk *k = user_data;
    struct direction *d = k->dir;
    struct pair *p = d->pair;
    free(k);
    p->writes--;
    if (!socket || p->closed) {
        pair_free_if_idle(p);
        return;
    }
    if (error_code != 0) {
        pair_close(p, rs_error_name(error_code));
    } else if (d->ended) {
        finish_if_done(d);
    } else if (d->paused && queued(socket) <= proxy.resume_below) {
        /* Subscribing again reports what waited in the kernel meanwhile. */
        d->paused = false;
        if (start_reading(d) != 0) {
            pair_close(p, rs_error_name(rs_last_error()));
        }
    }
}

/* Reads and forwards until the socket is drained, the other side's queue is
 * over the bound, or the stream ended. May close the pair. */
static void pump(struct direction *d)
{
    struct pair *p = d->pair;
    rs_socket *from = p->sockets[d->from];
    rs_socket *to = p->sockets[!d->from];
    for (;;) {
        size_t q = queued(to);
        if (q > d->peak) {
            d->peak = q;
        }
        if (q > proxy.max_queue) {
            d->paused = true;
            stop_reading(d);
            return;
        }
        struct chunk *k = malloc(sizeof *k + READ_SIZE);
        if (!k) {
            pair_close(p, "out of memory");
            return;
        }
        size_t n = 0;
        if (rs_socket_read(from, k->bytes, READ_SIZE, &n) != 0) {
            int err = rs_last_error();
            free(k);
            if (err == RS_ERROR_WOULD_BLOCK) {
                return; /* drained: called again when more arrives */
            }
            if (err == RS_ERROR_SOCKET_CLOSED) {
                d->ended = true;
                stop_reading(d);
                finish_if_done(d);
            } else {
                pair_close(p, rs_error_name(err));
            }
            return;
        }
        k->dir = d;
        if (rs_socket_write(to, k->bytes, n, on_written, k) != 0) {
            free(k);
            pair_close(p, rs_error_name(rs_last_error()));
            return;
        }
        p->writes++;
        d->bytes += n;
    }
}

static void on_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct direction *d = user_data;
    if (error_code == RS_ERROR_SOCKET_CLOSED) {
        d->ended = true;
        stop_reading(d);
        finish_if_done(d);
    } else if (error_code != 0) {
        pair_close(d->pair, rs_error_name(error_code));
    } else {
        pump(d);
    }
}

static void on_upstream_connected(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct pair *p = user_data;
    if (error_code != 0) {
        fprintf(stderr, "tcp_proxy: upstream %s port %u: %s\n", proxy.upstream.address,
                proxy.upstream.port, rs_error_str(error_code));
        pair_close(p, "upstream unreachable");
        return;
    }
    if (start_reading(&p->dir[0]) != 0 || start_reading(&p->dir[1]) != 0) {
        pair_close(p, rs_error_name(rs_last_error()));
    }
}

static void on_accept(rs_socket *listener, int error_code, rs_socket *socket, void *user_data)
{
    (void)listener;
    (void)user_data;
    if (error_code != 0) {
        fprintf(stderr, "tcp_proxy: accept failed: %s\n", rs_error_str(error_code));
        return;
    }
    struct pair *p = calloc(1, sizeof *p);
    if (!p) {
        rs_socket_destroy(socket);
        return;
    }
    p->id = ++proxy.served;
    p->sockets[0] = socket;
    for (int i = 0; i < 2; i++) {
        p->dir[i].pair = p;
        p->dir[i].from = i;
    }
    p->next = proxy.pairs;
    if (p->next) {
        p->next->prev = p;
    }
    proxy.pairs = p;
    printf("pair %ld opened\n", p->id);
    fflush(stdout);
    rs_socket_options options = {.type = RS_SOCKET_STREAM, .domain = RS_SOCKET_IPV4};
    if (strchr(proxy.upstream.address, ':')) {
        options.domain = RS_SOCKET_IPV6;
    }
    p->sockets[1] = rs_socket_new(&options);
    if (!p->sockets[1] || rs_socket_assign_to_event_loop(socket, proxy.loop) != 0 ||
        rs_socket_connect(p->sockets[1], &proxy.upstream, proxy.loop, on_upstream_connected, p) !=
            0) {
        fprintf(stderr, "tcp_proxy: %s\n", rs_error_str(rs_last_error()));
        pair_close(p, "setup failed");
    }
}

static void close_all(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    (void)status;
    while (proxy.pairs) {
        pair_close(proxy.pairs, "proxy stopping");
    }
}

static int usage(FILE *out, int code)
{
    fprintf(out,
            "usage: tcp_proxy --upstream-port N [--upstream-host ADDR] [--host ADDR] [--port N]\n"
            "                 [--max-queue BYTES]\n"
            "  --upstream-port N     the server's port, 1..65535 (required)\n"
            "  --upstream-host ADDR  the server's address (default 127.0.0.1)\n"
            "  --host ADDR           address to listen on (default 127.0.0.1)\n"
            "  --port N              port to listen on, 0..65535 (default 0: the system picks)\n"
            "  --max-queue BYTES     write queue per direction above which the other side\n"
            "                        is not read, 65536..1073741824 (default 1048576)\n"
            "  --help                this text\n");
    return code;
}

static bool parse_number(const char *text, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *upstream_host = "127.0.0.1";
    long long port = 0, upstream_port = 0, max_queue = DEFAULT_MAX_QUEUE;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(arg, "--help")) {
            return usage(stdout, 0);
        } else if (!strcmp(arg, "--host") && has_value) {
            host = argv[++i];
        } else if (!strcmp(arg, "--upstream-host") && has_value) {
            upstream_host = argv[++i];
        } else if (!strcmp(arg, "--port") && has_value) {
            if (!parse_number(argv[++i], 0, 65535, &port)) {
                fprintf(stderr, "tcp_proxy: --port must be a number 0..65535, not '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(arg, "--upstream-port") && has_value) {
            if (!parse_number(argv[++i], 1, 65535, &upstream_port)) {
                fprintf(stderr, "tcp_proxy: --upstream-port must be a number 1..65535, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(arg, "--max-queue") && has_value) {
            if (!parse_number(argv[++i], 65536, 1 << 30, &max_queue)) {
                fprintf(stderr,
                        "tcp_proxy: --max-queue must be a number 65536..1073741824, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else {
            bool takes_value = !strcmp(arg, "--host") || !strcmp(arg, "--port") ||
                               !strcmp(arg, "--upstream-host") || !strcmp(arg, "--upstream-port") ||
                               !strcmp(arg, "--max-queue");
            fprintf(stderr, "tcp_proxy: %s '%s'\n",
                    takes_value ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        }
    }
    if (!upstream_port) {
        fprintf(stderr, "tcp_proxy: --upstream-port is required\n");
        return usage(stderr, 2);
    }
    rs_socket_endpoint local;
    memset(&local, 0, sizeof local);
    memset(&proxy.upstream, 0, sizeof proxy.upstream);
    if (strlen(host) >= sizeof local.address ||
        strlen(upstream_host) >= sizeof proxy.upstream.address) {
        fprintf(stderr, "tcp_proxy: address too long\n");
        return 2;
    }
    strcpy(local.address, host);
    local.port = (uint32_t)port;
    strcpy(proxy.upstream.address, upstream_host);
    proxy.upstream.port = (uint32_t)upstream_port;
    proxy.max_queue = (size_t)max_queue;
    proxy.resume_below = proxy.max_queue / 4;

    block_interrupts();
    if (rs_library_init() != 0) {
        fprintf(stderr, "tcp_proxy: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    int rc = 1;
    rs_socket_options options = {.type = RS_SOCKET_STREAM,
                                 .domain = strchr(host, ':') ? RS_SOCKET_IPV6 : RS_SOCKET_IPV4};
    proxy.loop = rs_event_loop_new(NULL);
    rs_socket *listener = rs_socket_new(&options);
    rs_socket_endpoint bound;
    if (!proxy.loop || rs_event_loop_run(proxy.loop) != 0 || !listener ||
        rs_socket_bind(listener, &local) != 0 || rs_socket_get_bound_address(listener, &bound) ||
        rs_socket_listen(listener, 128) != 0 ||
        rs_socket_start_accept(listener, proxy.loop, on_accept, NULL) != 0) {
        fprintf(stderr, "tcp_proxy: %s: %s\n", local.address, rs_error_str(rs_last_error()));
        goto out;
    }
    printf("tcp_proxy: listening on %s port %u (to %s port %u, max queue %zu bytes, %s "
           "backend)\n",
           bound.address, bound.port, proxy.upstream.address, proxy.upstream.port, proxy.max_queue,
           rs_backend_name());
    fflush(stdout);
    wait_for_interrupt();
    rc = 0;
out:
    if (listener) {
        rs_socket_destroy(listener);
    }
    if (proxy.loop) {
        rs_task task;
        rs_task_init(&task, close_all, NULL, "close all pairs");
        /* Runs on the loop, or on this thread while destroy cancels it. */
        rs_event_loop_schedule_now(proxy.loop, &task);
        rs_event_loop_destroy(proxy.loop);
    }
    rs_library_cleanup();
    return rc;
}
