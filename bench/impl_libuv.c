/*
 * The workloads on libuv, written as libuv is meant to be used: uv_tcp_t
 * handles, uv_read_start with an allocation callback, uv_write requests
 * (libuv's own write queue), uv_async_t for cross-thread wake-ups and
 * uv_timer_t for timers. Everything runs on one loop; the task producer is
 * a second thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs the POSIX thread types */
#endif
#include "bench.h"
#include "posix_net.h"

#include <uv.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const unsigned char payload[BENCH_CHUNK];
static unsigned char sink[BENCH_CHUNK];

struct run {
    uv_loop_t loop;
    struct bench_result *r;
    const struct bench_params *p;
    uint64_t start_ns;
};

static bool run_begin(struct run *run, const struct bench_params *p, struct bench_result *r)
{
    run->p = p;
    run->r = r;
    if (uv_loop_init(&run->loop) != 0) {
        bench_fail(r, "uv_loop_init failed");
        return false;
    }
    return true;
}

static void run_finish(struct run *run, uint64_t ops)
{
    run->r->elapsed_ns = bench_now_ns() - run->start_ns;
    run->r->ops = ops;
    uv_stop(&run->loop);
}

static void run_error(struct run *run, const char *what, int code)
{
    if (code == UV_ECANCELED) {
        return; /* requests still pending when the handles close at the end */
    }
    bench_fail(run->r, "%s: %s", what, uv_strerror(code));
    uv_stop(&run->loop);
}

/* Closes every handle still open and runs the loop until they are gone. */
static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void run_end(struct run *run)
{
    uv_walk(&run->loop, close_walk, NULL);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    uv_loop_close(&run->loop);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", port, &sin);
    return sin;
}

/* A listener on 127.0.0.1 port 0; returns the port, or 0 on error. */
static int listen_on(struct run *run, uv_tcp_t *server, uv_connection_cb cb, void *data)
{
    struct sockaddr_in sin = loopback(0);
    struct sockaddr_storage bound;
    int len = sizeof bound;
    int rc;
    if ((rc = uv_tcp_init(&run->loop, server)) != 0 || !(server->data = data) ||
        (rc = uv_tcp_bind(server, (const struct sockaddr *)&sin, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)server, BENCH_BACKLOG, cb)) != 0 ||
        (rc = uv_tcp_getsockname(server, (struct sockaddr *)&bound, &len)) != 0) {
        run_error(run, "listen", rc);
        return 0;
    }
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void alloc_small(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    (void)size;
    static unsigned char small[4096];
    *buf = uv_buf_init((char *)small, sizeof small);
}

static void alloc_sink(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    (void)size;
    *buf = uv_buf_init((char *)sink, sizeof sink);
}

/* ---- pingpong and fanin ---- */

/*
 * Write requests come from a free list per connection: a request is libuv's
 * until its callback ran, and with more ready sockets than one epoll_wait
 * returns (1,024) libuv polls again before it runs the callbacks, so one
 * connection can make several round trips meanwhile, each with a write
 * still owed its callback. The list grows to the deepest such run, then
 * nothing is allocated.
 */
struct pp_write {
    uv_write_t req;
    struct run *run;
    struct pp_write **free_list;
    struct pp_write *next;
};

struct pp_conn {
    struct pp *pp;
    uv_tcp_t client, server;
    uv_connect_t connect_req;
    struct pp_write *free_writes;
    unsigned char echo[4096];
    size_t got;
    long left;        /* round trips still to make, when the run has a target */
    uint64_t sent_ns; /* when the ping in flight was sent (latency recorded) */
};

struct pp {
    struct run run;
    uv_tcp_t listener;
    uv_timer_t stop_timer;
    int n, connected, accepted, stopped;
    long target, trips;
    bool stop;
    struct bench_latency *latency; /* fanin: every round trip's latency */
    struct pp_conn *conns;
};

static void pp_write_done(uv_write_t *req, int status)
{
    struct pp_write *w = (struct pp_write *)req;
    w->next = *w->free_list;
    *w->free_list = w;
    if (status) {
        run_error(w->run, "write", status);
    }
}

