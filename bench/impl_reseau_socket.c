/*
 * The socket workloads on reseau (built when the backend has sockets):
 * pingpong and fanin (clients that ping, servers that echo), stream, connect
 * and udp.
 */
#include "impl_reseau.h"

#include <stdlib.h>
#include <string.h>

static const unsigned char payload[BENCH_CHUNK];

static rs_socket_options tcp_options(bool nodelay)
{
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = RS_SOCKET_STREAM;
    o.domain = RS_SOCKET_IPV4;
    o.connect_timeout_ms = 10000;
    o.tcp_nodelay = nodelay ? RS_SOCKET_OPTION_ON : RS_SOCKET_OPTION_DEFAULT;
    return o;
}

static rs_socket_endpoint loopback(void)
{
    rs_socket_endpoint ep;
    memset(&ep, 0, sizeof ep);
    strcpy(ep.address, "127.0.0.1");
    return ep;
}

/* A listener on 127.0.0.1, port chosen by the OS, accepting on run->loop. */
static rs_socket *listen_on(struct rsb_run *run, bool nodelay, rs_socket_on_accept_result_fn *fn,
                            void *arg, rs_socket_endpoint *bound)
{
    rs_socket_options o = tcp_options(nodelay);
    rs_socket_endpoint ep = loopback();
    rs_socket *l = rs_socket_new(&o);
    if (!l || rs_socket_bind(l, &ep) != 0 || rs_socket_get_bound_address(l, bound) != 0 ||
        rs_socket_listen(l, BENCH_BACKLOG) != 0 ||
        rs_socket_start_accept(l, run->loop, fn, arg) != 0) {
        bench_fail(run->r, "listener: %s", rs_error_name(rs_last_error()));
        if (l) {
            rs_socket_destroy(l);
        }
        return NULL;
    }
    return l;
}

static void ignore_write(rs_socket *s, int error_code, size_t n, void *arg)
{
    (void)s;
    (void)n;
    struct rsb_run *run = arg;
    if (error_code && s) {
        rsb_run_error(run, "write", error_code);
    }
}

/* ---- pingpong and fanin: clients that ping, servers that echo ---- */

#define ECHO_SLOTS 4
#define ECHO_SLOT_SIZE 4096

struct echo_slot {
    struct echo_peer *peer;
    bool busy;
    unsigned char data[ECHO_SLOT_SIZE];
};

struct echo_peer {
    rs_socket *socket;
    struct rsb_run *run;
    bool paused; /* every slot waits for its write: resume on a completion */
    struct echo_slot slots[ECHO_SLOTS];
};

struct ping_client {
    rs_socket *socket;
    struct pp *pp;
    size_t got;
    long left;        /* round trips still to make, when the run has a target */
    uint64_t sent_ns; /* when the ping in flight was sent (latency recorded) */
    bool stopped;
};

struct pp {
    struct rsb_run run;
    int n;
    long target; /* round trips in all, or 0 (time-bounded) */
    long trips;
    struct bench_latency *latency; /* fanin: every round trip's latency */
    int connected, accepted, stopped;
    bool stop;
    struct ping_client *clients;
    struct echo_peer *servers;
    rs_task stop_task;
};

static void echo_readable(rs_socket *s, int error_code, void *arg);

static void echo_written(rs_socket *s, int error_code, size_t n, void *arg)
{
    (void)n;
    struct echo_slot *slot = arg;
    struct echo_peer *e = slot->peer;
    slot->busy = false;
    if (!s) {
        return;
    }
    if (error_code) {
        rsb_run_error(e->run, "echo write", error_code);
        return;
    }
    if (e->paused) {
        e->paused = false;
        echo_readable(s, 0, e);
    }
}

static void echo_readable(rs_socket *s, int error_code, void *arg)
{
    struct echo_peer *e = arg;
    if (error_code) {
        return; /* the client went away at the end */
    }
    for (;;) {
        struct echo_slot *slot = NULL;
        for (int i = 0; i < ECHO_SLOTS && !slot; i++) {
            slot = e->slots[i].busy ? NULL : &e->slots[i];
        }
        if (!slot) {
            e->paused = true;
            return;
        }
        size_t n = 0;
        if (rs_socket_read(s, slot->data, sizeof slot->data, &n) != 0) {
            int err = rs_last_error();
            if (err != RS_ERROR_WOULD_BLOCK && err != RS_ERROR_SOCKET_CLOSED) {
                rsb_run_error(e->run, "echo read", err);
            }
            return;
        }
        slot->busy = true;
        if (rs_socket_write(s, slot->data, n, echo_written, slot) != 0) {
            rsb_run_error(e->run, "echo write", rs_last_error());
            return;
        }
        if (n < sizeof slot->data) {
            return;
        }
    }
}

