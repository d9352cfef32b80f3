/*
 * The workloads written directly on libevent's event_base (no bufferevents,
 * no reseau): non-blocking descriptors, level-triggered persistent events,
 * read/write/send/recv called from the callbacks. Everything runs on the
 * calling thread except the task producer, which is a second thread feeding
 * a mutex-protected list and waking the loop through an eventfd (libevent
 * itself is then used by one thread only, as reseau's backend does).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, pipe2 */
#endif
#include "bench.h"
#include "posix_net.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static const unsigned char payload[BENCH_CHUNK];
static unsigned char sink[BENCH_CHUNK];

struct run {
    struct event_base *base;
    struct bench_result *r;
    const struct bench_params *p;
    uint64_t start_ns;
};

static bool run_begin(struct run *run, const struct bench_params *p, struct bench_result *r)
{
    run->p = p;
    run->r = r;
    run->base = event_base_new();
    if (!run->base) {
        bench_fail(r, "event_base_new failed");
        return false;
    }
    return true;
}

static void run_finish(struct run *run, uint64_t ops)
{
    run->r->elapsed_ns = bench_now_ns() - run->start_ns;
    run->r->ops = ops;
    event_base_loopbreak(run->base);
}

static void run_error(struct run *run, const char *what)
{
    bench_fail(run->r, "%s: %s", what, strerror(errno));
    event_base_loopbreak(run->base);
}

/* ---- pingpong and fanin ---- */

struct pp_conn {
    struct pp *pp;
    int fds[2]; /* client, server */
    struct event *client_ev, *server_ev;
    size_t got;
    long left;        /* round trips still to make, when the run has a target */
    uint64_t sent_ns; /* when the ping in flight was sent (latency recorded) */
};

struct pp {
    struct run run;
    int n;
    long target; /* round trips, or 0 when time-bounded */
    long trips;
    struct bench_latency *latency; /* fanin: every round trip's latency */
    int stopped;
    bool stop;
    struct pp_conn *conns;
};

static void echo_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct pp_conn *c = arg;
    unsigned char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
        if (n == 0 || errno != EAGAIN) {
            event_del(c->server_ev);
        }
        return;
    }
    if (write(fd, buf, (size_t)n) != n) {
        run_error(&c->pp->run, "echo write (short)");
    }
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct pp_conn *c = arg;
    struct pp *pp = c->pp;
    unsigned char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
        if (n == 0 || errno != EAGAIN) {
            run_error(&pp->run, "ping read");
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
            event_del(c->client_ev);
            if (++pp->stopped == pp->n) {
                run_finish(&pp->run, (uint64_t)pp->trips);
            }
            return;
        }
        if (write(fd, payload, BENCH_PINGPONG_SIZE) != BENCH_PINGPONG_SIZE) {
            run_error(&pp->run, "ping write");
            return;
        }
    }
}

static void pp_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pp *pp = arg;
    pp->stop = true;
}

static void ping_pong(const struct bench_params *p, struct bench_result *r, int n, long target)
{
    struct pp pp;
    memset(&pp, 0, sizeof pp);
    pp.n = n;
    pp.target = target;
    pp.latency = r->latency;
    pp.conns = calloc((size_t)n, sizeof *pp.conns);
    uint16_t port;
    int listener = bench_tcp_listener(&port);
    struct event *stop_ev = NULL;
    int made = 0;
    if (!pp.conns || listener < 0 || !run_begin(&pp.run, p, r)) {
        bench_fail(r, "set-up: %s", strerror(errno));
        goto out;
    }
    for (; made < n; made++) {
        struct pp_conn *c = &pp.conns[made];
        c->pp = &pp;
        if (bench_tcp_pair(listener, port, true, c->fds) != 0) {
            bench_fail(r, "connection set-up: %s", strerror(errno));
            goto out;
        }
        c->client_ev = event_new(pp.run.base, c->fds[0], EV_READ | EV_PERSIST, ping_cb, c);
        c->server_ev = event_new(pp.run.base, c->fds[1], EV_READ | EV_PERSIST, echo_cb, c);
        event_add(c->client_ev, NULL);
        event_add(c->server_ev, NULL);
    }
    pp.run.start_ns = bench_now_ns();
    if (target < 0) {
        run_finish(&pp.run, 0);
        goto out;
    }
    if (target == 0) {
        struct timeval tv = {(time_t)(p->fanin_ns / 1000000000u),
                             (suseconds_t)(p->fanin_ns % 1000000000u / 1000u)};
        stop_ev = evtimer_new(pp.run.base, pp_stop, &pp);
        evtimer_add(stop_ev, &tv);
    }
    uint64_t now = pp.latency ? bench_now_ns() : 0;
    for (int i = 0; i < n; i++) {
        pp.conns[i].left = target > 0 ? bench_share(target, n, i) : 0;
        pp.conns[i].sent_ns = now;
        if (write(pp.conns[i].fds[0], payload, BENCH_PINGPONG_SIZE) != BENCH_PINGPONG_SIZE) {
            bench_fail(r, "first ping: %s", strerror(errno));
            goto out;
        }
    }
    event_base_dispatch(pp.run.base);
out:
    for (int i = 0; i < made; i++) {
        event_free(pp.conns[i].client_ev);
        event_free(pp.conns[i].server_ev);
        close(pp.conns[i].fds[0]);
        close(pp.conns[i].fds[1]);
    }
    if (stop_ev) {
        event_free(stop_ev);
    }
    if (listener >= 0) {
        close(listener);
    }
    if (pp.run.base) {
        event_base_free(pp.run.base);
    }
    free(pp.conns);
}