static void pp_write(struct pp_conn *c, uv_stream_t *s, const void *data, size_t len,
                     const char *what)
{
    struct run *run = &c->pp->run;
    struct pp_write *w = c->free_writes;
    if (w) {
        c->free_writes = w->next;
    } else if (!(w = malloc(sizeof *w))) {
        run_error(run, what, UV_ENOMEM);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    w->run = run;
    w->free_list = &c->free_writes;
    int rc = uv_write(&w->req, s, &b, 1, pp_write_done);
    if (rc) {
        w->next = c->free_writes;
        c->free_writes = w;
        run_error(run, what, rc);
    }
}

static void send_ping(struct pp_conn *c)
{
    pp_write(c, (uv_stream_t *)&c->client, payload, BENCH_PINGPONG_SIZE, "ping write");
}

static void echo_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)size;
    struct pp_conn *c = h->data;
    *buf = uv_buf_init((char *)c->echo, sizeof c->echo);
}

/* One echo in flight at a time: the client waits for it before the next ping. */
static void echo_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct pp_conn *c = s->data;
    if (n <= 0) {
        if (n < 0) {
            uv_read_stop(s);
        }
        return;
    }
    pp_write(c, s, buf->base, (size_t)n, "echo write");
}

static void ping_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct pp_conn *c = s->data;
    struct pp *pp = c->pp;
    if (n <= 0) {
        if (n < 0) {
            run_error(&pp->run, "ping read", (int)n);
        }
        return;
    }
    c->got += (size_t)n;
    while (c->got >= BENCH_PINGPONG_SIZE) {
        c->got -= BENCH_PINGPONG_SIZE;
        pp->trips++;
        if (pp->latency) {
            uint64_t now = bench_now_ns();
            bench_latency_add(pp->latency, now - c->sent_ns);
            c->sent_ns = now;
        }
        if (pp->target ? --c->left == 0 : pp->stop) {
            uv_read_stop(s);
            if (++pp->stopped == pp->n) {
                run_finish(&pp->run, (uint64_t)pp->trips);
            }
            return;
        }
        send_ping(c);
    }
}

static void pp_stop(uv_timer_t *t)
{
    struct pp *pp = t->data;
    pp->stop = true;
}

static void pp_start(struct pp *pp)
{
    pp->run.start_ns = bench_now_ns();
    if (pp->target < 0) {
        run_finish(&pp->run, 0);
        return;
    }
    if (pp->target == 0) {
        uv_timer_init(&pp->run.loop, &pp->stop_timer);
        pp->stop_timer.data = pp;
        uv_timer_start(&pp->stop_timer, pp_stop, pp->run.p->fanin_ns / 1000000u, 0);
    }
    uint64_t now = pp->latency ? bench_now_ns() : 0;
    for (int i = 0; i < pp->n; i++) {
        struct pp_conn *c = &pp->conns[i];
        c->left = pp->target > 0 ? bench_share(pp->target, pp->n, i) : 0;
        c->sent_ns = now;
        uv_read_start((uv_stream_t *)&c->client, alloc_small, ping_read);
        send_ping(c);
    }
}