static void send_ping(struct ping_client *c)
{
    if (rs_socket_write(c->socket, payload, BENCH_PINGPONG_SIZE, ignore_write, &c->pp->run) != 0) {
        rsb_run_error(&c->pp->run, "ping write", rs_last_error());
    }
}

static void client_readable(rs_socket *s, int error_code, void *arg)
{
    struct ping_client *c = arg;
    struct pp *pp = c->pp;
    if (error_code) {
        return;
    }
    unsigned char buf[ECHO_SLOT_SIZE];
    for (;;) {
        size_t n = 0;
        if (rs_socket_read(s, buf, sizeof buf, &n) != 0) {
            int err = rs_last_error();
            if (err != RS_ERROR_WOULD_BLOCK) {
                rsb_run_error(&pp->run, "ping read", err);
            }
            return;
        }
        c->got += n;
        while (c->got >= BENCH_PINGPONG_SIZE) {
            c->got -= BENCH_PINGPONG_SIZE;
            pp->trips++;
            if (pp->latency) {
                uint64_t now = bench_now_ns();
                bench_latency_add(pp->latency, now - c->sent_ns);
                c->sent_ns = now;
            }
            if (pp->target ? --c->left == 0 : pp->stop) {
                c->stopped = true;
                if (++pp->stopped == pp->n) {
                    rsb_run_finish(&pp->run, (uint64_t)pp->trips);
                }
                return;
            }
            send_ping(c);
        }
        if (n < sizeof buf) {
            return;
        }
    }
}

static void pp_stop(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct pp *pp = arg;
    if (status == RS_TASK_STATUS_RUN) {
        pp->stop = true;
    }
}

/* Loop thread, once every connection is up on both sides. */
static void pp_start(struct pp *pp)
{
    for (int i = 0; i < pp->n; i++) {
        if (rs_socket_subscribe_to_readable_events(pp->clients[i].socket, client_readable,
                                                   &pp->clients[i]) != 0) {
            rsb_run_error(&pp->run, "subscribe", rs_last_error());
            return;
        }
    }
    pp->run.start_ns = bench_now_ns();
    if (pp->target == 0) {
        rs_task_init(&pp->stop_task, pp_stop, pp, "fanin stop");
        rs_event_loop_schedule_at(pp->run.loop, &pp->stop_task,
                                  rs_event_loop_now(pp->run.loop) + pp->run.p->fanin_ns);
    } else if (pp->target < 0) {
        rsb_run_finish(&pp->run, 0);
        return;
    }
    uint64_t now = pp->latency ? bench_now_ns() : 0;
    for (int i = 0; i < pp->n; i++) {
        pp->clients[i].left = pp->target > 0 ? bench_share(pp->target, pp->n, i) : 0;
        pp->clients[i].sent_ns = now;
        send_ping(&pp->clients[i]);
    }
}

static void pp_connected(rs_socket *s, int error_code, void *arg)
{
    (void)s;
    struct pp *pp = arg;
    if (error_code) {
        rsb_run_error(&pp->run, "connect", error_code);
    } else if (++pp->connected == pp->n && pp->accepted == pp->n) {
        pp_start(pp);
    }
}

static void pp_accepted(rs_socket *l, int error_code, rs_socket *s, void *arg)
{
    (void)l;
    struct pp *pp = arg;
    if (error_code) {
        rsb_run_error(&pp->run, "accept", error_code);
        return;
    }
    if (pp->accepted == pp->n) {
        rs_socket_destroy(s);
        return;
    }
    struct echo_peer *e = &pp->servers[pp->accepted++];
    e->socket = s;
    e->run = &pp->run;
    for (int i = 0; i < ECHO_SLOTS; i++) {
        e->slots[i].peer = e;
    }
    if (rs_socket_assign_to_event_loop(s, pp->run.loop) != 0 ||
        rs_socket_subscribe_to_readable_events(s, echo_readable, e) != 0) {
        rsb_run_error(&pp->run, "accepted socket", rs_last_error());
        return;
    }
    if (pp->accepted == pp->n && pp->connected == pp->n) {
        pp_start(pp);
    }
}