static void le_pingpong(const struct bench_params *p, struct bench_result *r)
{
    ping_pong(p, r, 1, p->pingpong_trips > 0 ? p->pingpong_trips : -1);
}

static void le_fanin(const struct bench_params *p, struct bench_result *r)
{
    ping_pong(p, r, p->fanin_connections, p->fanin_trips);
}

/* ---- stream and pipe: a writer fed by writability, a reader that drains ---- */

struct flow {
    struct run run;
    int wfd, rfd;
    struct event *wev, *rev;
    uint64_t total, sent, received;
};

/* No write queue here: one chunk (or what is left of it) per writable event. */
static void flow_write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct flow *f = arg;
    size_t off = (size_t)(f->sent % BENCH_CHUNK);
    size_t len = BENCH_CHUNK - off;
    if (f->total - f->sent < len) {
        len = (size_t)(f->total - f->sent);
    }
    ssize_t n = write(fd, payload + off, len);
    if (n < 0) {
        if (errno != EAGAIN) {
            run_error(&f->run, "write");
        }
        return;
    }
    f->sent += (uint64_t)n;
    if (f->sent >= f->total) {
        event_del(f->wev);
    }
}

static void flow_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct flow *f = arg;
    for (;;) {
        ssize_t n = read(fd, sink, sizeof sink);
        if (n <= 0) {
            if (n == 0 || errno != EAGAIN) {
                run_error(&f->run, "read");
            }
            return;
        }
        f->received += (uint64_t)n;
        if (f->received >= f->total) {
            run_finish(&f->run, f->received);
            return;
        }
        if ((size_t)n < sizeof sink) {
            return;
        }
    }
}

static void flow_run(struct flow *f)
{
    f->wev = event_new(f->run.base, f->wfd, EV_WRITE | EV_PERSIST, flow_write_cb, f);
    f->rev = event_new(f->run.base, f->rfd, EV_READ | EV_PERSIST, flow_read_cb, f);
    f->run.start_ns = bench_now_ns();
    if (f->total == 0) {
        run_finish(&f->run, 0);
    } else {
        event_add(f->wev, NULL);
        event_add(f->rev, NULL);
        event_base_dispatch(f->run.base);
    }
    event_free(f->wev);
    event_free(f->rev);
}

static void le_stream(const struct bench_params *p, struct bench_result *r)
{
    struct flow f;
    memset(&f, 0, sizeof f);
    uint16_t port;
    int fds[2];
    int listener = bench_tcp_listener(&port);
    if (listener < 0 || bench_tcp_pair(listener, port, true, fds) != 0) {
        bench_fail(r, "set-up: %s", strerror(errno));
    } else {
        if (run_begin(&f.run, p, r)) {
            f.wfd = fds[0];
            f.rfd = fds[1];
            f.total = p->stream_bytes;
            flow_run(&f);
            event_base_free(f.run.base);
        }
        close(fds[0]);
        close(fds[1]);
    }
    if (listener >= 0) {
        close(listener);
    }
}

static void le_pipe(const struct bench_params *p, struct bench_result *r)
{
    struct flow f;
    memset(&f, 0, sizeof f);
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        bench_fail(r, "pipe2: %s", strerror(errno));
        return;
    }
    if (run_begin(&f.run, p, r)) {
        f.wfd = fds[1];
        f.rfd = fds[0];
        f.total = p->pipe_bytes;
        flow_run(&f);
        event_base_free(f.run.base);
    }
    close(fds[0]);
    close(fds[1]);
}

/* ---- connect ---- */

struct cycle {
    struct run run;
    uint16_t port;
    int listener;
    struct event *accept_ev;
    struct event *connect_ev; /* re-assigned for each connection */
    long connects, accepts;
};

static void cycle_next(struct cycle *c);