static void pp_connected(uv_connect_t *req, int status)
{
    struct pp_conn *c = req->data;
    struct pp *pp = c->pp;
    if (status) {
        run_error(&pp->run, "connect", status);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    if (++pp->connected == pp->n && pp->accepted == pp->n) {
        pp_start(pp);
    }
}

static void pp_accept(uv_stream_t *l, int status)
{
    struct pp *pp = l->data;
    if (status || pp->accepted == pp->n) {
        run_error(&pp->run, "accept", status ? status : UV_EINVAL);
        return;
    }
    struct pp_conn *c = &pp->conns[pp->accepted++];
    uv_tcp_init(&pp->run.loop, &c->server);
    c->server.data = c;
    int rc = uv_accept(l, (uv_stream_t *)&c->server);
    if (rc) {
        run_error(&pp->run, "accept", rc);
        return;
    }
    uv_tcp_nodelay(&c->server, 1);
    uv_read_start((uv_stream_t *)&c->server, echo_alloc, echo_read);
    if (pp->accepted == pp->n && pp->connected == pp->n) {
        pp_start(pp);
    }
}

static void ping_pong(const struct bench_params *p, struct bench_result *r, int n, long target)
{
    struct pp *pp = calloc(1, sizeof *pp);
    if (!pp || !(pp->conns = calloc((size_t)n, sizeof *pp->conns))) {
        bench_fail(r, "out of memory");
        free(pp);
        return;
    }
    pp->n = n;
    pp->target = target;
    pp->latency = r->latency;
    if (run_begin(&pp->run, p, r)) {
        int port = listen_on(&pp->run, &pp->listener, pp_accept, pp);
        for (int i = 0; port && i < n; i++) {
            struct pp_conn *c = &pp->conns[i];
            c->pp = pp;
            struct sockaddr_in sin = loopback(port);
            uv_tcp_init(&pp->run.loop, &c->client);
            c->client.data = c;
            c->connect_req.data = c;
            uv_tcp_connect(&c->connect_req, &c->client, (const struct sockaddr *)&sin,
                           pp_connected);
        }
        if (port) {
            uv_run(&pp->run.loop, UV_RUN_DEFAULT);
        }
        run_end(&pp->run);
    }
    for (int i = 0; i < n; i++) {
        while (pp->conns[i].free_writes) {
            struct pp_write *w = pp->conns[i].free_writes;
            pp->conns[i].free_writes = w->next;
            free(w);
        }
    }
    free(pp->conns);
    free(pp);
}

static void uv_pingpong_run(const struct bench_params *p, struct bench_result *r)
{
    ping_pong(p, r, 1, p->pingpong_trips > 0 ? p->pingpong_trips : -1);
}

static void uv_fanin_run(const struct bench_params *p, struct bench_result *r)
{
    ping_pong(p, r, p->fanin_connections, p->fanin_trips);
}

/* ---- stream and pipe: at most 4 uv_write requests in flight ---- */

struct flow {
    struct run run;
    uv_stream_t *writer, *reader;
    uv_write_t reqs[BENCH_MAX_OUTSTANDING];
    bool busy[BENCH_MAX_OUTSTANDING];
    uint64_t total, queued, received;
    int ready;
};

static void flow_pump(struct flow *f);

static void flow_written(uv_write_t *req, int status)
{
    struct flow *f = req->data;
    f->busy[req - f->reqs] = false;
    if (status) {
        run_error(&f->run, "write", status);
        return;
    }
    flow_pump(f);
}

static void flow_pump(struct flow *f)
{
    for (int i = 0; i < BENCH_MAX_OUTSTANDING && f->queued < f->total; i++) {
        if (f->busy[i]) {
            continue;
        }
        size_t len =
            f->total - f->queued < BENCH_CHUNK ? (size_t)(f->total - f->queued) : BENCH_CHUNK;
        uv_buf_t b = uv_buf_init((char *)payload, (unsigned)len);
        f->reqs[i].data = f;
        int rc = uv_write(&f->reqs[i], f->writer, &b, 1, flow_written);
        if (rc) {
            run_error(&f->run, "write", rc);
            return;
        }
        f->busy[i] = true;
        f->queued += len;
    }
}

static void flow_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct flow *f = s->data;
    if (n < 0) {
        run_error(&f->run, "read", (int)n);
        return;
    }
    f->received += (uint64_t)n;
    if (f->received >= f->total) {
        uv_read_stop(s);
        run_finish(&f->run, f->received);
    }
}

static void flow_start(struct flow *f)
{
    if (++f->ready < 2) {
        return;
    }
    f->run.start_ns = bench_now_ns();
    if (f->total == 0) {
        run_finish(&f->run, 0);
        return;
    }
    f->reader->data = f;
    uv_read_start(f->reader, alloc_sink, flow_read);
    flow_pump(f);
}

struct stream {
    struct flow f;
    uv_tcp_t listener, client, server;
    uv_connect_t connect_req;
};