/* n connections; target round trips in total (at least n; -1 for none), or
 * 0 for time-bounded (fanin without --ops). */
static void ping_pong(const struct bench_params *p, struct bench_result *r, int n, long target)
{
    struct pp *pp = calloc(1, sizeof *pp);
    if (!pp) {
        bench_fail(r, "out of memory");
        return;
    }
    pp->n = n;
    pp->target = target;
    pp->latency = r->latency;
    pp->clients = calloc((size_t)n, sizeof *pp->clients);
    pp->servers = calloc((size_t)n, sizeof *pp->servers);
    rs_socket *listener = NULL;
    if (!pp->clients || !pp->servers || !rsb_run_begin(&pp->run, p, r)) {
        bench_fail(r, "set-up failed");
        goto out;
    }
    rs_socket_endpoint ep;
    listener = listen_on(&pp->run, true, pp_accepted, pp, &ep);
    for (int i = 0; listener && i < n; i++) {
        rs_socket_options o = tcp_options(true);
        if (n > BENCH_BACKLOG / 4) {
            /* Thousands of connects at once: past the listen backlog the
             * kernel drops SYNs, and their retransmissions (after 1, 3,
             * 7, 15 s) outlast 10 s under valgrind. */
            o.connect_timeout_ms = (uint32_t)(BENCH_TIMEOUT_NS / 1000000u);
        }
        struct ping_client *c = &pp->clients[i];
        c->pp = pp;
        c->socket = rs_socket_new(&o);
        if (!c->socket || rs_socket_connect(c->socket, &ep, pp->run.loop, pp_connected, pp) != 0) {
            bench_fail(r, "connect: %s", rs_error_name(rs_last_error()));
            bench_latch_signal(pp->run.done);
            break;
        }
    }
    rsb_run_wait(&pp->run);
    for (int i = 0; i < n; i++) {
        if (pp->clients[i].socket) {
            rs_socket_destroy(pp->clients[i].socket);
        }
        if (pp->servers[i].socket) {
            rs_socket_destroy(pp->servers[i].socket);
        }
    }
    if (listener) {
        rs_socket_destroy(listener);
    }
out:
    /* Write completions of destroyed sockets still point into pp: free it
     * only once the loop is gone. */
    rsb_run_end(&pp->run);
    free(pp->clients);
    free(pp->servers);
    free(pp);
}

void rsb_pingpong(const struct bench_params *p, struct bench_result *r)
{
    ping_pong(p, r, 1, p->pingpong_trips > 0 ? p->pingpong_trips : -1);
}

void rsb_fanin(const struct bench_params *p, struct bench_result *r)
{
    ping_pong(p, r, p->fanin_connections, p->fanin_trips);
}

/* ---- stream ---- */

struct stream {
    struct rsb_run run;
    rs_socket *client, *server;
    int ready;
    uint64_t queued, received;
    int outstanding;
};

static void stream_pump(struct stream *st);

static void stream_written(rs_socket *s, int error_code, size_t n, void *arg)
{
    (void)n;
    struct stream *st = arg;
    st->outstanding--;
    if (s && error_code) {
        rsb_run_error(&st->run, "stream write", error_code);
    } else if (s) {
        stream_pump(st);
    }
}

static void stream_pump(struct stream *st)
{
    uint64_t total = st->run.p->stream_bytes;
    while (st->outstanding < BENCH_MAX_OUTSTANDING && st->queued < total) {
        size_t len = total - st->queued < BENCH_CHUNK ? (size_t)(total - st->queued) : BENCH_CHUNK;
        if (rs_socket_write(st->client, payload, len, stream_written, st) != 0) {
            rsb_run_error(&st->run, "stream write", rs_last_error());
            return;
        }
        st->queued += len;
        st->outstanding++;
    }
}

static void stream_readable(rs_socket *s, int error_code, void *arg)
{
    static unsigned char sink[BENCH_CHUNK];
    struct stream *st = arg;
    /* After the last byte the client may close first: end of stream then is
     * no error. */
    if (error_code || st->received >= st->run.p->stream_bytes) {
        return;
    }
    for (;;) {
        size_t n = 0;
        if (rs_socket_read(s, sink, sizeof sink, &n) != 0) {
            int err = rs_last_error();
            if (err != RS_ERROR_WOULD_BLOCK) {
                rsb_run_error(&st->run, "stream read", err);
            }
            return;
        }
        st->received += n;
        if (st->received >= st->run.p->stream_bytes) {
            rsb_run_finish(&st->run, st->received);
            return;
        }
        if (n < sizeof sink) {
            return;
        }
    }
}