static void cycle_connected(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct cycle *c = arg;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    close(fd);
    if (err) {
        errno = err;
        run_error(&c->run, "connect");
        return;
    }
    c->connects++;
    cycle_next(c);
}

static void cycle_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct cycle *c = arg;
    for (;;) {
        int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s < 0) {
            if (errno != EAGAIN) {
                run_error(&c->run, "accept");
            }
            return;
        }
        close(s);
        c->accepts++;
        cycle_next(c);
    }
}

static void cycle_next(struct cycle *c)
{
    if (c->connects != c->accepts) {
        return;
    }
    if (c->connects >= c->run.p->connects) {
        run_finish(&c->run, (uint64_t)c->connects);
        return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(c->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0 && errno != EINPROGRESS)) {
        run_error(&c->run, "connect");
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    event_assign(c->connect_ev, c->run.base, fd, EV_WRITE, cycle_connected, c);
    event_add(c->connect_ev, NULL);
}

static void le_connect(const struct bench_params *p, struct bench_result *r)
{
    struct cycle c;
    memset(&c, 0, sizeof c);
    c.listener = bench_tcp_listener(&c.port);
    if (c.listener < 0 || bench_set_nonblock(c.listener) != 0 || !run_begin(&c.run, p, r)) {
        bench_fail(r, "listener: %s", strerror(errno));
    } else {
        c.accept_ev = event_new(c.run.base, c.listener, EV_READ | EV_PERSIST, cycle_accept, &c);
        c.connect_ev = event_new(c.run.base, -1, 0, cycle_connected, &c);
        event_add(c.accept_ev, NULL);
        c.run.start_ns = bench_now_ns();
        cycle_next(&c);
        if (r->status == BENCH_OK && c.connects < p->connects) {
            event_base_dispatch(c.run.base);
        }
        event_free(c.accept_ev);
        event_free(c.connect_ev);
        event_base_free(c.run.base);
    }
    if (c.listener >= 0) {
        close(c.listener);
    }
}

/* ---- tasks: a mutex + list queue, woken through an eventfd ---- */

struct le_task {
    struct le_task *next;
};

struct tasks {
    struct run run;
    pthread_mutex_t lock;
    struct le_task *head, *tail;
    bool wake_pending; /* under lock: the eventfd was written since the last drain */
    long wakeups;      /* eventfd writes (producer thread) */
    int efd;
    struct le_task *items;
    long n, done;
};

static void tasks_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct tasks *t = arg;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN) {
        run_error(&t->run, "eventfd read");
        return;
    }
    pthread_mutex_lock(&t->lock);
    struct le_task *list = t->head;
    t->head = t->tail = NULL;
    t->wake_pending = false;
    pthread_mutex_unlock(&t->lock);
    for (; list; list = list->next) {
        if (++t->done == t->n) {
            run_finish(&t->run, (uint64_t)t->n);
        }
    }
}

static void tasks_loop(void *arg)
{
    struct tasks *t = arg;
    event_base_dispatch(t->run.base);
}

static void le_tasks(const struct bench_params *p, struct bench_result *r)
{
    struct tasks t;
    memset(&t, 0, sizeof t);
    t.n = p->tasks;
    t.items = calloc((size_t)t.n + 1, sizeof *t.items);
    t.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!t.items || t.efd < 0 || !run_begin(&t.run, p, r)) {
        bench_fail(r, "set-up: %s", strerror(errno));
        goto out;
    }
    bench_prefault(t.items, ((size_t)t.n + 1) * sizeof *t.items);
    pthread_mutex_init(&t.lock, NULL);
    struct event *wake = event_new(t.run.base, t.efd, EV_READ | EV_PERSIST, tasks_wake_cb, &t);
    event_add(wake, NULL);
    t.run.start_ns = bench_now_ns();
    if (t.n == 0) {
        run_finish(&t.run, 0);
    } else {
        struct bench_thread *loop = bench_thread_start(tasks_loop, &t);
        for (long i = 0; i < t.n; i++) {
            struct le_task *task = &t.items[i];
            task->next = NULL;
            pthread_mutex_lock(&t.lock);
            if (t.tail) {
                t.tail->next = task;
            } else {
                t.head = task;
            }
            t.tail = task;
            bool wake_now = !t.wake_pending;
            t.wake_pending = true;
            pthread_mutex_unlock(&t.lock);
            if (wake_now) {
                t.wakeups++;
                uint64_t one = 1;
                if (write(t.efd, &one, sizeof one) < 0) {
                    bench_fail(r, "eventfd write: %s", strerror(errno));
                }
            }
        }
        bench_thread_join(loop);
    }
    r->wakeups = (uint64_t)t.wakeups;
    r->has_wakeups = true;
    event_free(wake);
    event_base_free(t.run.base);
    pthread_mutex_destroy(&t.lock);