static void stream_connected(uv_connect_t *req, int status)
{
    struct stream *st = req->data;
    if (status) {
        run_error(&st->f.run, "connect", status);
        return;
    }
    uv_tcp_nodelay(&st->client, 1);
    flow_start(&st->f);
}

static void stream_accept(uv_stream_t *l, int status)
{
    struct stream *st = l->data;
    int rc = status;
    if (rc || (rc = uv_tcp_init(&st->f.run.loop, &st->server)) != 0 ||
        (rc = uv_accept(l, (uv_stream_t *)&st->server)) != 0) {
        run_error(&st->f.run, "accept", rc);
        return;
    }
    uv_tcp_nodelay(&st->server, 1);
    uv_close((uv_handle_t *)l, NULL);
    flow_start(&st->f);
}

static void uv_stream_run(const struct bench_params *p, struct bench_result *r)
{
    struct stream *st = calloc(1, sizeof *st);
    if (!st || !run_begin(&st->f.run, p, r)) {
        free(st);
        return;
    }
    st->f.total = p->stream_bytes;
    st->f.writer = (uv_stream_t *)&st->client;
    st->f.reader = (uv_stream_t *)&st->server;
    int port = listen_on(&st->f.run, &st->listener, stream_accept, st);
    if (port) {
        struct sockaddr_in sin = loopback(port);
        uv_tcp_init(&st->f.run.loop, &st->client);
        st->connect_req.data = st;
        uv_tcp_connect(&st->connect_req, &st->client, (const struct sockaddr *)&sin,
                       stream_connected);
        uv_run(&st->f.run.loop, UV_RUN_DEFAULT);
    }
    run_end(&st->f.run);
    free(st);
}

static void uv_pipe_run(const struct bench_params *p, struct bench_result *r)
{
    struct flow f;
    memset(&f, 0, sizeof f);
    uv_pipe_t rp, wp;
    uv_file fds[2];
    int rc;
    if (!run_begin(&f.run, p, r)) {
        return;
    }
    if ((rc = uv_pipe(fds, UV_NONBLOCK_PIPE, UV_NONBLOCK_PIPE)) != 0 ||
        (rc = uv_pipe_init(&f.run.loop, &rp, 0)) != 0 || (rc = uv_pipe_open(&rp, fds[0])) != 0 ||
        (rc = uv_pipe_init(&f.run.loop, &wp, 0)) != 0 || (rc = uv_pipe_open(&wp, fds[1])) != 0) {
        run_error(&f.run, "pipe", rc);
    } else {
        f.total = p->pipe_bytes;
        f.reader = (uv_stream_t *)&rp;
        f.writer = (uv_stream_t *)&wp;
        f.ready = 1;
        flow_start(&f);
        uv_run(&f.run.loop, UV_RUN_DEFAULT);
    }
    run_end(&f.run);
}

/* ---- connect ---- */

struct cycle {
    struct run run;
    uv_tcp_t listener;
    uv_tcp_t client, server;
    uv_connect_t req;
    int port;
    long connects, accepts;
};

static void cycle_next(struct cycle *c);

static void cycle_closed(uv_handle_t *h)
{
    struct cycle *c = h->data;
    if (h == (uv_handle_t *)&c->client) {
        c->connects++;
    } else {
        c->accepts++;
    }
    cycle_next(c);
}

static void cycle_connected(uv_connect_t *req, int status)
{
    struct cycle *c = req->data;
    if (status) {
        run_error(&c->run, "connect", status);
        return;
    }
    uv_close((uv_handle_t *)&c->client, cycle_closed);
}

static void cycle_accept(uv_stream_t *l, int status)
{
    struct cycle *c = l->data;
    int rc = status;
    if (rc || (rc = uv_tcp_init(&c->run.loop, &c->server)) != 0 ||
        (rc = uv_accept(l, (uv_stream_t *)&c->server)) != 0) {
        run_error(&c->run, "accept", rc);
        return;
    }
    c->server.data = c;
    uv_close((uv_handle_t *)&c->server, cycle_closed);
}

