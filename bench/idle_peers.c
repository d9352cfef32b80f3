/*
 * The idle workload on the native peers (idle.h): raw libevent (one
 * persistent EV_READ event per accepted descriptor, as its other workloads
 * use) and libuv (a uv_tcp_t per connection, uv_read_start).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "idle.h"
#include "posix_net.h"

#include <event2/event.h>
#include <uv.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The listener backlog: connections arrive faster than one loop accepts. */
#define IDLE_BACKLOG 4096

/* ---- raw libevent ---- */

struct le_idle {
    struct event_base *base;
    struct bench_result *r;
    struct event **events;
    long n, count;
};

static void le_idle_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void le_idle_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct le_idle *id = arg;
    while (id->count < id->n) {
        int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s < 0) {
            if (errno != EAGAIN) {
                bench_fail(id->r, "accept: %s", strerror(errno));
                event_base_loopbreak(id->base);
            }
            return;
        }
        struct event *ev = event_new(id->base, s, EV_READ | EV_PERSIST, le_idle_read, NULL);
        if (!ev || event_add(ev, NULL) != 0) {
            bench_fail(id->r, "event_new / event_add failed");
            event_base_loopbreak(id->base);
            return;
        }
        id->events[id->count++] = ev;
    }
    event_base_loopbreak(id->base);
}

void bench_le_idle(const struct bench_params *p, struct bench_result *r)
{
    long n = p->idle_connections;
    if (!bench_idle_fd_limit(n, r)) {
        return;
    }
    struct le_idle id = {.r = r, .n = n};
    uint16_t port;
    int listener = bench_tcp_listener(&port);
    id.events = calloc((size_t)n, sizeof *id.events);
    id.base = event_base_new();
    struct event *accept_ev = NULL;
    if (listener < 0 || bench_set_nonblock(listener) != 0 || listen(listener, IDLE_BACKLOG) != 0 ||
        !id.events || !id.base) {
        bench_fail(r, "set-up: %s", strerror(errno));
        goto out;
    }
    accept_ev = event_new(id.base, listener, EV_READ | EV_PERSIST, le_idle_accept, &id);
    struct bench_mem before, after;
    bench_mem_start(&before);
    event_add(accept_ev, NULL);
    if (bench_idle_clients_start(port, n, r) != 0) {
        goto out;
    }
    struct timeval limit = {(long)(BENCH_TIMEOUT_NS / 1000000000u), 0};
    event_base_loopexit(id.base, &limit);
    event_base_dispatch(id.base);
    event_del(accept_ev);
    bench_mem_stop(&after);
    if (r->status == BENCH_OK && id.count < n) {
        bench_fail(r, "timed out with %ld of %ld connections", id.count, n);
    }
    if (r->status == BENCH_OK) {
        bench_idle_result(r, n, &before, &after);
    }
out:
    for (long i = 0; i < id.count; i++) {
        int fd = (int)event_get_fd(id.events[i]);
        event_free(id.events[i]);
        close(fd);
    }
    bench_idle_clients_stop();
    if (accept_ev) {
        event_free(accept_ev);
    }
    if (id.base) {
        event_base_free(id.base);
    }
    if (listener >= 0) {
        close(listener);
    }
    free(id.events);
}

/* ---- libuv ---- */

struct uv_idle {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_timer_t limit;
    struct bench_result *r;
    uv_tcp_t **clients;
    long n, count;
};

static void uv_idle_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    (void)size;
    static char sink[64];
    *buf = uv_buf_init(sink, sizeof sink);
}

static void uv_idle_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)s;
    (void)n;
    (void)buf;
}

static void uv_idle_connection(uv_stream_t *server, int status)
{
    struct uv_idle *id = server->data;
    if (status != 0) {
        bench_fail(id->r, "listen: %s", uv_strerror(status));
        uv_stop(&id->loop);
        return;
    }
    uv_tcp_t *c = malloc(sizeof *c);
    int rc;
    if (!c || (rc = uv_tcp_init(&id->loop, c)) != 0) {
        bench_fail(id->r, "uv_tcp_init failed");
        free(c);
        uv_stop(&id->loop);
        return;
    }
    id->clients[id->count++] = c;
    if ((rc = uv_accept(server, (uv_stream_t *)c)) != 0 ||
        (rc = uv_read_start((uv_stream_t *)c, uv_idle_alloc, uv_idle_read)) != 0) {
        bench_fail(id->r, "accept: %s", uv_strerror(rc));
        uv_stop(&id->loop);
        return;
    }
    if (id->count == id->n) {
        uv_stop(&id->loop);
    }
}

static void uv_idle_limit(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void uv_idle_free(uv_handle_t *h)
{
    free(h);
}

void bench_uv_idle(const struct bench_params *p, struct bench_result *r)
{
    long n = p->idle_connections;
    if (!bench_idle_fd_limit(n, r)) {
        return;
    }
    struct uv_idle *id = calloc(1, sizeof *id);
    uv_tcp_t **clients = calloc((size_t)n, sizeof *clients);
    if (!id || !clients || uv_loop_init(&id->loop) != 0) {
        bench_fail(r, "set-up failed");
        free(id);
        free(clients);
        return;
    }
    id->r = r;
    id->n = n;
    id->clients = clients;
    id->server.data = id;
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    struct sockaddr_storage bound;
    int len = sizeof bound;
    int rc;
    uv_tcp_init(&id->loop, &id->server);
    uv_timer_init(&id->loop, &id->limit);
    if ((rc = uv_tcp_bind(&id->server, (const struct sockaddr *)&sin, 0)) != 0 ||
        (rc = uv_tcp_getsockname(&id->server, (struct sockaddr *)&bound, &len)) != 0) {
        bench_fail(r, "listener: %s", uv_strerror(rc));
    } else {
        struct bench_mem before, after;
        bench_mem_start(&before);
        if ((rc = uv_listen((uv_stream_t *)&id->server, IDLE_BACKLOG, uv_idle_connection)) != 0) {
            bench_fail(r, "listen: %s", uv_strerror(rc));
        } else if (bench_idle_clients_start(ntohs(((struct sockaddr_in *)&bound)->sin_port), n,
                                            r) == 0) {
            uv_timer_start(&id->limit, uv_idle_limit, BENCH_TIMEOUT_NS / 1000000u, 0);
            uv_run(&id->loop, UV_RUN_DEFAULT);
            uv_timer_stop(&id->limit);
            bench_mem_stop(&after);
            if (r->status == BENCH_OK && id->count < n) {
                bench_fail(r, "timed out with %ld of %ld connections", id->count, n);
            }
            if (r->status == BENCH_OK) {
                bench_idle_result(r, n, &before, &after);
            }
        }
    }
    for (long i = 0; i < id->count; i++) {
        uv_close((uv_handle_t *)clients[i], uv_idle_free);
    }
    uv_close((uv_handle_t *)&id->server, NULL);
    uv_close((uv_handle_t *)&id->limit, NULL);
    uv_run(&id->loop, UV_RUN_DEFAULT);
    bench_idle_clients_stop();
    uv_loop_close(&id->loop);
    free(clients);
    free(id);
}