static void stream_ready(struct stream *st)
{
    if (++st->ready < 2) {
        return;
    }
    st->run.start_ns = bench_now_ns();
    if (st->run.p->stream_bytes == 0) {
        rsb_run_finish(&st->run, 0);
        return;
    }
    stream_pump(st);
}

static void stream_connected(rs_socket *s, int error_code, void *arg)
{
    (void)s;
    struct stream *st = arg;
    if (error_code) {
        rsb_run_error(&st->run, "connect", error_code);
        return;
    }
    stream_ready(st);
}

static void stream_accepted(rs_socket *l, int error_code, rs_socket *s, void *arg)
{
    (void)l;
    struct stream *st = arg;
    if (error_code || st->server) {
        if (s) {
            rs_socket_destroy(s);
        }
        return;
    }
    st->server = s;
    if (rs_socket_assign_to_event_loop(s, st->run.loop) != 0 ||
        rs_socket_subscribe_to_readable_events(s, stream_readable, st) != 0) {
        rsb_run_error(&st->run, "accepted socket", rs_last_error());
        return;
    }
    stream_ready(st);
}

void rsb_stream(const struct bench_params *p, struct bench_result *r)
{
    struct stream *st = calloc(1, sizeof *st);
    if (!st || !rsb_run_begin(&st->run, p, r)) {
        goto out;
    }
    rs_socket_endpoint ep;
    rs_socket *listener = listen_on(&st->run, true, stream_accepted, st, &ep);
    rs_socket_options o = tcp_options(true);
    if (listener && (!(st->client = rs_socket_new(&o)) ||
                     rs_socket_connect(st->client, &ep, st->run.loop, stream_connected, st) != 0)) {
        bench_fail(r, "connect: %s", rs_error_name(rs_last_error()));
    } else if (listener) {
        rsb_run_wait(&st->run);
    }
    if (st->client) {
        rs_socket_destroy(st->client);
    }
    if (st->server) {
        rs_socket_destroy(st->server);
    }
    if (listener) {
        rs_socket_destroy(listener);
    }
out:
    if (st) {
        rsb_run_end(&st->run);
    }
    free(st);
}

/* ---- connect ---- */

struct conn_cycle {
    struct rsb_run run;
    rs_socket_endpoint ep;
    long done_connects, done_accepts;
};

static void cycle_next(struct conn_cycle *cc);

static void cycle_connected(rs_socket *s, int error_code, void *arg)
{
    struct conn_cycle *cc = arg;
    rs_socket_destroy(s);
    if (error_code) {
        rsb_run_error(&cc->run, "connect", error_code);
        return;
    }
    cc->done_connects++;
    cycle_next(cc);
}

static void cycle_accepted(rs_socket *l, int error_code, rs_socket *s, void *arg)
{
    (void)l;
    struct conn_cycle *cc = arg;
    if (error_code) {
        rsb_run_error(&cc->run, "accept", error_code);
        return;
    }
    rs_socket_destroy(s);
    cc->done_accepts++;
    cycle_next(cc);
}

/* Starts the next connection once both ends of the previous one closed. */
static void cycle_next(struct conn_cycle *cc)
{
    if (cc->done_connects != cc->done_accepts) {
        return;
    }
    if (cc->done_connects >= cc->run.p->connects) {
        rsb_run_finish(&cc->run, (uint64_t)cc->done_connects);
        return;
    }
    rs_socket_options o = tcp_options(false);
    rs_socket *s = rs_socket_new(&o);
    if (!s || rs_socket_connect(s, &cc->ep, cc->run.loop, cycle_connected, cc) != 0) {
        rsb_run_error(&cc->run, "connect", rs_last_error());
        if (s) {
            rs_socket_destroy(s);
        }
    }
}

static void cycle_start(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct conn_cycle *cc = arg;
    if (status == RS_TASK_STATUS_RUN) {
        cc->run.start_ns = bench_now_ns();
        cycle_next(cc);
    }
}