/* The next connection starts once both handles of the previous one closed. */
static void cycle_next(struct cycle *c)
{
    if (c->connects != c->accepts) {
        return;
    }
    if (c->connects >= c->run.p->connects) {
        run_finish(&c->run, (uint64_t)c->connects);
        return;
    }
    struct sockaddr_in sin = loopback(c->port);
    uv_tcp_init(&c->run.loop, &c->client);
    c->client.data = c;
    c->req.data = c;
    int rc = uv_tcp_connect(&c->req, &c->client, (const struct sockaddr *)&sin, cycle_connected);
    if (rc) {
        run_error(&c->run, "connect", rc);
    }
}

static void uv_connect_run(const struct bench_params *p, struct bench_result *r)
{
    struct cycle *c = calloc(1, sizeof *c);
    if (!c || !run_begin(&c->run, p, r)) {
        free(c);
        return;
    }
    c->port = listen_on(&c->run, &c->listener, cycle_accept, c);
    if (c->port) {
        c->run.start_ns = bench_now_ns();
        cycle_next(c);
        uv_run(&c->run.loop, UV_RUN_DEFAULT);
    }
    run_end(&c->run);
    free(c);
}

/* ---- tasks: a mutex + list queue, woken through uv_async_t ---- */

struct uv_task_item {
    struct uv_task_item *next;
};

struct tasks {
    struct run run;
    uv_async_t async;
    uv_mutex_t lock;
    struct uv_task_item *head, *tail, *items;
    long n, done;
    long wakeups; /* async callbacks: uv_async_send coalesces to one per wake-up */
};

static void tasks_drain(uv_async_t *a)
{
    struct tasks *t = a->data;
    t->wakeups++;
    uv_mutex_lock(&t->lock);
    struct uv_task_item *list = t->head;
    t->head = t->tail = NULL;
    uv_mutex_unlock(&t->lock);
    for (; list; list = list->next) {
        if (++t->done == t->n) {
            run_finish(&t->run, (uint64_t)t->n);
        }
    }
}

static void tasks_loop(void *arg)
{
    struct tasks *t = arg;
    uv_run(&t->run.loop, UV_RUN_DEFAULT);
}

static void uv_tasks_run(const struct bench_params *p, struct bench_result *r)
{
    struct tasks *t = calloc(1, sizeof *t);
    if (!t || !(t->items = calloc((size_t)p->tasks + 1, sizeof *t->items)) ||
        !run_begin(&t->run, p, r)) {
        bench_fail(r, "set-up failed");
        if (t) {
            free(t->items);
        }
        free(t);
        return;
    }
    t->n = p->tasks;
    bench_prefault(t->items, ((size_t)t->n + 1) * sizeof *t->items);
    uv_mutex_init(&t->lock);
    uv_async_init(&t->run.loop, &t->async, tasks_drain);
    t->async.data = t;
    t->run.start_ns = bench_now_ns();
    if (t->n == 0) {
        run_finish(&t->run, 0);
    } else {
        struct bench_thread *loop = bench_thread_start(tasks_loop, t);
        for (long i = 0; i < t->n; i++) {
            struct uv_task_item *item = &t->items[i];
            item->next = NULL;
            uv_mutex_lock(&t->lock);
            if (t->tail) {
                t->tail->next = item;
            } else {
                t->head = item;
            }
            t->tail = item;
            uv_mutex_unlock(&t->lock);
            uv_async_send(&t->async); /* coalesced by libuv */
        }
        bench_thread_join(loop);
    }
    r->wakeups = (uint64_t)t->wakeups;
    r->has_wakeups = true;
    run_end(&t->run);
    uv_mutex_destroy(&t->lock);
    free(t->items);
    free(t);
}

/* ---- timers ---- */

struct timers {
    struct run run;
    uv_timer_t *timers;
    long n, fired;
};

static void timer_fired(uv_timer_t *h)
{
    struct timers *t = h->data;
    if (++t->fired == t->n) {
        run_finish(&t->run, (uint64_t)t->n);
    }
}