out:
    if (t.efd >= 0) {
        close(t.efd);
    }
    free(t.items);
}

/* ---- timers ---- */

struct timers {
    struct run run;
    long n, fired;
};

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct timers *t = arg;
    if (++t->fired == t->n) {
        run_finish(&t->run, (uint64_t)t->n);
    }
}

static void le_timers(const struct bench_params *p, struct bench_result *r)
{
    struct timers t;
    memset(&t, 0, sizeof t);
    t.n = p->timers;
    size_t size = event_get_struct_event_size();
    unsigned char *events = malloc(size * ((size_t)t.n + 1));
    if (!events || !run_begin(&t.run, p, r)) {
        bench_fail(r, "set-up failed");
        free(events);
        return;
    }
    t.run.start_ns = bench_now_ns();
    uint64_t seed = BENCH_RAND_SEED;
    for (long i = 0; i < t.n; i++) {
        struct event *ev = (struct event *)(events + (size_t)i * size);
        uint64_t d = bench_rand_next(&seed) % p->timer_span_ns;
        struct timeval tv = {(time_t)(d / 1000000000u), (suseconds_t)(d % 1000000000u / 1000u)};
        evtimer_assign(ev, t.run.base, timer_cb, &t);
        evtimer_add(ev, &tv);
    }
    if (t.n == 0) {
        run_finish(&t.run, 0);
    } else {
        event_base_dispatch(t.run.base);
    }
    event_base_free(t.run.base);
    free(events);
}

/* ---- udp ---- */

struct udp {
    struct run run;
    int fds[2];
    struct event *rev, *stall;
    uint64_t sent, received, lost, checked;
    bool finished;
};

static void udp_pump(struct udp *u)
{
    uint64_t n = (uint64_t)u->run.p->udp_datagrams;
    while (u->sent < n && u->sent - u->received - u->lost < (uint64_t)u->run.p->udp_window) {
        if (send(u->fds[0], payload, BENCH_UDP_SIZE, 0) < 0) {
            if (errno != EAGAIN) {
                run_error(&u->run, "udp send");
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

static void udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct udp *u = arg;
    unsigned char buf[2048];
    while (recv(fd, buf, sizeof buf, 0) >= 0) {
        bench_udp_arrived(u->sent, &u->received, &u->lost);
    }
    if (errno != EAGAIN) {
        run_error(&u->run, "udp recv");
        return;
    }
    udp_check_done(u);
    udp_pump(u);
}

static void udp_stall_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct udp *u = arg;
    if (u->received == u->checked && u->sent > u->received + u->lost) {
        u->lost = u->sent - u->received;
        udp_check_done(u);
    }
    u->checked = u->received;
    udp_pump(u);
}

static void le_udp(const struct bench_params *p, struct bench_result *r)
{
    struct udp u;
    memset(&u, 0, sizeof u);
    if (bench_udp_pair(true, u.fds) != 0) {
        bench_fail(r, "udp set-up: %s", strerror(errno));
        return;
    }
    if (run_begin(&u.run, p, r)) {
        u.rev = event_new(u.run.base, u.fds[1], EV_READ | EV_PERSIST, udp_read_cb, &u);
        u.stall = event_new(u.run.base, -1, EV_PERSIST, udp_stall_cb, &u);
        struct timeval tv = {0, (suseconds_t)(BENCH_UDP_STALL_NS / 1000u)};
        event_add(u.rev, NULL);
        event_add(u.stall, &tv);
        u.run.start_ns = bench_now_ns();
        udp_check_done(&u);
        udp_pump(&u);
        if (!u.finished && r->status == BENCH_OK) {
            event_base_dispatch(u.run.base);
        }
        event_free(u.rev);
        event_free(u.stall);
        event_base_free(u.run.base);
    }
    close(u.fds[0]);
    close(u.fds[1]);
}

const struct bench_impl bench_impl_libevent = {
    .name = "libevent",
    .description = "raw libevent 2.1 event_base, level-triggered, no bufferevents",
    .run =
        {
            [BW_PINGPONG] = le_pingpong,
            [BW_STREAM] = le_stream,
            [BW_CONNECT] = le_connect,
            [BW_TASKS] = le_tasks,
            [BW_TIMERS] = le_timers,
            [BW_UDP] = le_udp,
            [BW_FANIN] = le_fanin,
            [BW_PIPE] = le_pipe,
            [BW_IDLE] = bench_le_idle,
        },
    .na_note =
        {
            [BW_WATCH] = "its pingpong row is the same: one event per descriptor it owns",
            [BW_UDP_TO] = "the unconnected mode compares reseau with libuv and the floors",
        },
};