void rsb_connect(const struct bench_params *p, struct bench_result *r)
{
    rs_task start;
    struct conn_cycle *cc = calloc(1, sizeof *cc);
    if (!cc || !rsb_run_begin(&cc->run, p, r)) {
        goto out;
    }
    rs_socket *listener = listen_on(&cc->run, false, cycle_accepted, cc, &cc->ep);
    if (listener) {
        rs_task_init(&start, cycle_start, cc, "connect start");
        rs_event_loop_schedule_now(cc->run.loop, &start);
        rsb_run_wait(&cc->run);
        rs_socket_destroy(listener);
    }
out:
    if (cc) {
        rsb_run_end(&cc->run);
    }
    free(cc);
}

/* ---- udp ---- */

struct udp {
    struct rsb_run run;
    rs_socket *tx, *rx;
    uint64_t sent, received, lost, checked;
    rs_task stall_task;
    bool finished;
};

static void udp_pump(struct udp *u)
{
    uint64_t n = (uint64_t)u->run.p->udp_datagrams;
    while (u->sent < n && u->sent - u->received - u->lost < (uint64_t)u->run.p->udp_window) {
        if (rs_socket_write(u->tx, payload, BENCH_UDP_SIZE, ignore_write, &u->run) != 0) {
            rsb_run_error(&u->run, "udp write", rs_last_error());
            return;
        }
        u->sent++;
    }
}

static void udp_check_done(struct udp *u)
{
    if (!u->finished && u->received + u->lost >= (uint64_t)u->run.p->udp_datagrams) {
        u->finished = true;
        u->run.r->lost = u->lost;
        rsb_run_finish(&u->run, u->received);
    }
}

/* A window with no progress since the last check is given up as lost. */
static void udp_stall(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct udp *u = arg;
    if (status != RS_TASK_STATUS_RUN || u->finished) {
        return;
    }
    if (u->received == u->checked && u->sent > u->received + u->lost) {
        u->lost = u->sent - u->received;
        udp_check_done(u);
        udp_pump(u);
    }
    u->checked = u->received;
    rs_event_loop_schedule_at(u->run.loop, &u->stall_task,
                              rs_event_loop_now(u->run.loop) + BENCH_UDP_STALL_NS);
}

static void udp_readable(rs_socket *s, int error_code, void *arg)
{
    struct udp *u = arg;
    unsigned char buf[2048];
    if (error_code) {
        rsb_run_error(&u->run, "udp readable", error_code);
        return;
    }
    for (;;) {
        size_t n = 0;
        if (rs_socket_read(s, buf, sizeof buf, &n) != 0) {
            if (rs_last_error() != RS_ERROR_WOULD_BLOCK) {
                rsb_run_error(&u->run, "udp read", rs_last_error());
            }
            break;
        }
        bench_udp_arrived(u->sent, &u->received, &u->lost);
    }
    udp_check_done(u);
    udp_pump(u);
}

static void udp_connected(rs_socket *s, int error_code, void *arg)
{
    (void)s;
    struct udp *u = arg;
    if (error_code || rs_socket_subscribe_to_readable_events(u->rx, udp_readable, u) != 0) {
        rsb_run_error(&u->run, "udp set-up", error_code ? error_code : rs_last_error());
        return;
    }
    u->run.start_ns = bench_now_ns();
    rs_task_init(&u->stall_task, udp_stall, u, "udp stall check");
    rs_event_loop_schedule_at(u->run.loop, &u->stall_task,
                              rs_event_loop_now(u->run.loop) + BENCH_UDP_STALL_NS);
    udp_check_done(u);
    udp_pump(u);
}

void rsb_udp(const struct bench_params *p, struct bench_result *r)
{
    struct udp *u = calloc(1, sizeof *u);
    if (!u || !rsb_run_begin(&u->run, p, r)) {
        goto out;
    }
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = RS_SOCKET_DGRAM;
    o.domain = RS_SOCKET_IPV4;
    rs_socket_endpoint ep = loopback(), bound;
    u->rx = rs_socket_new(&o);
    u->tx = rs_socket_new(&o);
    if (!u->rx || !u->tx || rs_socket_bind(u->rx, &ep) != 0 ||
        rs_socket_get_bound_address(u->rx, &bound) != 0 ||
        rs_socket_assign_to_event_loop(u->rx, u->run.loop) != 0 ||
        rs_socket_connect(u->tx, &bound, u->run.loop, udp_connected, u) != 0) {
        bench_fail(r, "udp set-up: %s", rs_error_name(rs_last_error()));
    } else {
        rsb_run_wait(&u->run);
    }
    if (u->tx) {
        rs_socket_destroy(u->tx);
    }
    if (u->rx) {
        rs_socket_destroy(u->rx);
    }
out:
    if (u) {
        rsb_run_end(&u->run);
    }
    free(u);
}