static void uv_timers_run(const struct bench_params *p, struct bench_result *r)
{
    struct timers t;
    memset(&t, 0, sizeof t);
    t.n = p->timers;
    t.timers = calloc((size_t)t.n + 1, sizeof *t.timers);
    if (!t.timers || !run_begin(&t.run, p, r)) {
        bench_fail(r, "set-up failed");
        free(t.timers);
        return;
    }
    t.run.start_ns = bench_now_ns();
    uint64_t seed = BENCH_RAND_SEED;
    /* libuv timers have millisecond resolution: the deadlines are rounded. */
    for (long i = 0; i < t.n; i++) {
        uint64_t d = bench_rand_next(&seed) % p->timer_span_ns;
        uv_timer_init(&t.run.loop, &t.timers[i]);
        t.timers[i].data = &t;
        uv_timer_start(&t.timers[i], timer_fired, d / 1000000u, 0);
    }
    if (t.n == 0) {
        run_finish(&t.run, 0);
    } else {
        uv_run(&t.run.loop, UV_RUN_DEFAULT);
    }
    run_end(&t.run);
    free(t.timers);
}

/* ---- udp ---- */

struct udp {
    struct run run;
    uv_udp_t tx, rx;
    uv_timer_t stall;
    uint64_t sent, received, lost, checked;
    bool finished;
};

static void udp_pump(struct udp *u)
{
    uint64_t n = (uint64_t)u->run.p->udp_datagrams;
    uv_buf_t b = uv_buf_init((char *)payload, BENCH_UDP_SIZE);
    while (u->sent < n && u->sent - u->received - u->lost < (uint64_t)u->run.p->udp_window) {
        int rc = uv_udp_try_send(&u->tx, &b, 1, NULL);
        if (rc < 0) {
            if (rc != UV_EAGAIN) {
                run_error(&u->run, "udp send", rc);
            }
            return; /* the stall check retries */
        }
        u->sent++;
    }
}

static void udp_check_done(struct udp *u)
{
    if (!u->finished && u->received + u->lost >= (uint64_t)u->run.p->udp_datagrams) {
        u->finished = true;
        u->run.r->lost = u->lost;
        run_finish(&u->run, u->received);
    }
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
    (void)buf;
    (void)flags;
    struct udp *u = h->data;
    if (n < 0) {
        run_error(&u->run, "udp recv", (int)n);
        return;
    }
    if (addr == NULL) {
        return; /* nothing more to read now */
    }
    bench_udp_arrived(u->sent, &u->received, &u->lost);
    udp_check_done(u);
    udp_pump(u);
}

static void udp_stall(uv_timer_t *h)
{
    struct udp *u = h->data;
    if (u->received == u->checked && u->sent > u->received + u->lost) {
        u->lost = u->sent - u->received;
        udp_check_done(u);
    }
    u->checked = u->received;
    udp_pump(u);
}

static void uv_udp_run(const struct bench_params *p, struct bench_result *r)
{
    struct udp *u = calloc(1, sizeof *u);
    if (!u || !run_begin(&u->run, p, r)) {
        free(u);
        return;
    }
    struct sockaddr_in sin = loopback(0);
    struct sockaddr_storage bound;
    int len = sizeof bound, rc;
    u->rx.data = u->tx.data = u->stall.data = u;
    if ((rc = uv_udp_init(&u->run.loop, &u->rx)) != 0 ||
        (rc = uv_udp_bind(&u->rx, (const struct sockaddr *)&sin, 0)) != 0 ||
        (rc = uv_udp_getsockname(&u->rx, (struct sockaddr *)&bound, &len)) != 0 ||
        (rc = uv_udp_init(&u->run.loop, &u->tx)) != 0 ||
        (rc = uv_udp_connect(&u->tx, (const struct sockaddr *)&bound)) != 0 ||
        (rc = uv_udp_recv_start(&u->rx, alloc_small, udp_recv)) != 0) {
        run_error(&u->run, "udp set-up", rc);
    } else {
        uv_timer_init(&u->run.loop, &u->stall);
        uv_timer_start(&u->stall, udp_stall, BENCH_UDP_STALL_NS / 1000000u,
                       BENCH_UDP_STALL_NS / 1000000u);
        u->run.start_ns = bench_now_ns();
        udp_check_done(u);
        udp_pump(u);
        if (!u->finished) {
            uv_run(&u->run.loop, UV_RUN_DEFAULT);
        }
    }
    run_end(&u->run);
    free(u);
}

/* ---- watch: pingpong by readiness of sockets the bench owns (uv_poll) ---- */

struct uv_watch_side {
    uv_poll_t poll;
    struct uv_watch_run *w;
    int fd;
    unsigned char buf[BENCH_PINGPONG_SIZE];
    size_t got;
    bool client;
};

struct uv_watch_run {
    struct run run;
    struct uv_watch_side side[2];
    long trips;
};

static void uv_watch_ping(struct uv_watch_side *side)
{
    if (send(side->fd, payload, BENCH_PINGPONG_SIZE, 0) != BENCH_PINGPONG_SIZE) {
        bench_fail(side->w->run.r, "send failed");
        uv_stop(&side->w->run.loop);
    }
}

static void uv_watch_ready(uv_poll_t *poll, int status, int events)
{
    (void)events;
    struct uv_watch_side *side = poll->data;
    struct uv_watch_run *w = side->w;
    if (status < 0) {
        run_error(&w->run, "uv_poll", status);
        return;
    }
    while (side->got < BENCH_PINGPONG_SIZE) {
        ssize_t n = recv(side->fd, side->buf + side->got, BENCH_PINGPONG_SIZE - side->got, 0);
        if (n > 0) {
            side->got += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            bench_fail(w->run.r, "recv failed");
            uv_stop(&w->run.loop);
            return;
        }
    }
    side->got = 0;
    if (side->client && ++w->trips >= w->run.p->watch_trips) {
        run_finish(&w->run, (uint64_t)w->trips);
        return;
    }
    uv_watch_ping(side);
}

static void uv_watch_run(const struct bench_params *p, struct bench_result *r)
{
    struct uv_watch_run *w = calloc(1, sizeof *w);
    if (!w || !run_begin(&w->run, p, r)) {
        free(w);
        return;
    }
    uint16_t port;
    int l = bench_tcp_listener(&port);
    int fds[2] = {-1, -1};
    if (l < 0 || bench_tcp_pair(l, port, true, fds) != 0) {
        bench_fail(r, "socket pair failed");
    } else {
        for (int i = 0; i < 2; i++) {
            struct uv_watch_side *side = &w->side[i];
            side->w = w;
            side->fd = fds[i];
            side->client = i == 0;
            uv_poll_init(&w->run.loop, &side->poll, fds[i]);
            side->poll.data = side;
            uv_poll_start(&side->poll, UV_READABLE, uv_watch_ready);
        }
        w->run.start_ns = bench_now_ns();
        if (p->watch_trips <= 0) {
            run_finish(&w->run, 0);
        } else {
            uv_watch_ping(&w->side[0]);
            uv_run(&w->run.loop, UV_RUN_DEFAULT);
        }
    }
    run_end(&w->run);
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    if (l >= 0) {
        close(l);
    }
    free(w);
}

/* ---- udp_to: unconnected, uv_udp_send with an address and uv_udp_recv_start ---- */

struct udp_to {
    struct udp u; /* first: udp_check_done and the stall check are udp's */
    struct sockaddr_in to;
    uv_udp_send_t *reqs; /* udp_window of them; free ones linked through data */
    uv_udp_send_t *free_reqs;
};

static void udp_to_pump(struct udp_to *t);

static void udp_to_sent(uv_udp_send_t *req, int status)
{
    struct udp_to *t = req->handle->data;
    if (status < 0 && status != UV_ECANCELED) {
        run_error(&t->u.run, "udp send", status);
    }
    req->data = t->free_reqs;
    t->free_reqs = req;
}