/* ---- udp_to: the same window, unconnected: write_to and read_from ---- */

struct udp_to {
    struct udp u; /* first: the stall task and the checks are udp's */
    rs_socket_endpoint to;
    rs_task start_task;
};

static void udp_to_pump(struct udp_to *t)
{
    struct udp *u = &t->u;
    uint64_t n = (uint64_t)u->run.p->udp_datagrams;
    while (u->sent < n && u->sent - u->received - u->lost < (uint64_t)u->run.p->udp_window) {
        if (rs_socket_write_to(u->tx, &t->to, payload, BENCH_UDP_SIZE, ignore_write, &u->run) !=
            0) {
            rsb_run_error(&u->run, "udp write_to", rs_last_error());
            return;
        }
        u->sent++;
    }
}

static void udp_to_stall(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct udp_to *t = arg;
    struct udp *u = &t->u;
    if (status != RS_TASK_STATUS_RUN || u->finished) {
        return;
    }
    if (u->received == u->checked && u->sent > u->received + u->lost) {
        u->lost = u->sent - u->received;
        udp_check_done(u);
        udp_to_pump(t);
    }
    u->checked = u->received;
    rs_event_loop_schedule_at(u->run.loop, &u->stall_task,
                              rs_event_loop_now(u->run.loop) + BENCH_UDP_STALL_NS);
}

static void udp_to_readable(rs_socket *s, int error_code, void *arg)
{
    struct udp_to *t = arg;
    struct udp *u = &t->u;
    unsigned char buf[2048];
    rs_socket_endpoint from;
    if (error_code) {
        rsb_run_error(&u->run, "udp readable", error_code);
        return;
    }
    for (;;) {
        size_t n = 0;
        if (rs_socket_read_from(s, buf, sizeof buf, &n, &from) != 0) {
            if (rs_last_error() != RS_ERROR_WOULD_BLOCK) {
                rsb_run_error(&u->run, "udp read_from", rs_last_error());
            }
            break;
        }
        bench_udp_arrived(u->sent, &u->received, &u->lost);
    }
    udp_check_done(u);
    udp_to_pump(t);
}

/* On the loop thread: subscribing belongs there. */
static void udp_to_start(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct udp_to *t = arg;
    struct udp *u = &t->u;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    if (rs_socket_subscribe_to_readable_events(u->rx, udp_to_readable, t) != 0) {
        rsb_run_error(&u->run, "udp set-up", rs_last_error());
        return;
    }
    u->run.start_ns = bench_now_ns();
    rs_task_init(&u->stall_task, udp_to_stall, t, "udp stall check");
    rs_event_loop_schedule_at(u->run.loop, &u->stall_task,
                              rs_event_loop_now(u->run.loop) + BENCH_UDP_STALL_NS);
    udp_check_done(u);
    udp_to_pump(t);
}

void rsb_udp_to(const struct bench_params *p, struct bench_result *r)
{
    struct udp_to *t = calloc(1, sizeof *t);
    struct udp *u = t ? &t->u : NULL;
    if (!t || !rsb_run_begin(&u->run, p, r)) {
        goto out;
    }
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = RS_SOCKET_DGRAM;
    o.domain = RS_SOCKET_IPV4;
    rs_socket_endpoint ep = loopback();
    u->rx = rs_socket_new(&o);
    u->tx = rs_socket_new(&o);
    if (!u->rx || !u->tx || rs_socket_bind(u->rx, &ep) != 0 ||
        rs_socket_get_bound_address(u->rx, &t->to) != 0 || rs_socket_bind(u->tx, &ep) != 0 ||
        rs_socket_assign_to_event_loop(u->rx, u->run.loop) != 0 ||
        rs_socket_assign_to_event_loop(u->tx, u->run.loop) != 0) {
        bench_fail(r, "udp set-up: %s", rs_error_name(rs_last_error()));
    } else {
        rs_task_init(&t->start_task, udp_to_start, t, "udp start");
        rs_event_loop_schedule_now(u->run.loop, &t->start_task);
        rsb_run_wait(&u->run);
    }
    if (u->tx) {
        rs_socket_destroy(u->tx);
    }
    if (u->rx) {
        rs_socket_destroy(u->rx);
    }
out:
    if (u) {
        rsb_run_end(&u->run);
    }
    free(t);
}