static void udp_to_pump(struct udp_to *t)
{
    struct udp *u = &t->u;
    uint64_t n = (uint64_t)u->run.p->udp_datagrams;
    uv_buf_t b = uv_buf_init((char *)payload, BENCH_UDP_SIZE);
    while (u->sent < n && u->sent - u->received - u->lost < (uint64_t)u->run.p->udp_window &&
           t->free_reqs) {
        uv_udp_send_t *req = t->free_reqs;
        t->free_reqs = req->data;
        int rc = uv_udp_send(req, &u->tx, &b, 1, (const struct sockaddr *)&t->to, udp_to_sent);
        if (rc < 0) {
            req->data = t->free_reqs;
            t->free_reqs = req;
            run_error(&u->run, "udp send", rc);
            return;
        }
        u->sent++;
    }
}

static void udp_to_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                        unsigned flags)
{
    (void)buf;
    (void)flags;
    struct udp_to *t = h->data;
    if (n < 0) {
        run_error(&t->u.run, "udp recv", (int)n);
        return;
    }
    if (addr == NULL) {
        return; /* nothing more to read now */
    }
    bench_udp_arrived(t->u.sent, &t->u.received, &t->u.lost);
    udp_check_done(&t->u);
    udp_to_pump(t);
}

static void udp_to_stall(uv_timer_t *h)
{
    struct udp_to *t = h->data;
    struct udp *u = &t->u;
    if (u->received == u->checked && u->sent > u->received + u->lost) {
        u->lost = u->sent - u->received;
        udp_check_done(u);
    }
    u->checked = u->received;
    udp_to_pump(t);
}

static void uv_udp_to_run(const struct bench_params *p, struct bench_result *r)
{
    struct udp_to *t = calloc(1, sizeof *t);
    if (t) {
        t->reqs = calloc((size_t)p->udp_window, sizeof *t->reqs);
    }
    if (!t || !t->reqs || !run_begin(&t->u.run, p, r)) {
        if (t) {
            free(t->reqs);
        }
        free(t);
        return;
    }
    struct udp *u = &t->u;
    for (int i = 0; i < p->udp_window; i++) {
        t->reqs[i].data = t->free_reqs;
        t->free_reqs = &t->reqs[i];
    }
    struct sockaddr_in sin = loopback(0);
    int len = sizeof t->to, rc;
    u->rx.data = u->tx.data = u->stall.data = t;
    if ((rc = uv_udp_init(&u->run.loop, &u->rx)) != 0 ||
        (rc = uv_udp_bind(&u->rx, (const struct sockaddr *)&sin, 0)) != 0 ||
        (rc = uv_udp_getsockname(&u->rx, (struct sockaddr *)&t->to, &len)) != 0 ||
        (rc = uv_udp_init(&u->run.loop, &u->tx)) != 0 ||
        (rc = uv_udp_bind(&u->tx, (const struct sockaddr *)&sin, 0)) != 0 ||
        (rc = uv_udp_recv_start(&u->rx, alloc_small, udp_to_recv)) != 0) {
        run_error(&u->run, "udp set-up", rc);
    } else {
        uv_timer_init(&u->run.loop, &u->stall);
        uv_timer_start(&u->stall, udp_to_stall, BENCH_UDP_STALL_NS / 1000000u,
                       BENCH_UDP_STALL_NS / 1000000u);
        u->run.start_ns = bench_now_ns();
        udp_check_done(u);
        udp_to_pump(t);
        if (!u->finished) {
            uv_run(&u->run.loop, UV_RUN_DEFAULT);
        }
    }
    run_end(&u->run);
    free(t->reqs);
    free(t);
}

const struct bench_impl bench_impl_libuv = {
    .name = "libuv",
    .description = "libuv (Debian's libuv1-dev): uv_tcp/uv_write/uv_async/uv_timer",
    .run =
        {
            [BW_PINGPONG] = uv_pingpong_run,
            [BW_STREAM] = uv_stream_run,
            [BW_CONNECT] = uv_connect_run,
            [BW_TASKS] = uv_tasks_run,
            [BW_TIMERS] = uv_timers_run,
            [BW_UDP] = uv_udp_run,
            [BW_FANIN] = uv_fanin_run,
            [BW_PIPE] = uv_pipe_run,
            [BW_UDP_TO] = uv_udp_to_run,
            [BW_WATCH] = uv_watch_run,
            [BW_IDLE] = bench_uv_idle,
        },
};
