/*
 * The IOCP floor: the workloads written directly on a completion port and
 * GetQueuedCompletionStatusEx, no library (plumbing in iocp_loop.c).
 */
#include "iocp_loop.h"

#include <reseau/event_loop.h>

#include <wchar.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char payload[BENCH_CHUNK];
static unsigned char sink[BENCH_CHUNK];

static LPFN_ACCEPTEX accept_ex;
static LPFN_CONNECTEX connect_ex;
static LPFN_GETACCEPTEXSOCKADDRS get_sockaddrs;

/* ---- pingpong and fanin ---- */

#define SENDS 2

struct pp_conn {
    struct pp *pp;
    SOCKET fds[2]; /* client, server */
    struct iocp_receiver crecv, srecv;
    struct iocp_op csend[SENDS], ssend[SENDS];
    unsigned char cbuf[4096], sbuf[4096], sout[SENDS][4096];
    size_t got;
    long left;        /* round trips still to make, when the run has a target */
    uint64_t sent_ns; /* when the ping in flight was sent (latency recorded) */
};

struct pp {
    struct iocp_loop l;
    int n, stopped;
    long target, trips;
    bool stop;
    struct bench_latency *latency; /* fanin: every round trip's latency */
    struct pp_conn *conns;
};

static bool echo_got(void *owner, DWORD n)
{
    struct pp_conn *c = owner;
    struct iocp_loop *l = &c->pp->l;
    if (n == 0) {
        return false; /* the client closed */
    }
    /* Copy out: the receive buffer is reused by the next receive at once. */
    int k = c->ssend[0].busy ? 1 : 0;
    memcpy(c->sout[k], c->sbuf, n);
    if (!iocp_send(l, c->fds[1], c->ssend, SENDS, c->sout[k], n, iocp_send_checked, l)) {
        iocp_loop_fail(l, "echo: every send is pending", 0);
        return false;
    }
    return !l->done;
}

static bool ping_got(void *owner, DWORD n)
{
    struct pp_conn *c = owner;
    struct pp *pp = c->pp;
    if (n == 0) {
        iocp_loop_fail(&pp->l, "ping: end of stream", 0);
        return false;
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
            if (++pp->stopped == pp->n) {
                iocp_loop_finish(&pp->l, (uint64_t)pp->trips);
            }
            return false;
        }
        if (!iocp_send(&pp->l, c->fds[0], c->csend, SENDS, payload, BENCH_PINGPONG_SIZE,
                       iocp_send_checked, &pp->l)) {
            iocp_loop_fail(&pp->l, "ping: every send is pending", 0);
            return false;
        }
    }
    return !pp->l.done;
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
    unsigned short port = 0;
    SOCKET listener = iocp_listener(&port);
    int made = 0;
    if (!iocp_loop_init(&pp->l, p, r)) {
        goto out;
    }
    for (; listener != INVALID_SOCKET && made < n; made++) {
        pp->conns[made].pp = pp;
        if (!iocp_tcp_pair(&pp->l, listener, port, pp->conns[made].fds)) {
            made++;
            goto out;
        }
    }
    if (listener == INVALID_SOCKET) {
        iocp_loop_fail(&pp->l, "listener", (unsigned long)WSAGetLastError());
        goto out;
    }
    pp->l.start_ns = bench_now_ns();
    if (target < 0) {
        iocp_loop_finish(&pp->l, 0);
        goto out;
    }
    uint64_t first_ns = pp->latency ? bench_now_ns() : 0;
    for (int i = 0; i < n; i++) {
        struct pp_conn *c = &pp->conns[i];
        c->left = target > 0 ? bench_share(target, n, i) : 0;
        c->sent_ns = first_ns;
        iocp_receiver_start(&c->srecv, &pp->l, c->fds[1], c->sbuf, sizeof c->sbuf, echo_got, c);
        iocp_receiver_start(&c->crecv, &pp->l, c->fds[0], c->cbuf, sizeof c->cbuf, ping_got, c);
        iocp_send(&pp->l, c->fds[0], c->csend, SENDS, payload, BENCH_PINGPONG_SIZE,
                  iocp_send_checked, &pp->l);
    }
    uint64_t stop_at = pp->l.start_ns + p->fanin_ns;
    while (!pp->l.done) {
        DWORD timeout = INFINITE;
        if (target == 0 && !pp->stop) {
            uint64_t now = bench_now_ns();
            pp->stop = now >= stop_at;
            timeout = pp->stop ? INFINITE : (DWORD)((stop_at - now + 999999u) / 1000000u);
        }
        iocp_loop_pump(&pp->l, timeout);
    }
out:
    /* Closing cancels what is still pending; the port goes with it. */
    for (int i = 0; i < made; i++) {
        iocp_close_socket(&pp->conns[i].fds[0]);
        iocp_close_socket(&pp->conns[i].fds[1]);
    }
    if (listener != INVALID_SOCKET) {
        closesocket(listener);
    }
    iocp_loop_close(&pp->l);
    free(pp->conns);
    free(pp);
}

static void io_pingpong(const struct bench_params *p, struct bench_result *r)
{
    ping_pong(p, r, 1, p->pingpong_trips > 0 ? p->pingpong_trips : -1);
}

static void io_fanin(const struct bench_params *p, struct bench_result *r)
{
    ping_pong(p, r, p->fanin_connections, p->fanin_trips);
}

/* ---- stream and pipe: at most 4 writes pending ---- */

struct flow {
    struct iocp_loop l;
    HANDLE w, r;
    bool is_pipe;
    struct iocp_op wops[BENCH_MAX_OUTSTANDING];
    struct iocp_op rop;
    uint64_t total, queued, received;
};

static void flow_pump(struct flow *f);
static void flow_read_loop(struct flow *f);

static void flow_written(struct iocp_op *op, DWORD n, bool ok)
{
    (void)n;
    struct flow *f = op->ctx;
    if (!ok) {
        iocp_loop_fail(&f->l, "write completion", 0);
        return;
    }
    flow_pump(f);
}

static void flow_pump(struct flow *f)
{
    while (!f->l.done && f->queued < f->total) {
        struct iocp_op *op = NULL;
        for (int i = 0; i < BENCH_MAX_OUTSTANDING && !op; i++) {
            op = f->wops[i].busy ? NULL : &f->wops[i];
        }
        if (!op) {
            return;
        }
        DWORD len =
            f->total - f->queued < BENCH_CHUNK ? (DWORD)(f->total - f->queued) : BENCH_CHUNK;
        iocp_op_arm(op, flow_written, f);
        BOOL done;
        if (f->is_pipe) {
            done = WriteFile(f->w, payload, len, NULL, &op->ov);
        } else {
            WSABUF b = {len, (char *)payload};
            DWORD n;
            done = WSASend((SOCKET)f->w, &b, 1, &n, 0, &op->ov, NULL) == 0;
            if (!done) {
                SetLastError((DWORD)WSAGetLastError());
            }
        }
        if (!done && GetLastError() != ERROR_IO_PENDING) {
            iocp_loop_fail(&f->l, "write", GetLastError());
            return;
        }
        op->busy = !done;
        f->queued += len;
    }
}

static bool flow_got(struct flow *f, DWORD n)
{
    f->received += n;
    if (f->received >= f->total) {
        iocp_loop_finish(&f->l, f->received);
        return false;
    }
    if (n == 0) {
        iocp_loop_fail(&f->l, "end of stream", 0);
        return false;
    }
    return true;
}

static void flow_read_done(struct iocp_op *op, DWORD n, bool ok)
{
    struct flow *f = op->ctx;
    if (!ok) {
        iocp_loop_fail(&f->l, "read completion", 0);
    } else if (flow_got(f, n)) {
        flow_read_loop(f);
    }
}

static void flow_read_loop(struct flow *f)
{
    while (!f->l.done) {
        iocp_op_arm(&f->rop, flow_read_done, f);
        DWORD n = 0;
        BOOL done;
        if (f->is_pipe) {
            done = ReadFile(f->r, sink, sizeof sink, &n, &f->rop.ov);
        } else {
            WSABUF b = {sizeof sink, (char *)sink};
            DWORD flags = 0;
            done = WSARecv((SOCKET)f->r, &b, 1, &n, &flags, &f->rop.ov, NULL) == 0;
            if (!done) {
                SetLastError((DWORD)WSAGetLastError());
            }
        }
        if (!done) {
            if (GetLastError() == ERROR_IO_PENDING) {
                f->rop.busy = true;
            } else {
                iocp_loop_fail(&f->l, "read", GetLastError());
            }
            return;
        }
        if (!flow_got(f, n)) {
            return;
        }
    }
}

static void flow_run(struct flow *f)
{
    f->l.start_ns = bench_now_ns();
    if (f->total == 0) {
        iocp_loop_finish(&f->l, 0);
        return;
    }
    flow_read_loop(f);
    flow_pump(f);
    iocp_loop_run(&f->l);
}

static void io_stream(const struct bench_params *p, struct bench_result *r)
{
    struct flow *f = calloc(1, sizeof *f);
    unsigned short port = 0;
    SOCKET fds[2] = {INVALID_SOCKET, INVALID_SOCKET};
    SOCKET listener = iocp_listener(&port);
    if (!f || !iocp_loop_init(&f->l, p, r)) {
        goto out;
    }
    if (listener != INVALID_SOCKET && iocp_tcp_pair(&f->l, listener, port, fds)) {
        f->w = (HANDLE)fds[0];
        f->r = (HANDLE)fds[1];
        f->total = p->stream_bytes;
        flow_run(f);
    } else {
        iocp_loop_fail(&f->l, "set-up", (unsigned long)WSAGetLastError());
    }
    iocp_loop_close(&f->l);
out:
    iocp_close_socket(&fds[0]);
    iocp_close_socket(&fds[1]);
    iocp_close_socket(&listener);
    free(f);
}

static void io_pipe(const struct bench_params *p, struct bench_result *r)
{
    static volatile LONG counter;
    wchar_t name[96];
    swprintf(name, sizeof name / sizeof name[0], L"\\\\.\\pipe\\reseau-bench-%lu-%ld",
             (unsigned long)GetCurrentProcessId(), (long)InterlockedIncrement(&counter));
    struct flow *f = calloc(1, sizeof *f);
    if (!f || !iocp_loop_init(&f->l, p, r)) {
        free(f);
        return;
    }
    f->is_pipe = true;
    f->r = CreateNamedPipeW(
        name, PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
        BENCH_CHUNK, BENCH_CHUNK, 0, NULL);
    f->w = f->r == INVALID_HANDLE_VALUE ? INVALID_HANDLE_VALUE
                                        : CreateFileW(name, GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                                                      FILE_FLAG_OVERLAPPED, NULL);
    if (f->w == INVALID_HANDLE_VALUE || !iocp_associate(&f->l, f->r) ||
        !iocp_associate(&f->l, f->w)) {
        iocp_loop_fail(&f->l, "named pipe", GetLastError());
    } else {
        f->total = p->pipe_bytes;
        flow_run(f);
    }
    if (f->w != INVALID_HANDLE_VALUE) {
        CloseHandle(f->w);
    }
    if (f->r != INVALID_HANDLE_VALUE) {
        CloseHandle(f->r);
    }
    iocp_loop_close(&f->l);
    free(f);
}

/* ---- connect: AcceptEx and ConnectEx ---- */

struct cycle {
    struct iocp_loop l;
    SOCKET listener, accepted, client;
    unsigned short port;
    struct iocp_op accept_op, connect_op;
    unsigned char addrs[2 * (sizeof(struct sockaddr_in6) + 16)];
    long connects, accepts;
};

static void cycle_next(struct cycle *c);

static void accept_finish(struct cycle *c)
{
    struct sockaddr *local, *remote;
    int llen, rlen;
    get_sockaddrs(c->addrs, 0, sizeof(struct sockaddr_in6) + 16, sizeof(struct sockaddr_in6) + 16,
                  &local, &llen, &remote, &rlen);
    if (setsockopt(c->accepted, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&c->listener,
                   sizeof c->listener) != 0) {
        iocp_loop_fail(&c->l, "SO_UPDATE_ACCEPT_CONTEXT", (unsigned long)WSAGetLastError());
    }
    iocp_close_socket(&c->accepted);
    c->accepts++;
}

static void connect_finish(struct cycle *c)
{
    if (setsockopt(c->client, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0) {
        iocp_loop_fail(&c->l, "SO_UPDATE_CONNECT_CONTEXT", (unsigned long)WSAGetLastError());
    }
    iocp_close_socket(&c->client);
    c->connects++;
}

static void accept_done(struct iocp_op *op, DWORD n, bool ok)
{
    (void)n;
    struct cycle *c = op->ctx;
    if (!ok) {
        iocp_loop_fail(&c->l, "AcceptEx completion", 0);
        return;
    }
    accept_finish(c);
    cycle_next(c);
}

static void connect_done(struct iocp_op *op, DWORD n, bool ok)
{
    (void)n;
    struct cycle *c = op->ctx;
    if (!ok) {
        iocp_loop_fail(&c->l, "ConnectEx completion", 0);
        return;
    }
    connect_finish(c);
    cycle_next(c);
}

/* Starts a cycle once neither operation of the previous one pends; a cycle
 * whose two operations both succeed inline is finished here, without the
 * port. */
static void cycle_next(struct cycle *c)
{
    while (!c->l.done && !c->accept_op.busy && !c->connect_op.busy) {
        if (c->connects >= c->l.p->connects) {
            iocp_loop_finish(&c->l, (uint64_t)c->connects);
            return;
        }
        struct sockaddr_in any = iocp_loopback(0), to = iocp_loopback(c->port);
        DWORD n = 0;
        c->accepted = iocp_new_tcp();
        c->client = iocp_new_tcp();
        if (c->accepted == INVALID_SOCKET || c->client == INVALID_SOCKET ||
            !iocp_associate(&c->l, (HANDLE)c->accepted) ||
            bind(c->client, (struct sockaddr *)&any, sizeof any) != 0 ||
            !iocp_associate(&c->l, (HANDLE)c->client)) {
            iocp_loop_fail(&c->l, "cycle set-up", (unsigned long)WSAGetLastError());
            return;
        }
        iocp_op_arm(&c->accept_op, accept_done, c);
        if (accept_ex(c->listener, c->accepted, c->addrs, 0, sizeof(struct sockaddr_in6) + 16,
                      sizeof(struct sockaddr_in6) + 16, &n, &c->accept_op.ov)) {
            accept_finish(c);
        } else if (WSAGetLastError() == ERROR_IO_PENDING) {
            c->accept_op.busy = true;
        } else {
            iocp_loop_fail(&c->l, "AcceptEx", (unsigned long)WSAGetLastError());
            return;
        }
        iocp_op_arm(&c->connect_op, connect_done, c);
        if (connect_ex(c->client, (struct sockaddr *)&to, sizeof to, NULL, 0, NULL,
                       &c->connect_op.ov)) {
            connect_finish(c);
        } else if (WSAGetLastError() == ERROR_IO_PENDING) {
            c->connect_op.busy = true;
        } else {
            iocp_loop_fail(&c->l, "ConnectEx", (unsigned long)WSAGetLastError());
            return;
        }
    }
}

static void io_connect(const struct bench_params *p, struct bench_result *r)
{
    struct cycle *c = calloc(1, sizeof *c);
    if (!c || !iocp_loop_init(&c->l, p, r)) {
        free(c);
        return;
    }
    c->accepted = c->client = INVALID_SOCKET;
    c->listener = iocp_listener(&c->port);
    if (c->listener == INVALID_SOCKET || !iocp_associate(&c->l, (HANDLE)c->listener)) {
        iocp_loop_fail(&c->l, "listener", (unsigned long)WSAGetLastError());
    } else {
        c->l.start_ns = bench_now_ns();
        cycle_next(c);
        iocp_loop_run(&c->l);
    }
    iocp_close_socket(&c->accepted);
    iocp_close_socket(&c->client);
    iocp_close_socket(&c->listener);
    iocp_loop_close(&c->l);
    free(c);
}

/* ---- tasks: a locked list, one wake-up packet per batch ---- */

struct item {
    struct item *next;
};

/* The nodes are `stride` bytes apart: an item's own size, or a reseau
 * task's (iocp-padded), so that the floor can be compared with reseau with
 * as many bytes crossing between the threads per task. */
struct tasks {
    struct iocp_loop l;
    SRWLOCK lock;
    struct item *head, *tail;
    unsigned char *items;
    size_t stride;
    bool wake_pending; /* under lock: a packet is queued and not yet drained */
    struct iocp_op wake;
    long n, done;
    long wakeups; /* packets posted (producer thread) */
};

static void tasks_wake(struct iocp_op *op, DWORD n, bool ok)
{
    (void)n;
    (void)ok;
    struct tasks *t = op->ctx;
    AcquireSRWLockExclusive(&t->lock);
    struct item *list = t->head;
    t->head = t->tail = NULL;
    t->wake_pending = false;
    ReleaseSRWLockExclusive(&t->lock);
    for (; list; list = list->next) {
        if (++t->done == t->n) {
            iocp_loop_finish(&t->l, (uint64_t)t->n);
        }
    }
}

static void tasks_producer(void *arg)
{
    struct tasks *t = arg;
    for (long i = 0; i < t->n; i++) {
        struct item *it = (struct item *)(t->items + (size_t)i * t->stride);
        it->next = NULL;
        AcquireSRWLockExclusive(&t->lock);
        if (t->tail) {
            t->tail->next = it;
        } else {
            t->head = it;
        }
        t->tail = it;
        bool wake = !t->wake_pending;
        t->wake_pending = true;
        ReleaseSRWLockExclusive(&t->lock);
        if (wake) {
            t->wakeups++;
            PostQueuedCompletionStatus(t->l.port, 0, 0, &t->wake.ov);
        }
    }
}

static void tasks_run(const struct bench_params *p, struct bench_result *r, size_t stride)
{
    struct tasks *t = calloc(1, sizeof *t);
    if (!t || !(t->items = calloc((size_t)p->tasks + 1, stride)) || !iocp_loop_init(&t->l, p, r)) {
        bench_fail(r, "set-up failed");
        if (t) {
            free(t->items);
        }
        free(t);
        return;
    }
    InitializeSRWLock(&t->lock);
    t->n = p->tasks;
    t->stride = stride;
    bench_prefault(t->items, ((size_t)t->n + 1) * stride);
    iocp_op_arm(&t->wake, tasks_wake, t);
    t->l.start_ns = bench_now_ns();
    if (t->n == 0) {
        iocp_loop_finish(&t->l, 0);
    } else {
        struct bench_thread *producer = bench_thread_start(tasks_producer, t);
        iocp_loop_run(&t->l);
        bench_thread_join(producer);
    }
    r->wakeups = (uint64_t)t->wakeups;
    r->has_wakeups = true;
    iocp_loop_close(&t->l);
    free(t->items);
    free(t);
}

static void io_tasks(const struct bench_params *p, struct bench_result *r)
{
    tasks_run(p, r, sizeof(struct item));
}

/* Each node takes the bytes of an rs_task (80 on Win64), of which the list
 * uses the first 8, as reseau's uses its task's first line. */
static void io_tasks_padded(const struct bench_params *p, struct bench_result *r)
{
    _Static_assert(sizeof(rs_task) >= sizeof(struct item), "an rs_task holds an item");
    tasks_run(p, r, sizeof(rs_task));
}

/* ---- timers: a binary heap, GetQueuedCompletionStatusEx as the sleep ---- */

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

static void io_timers(const struct bench_params *p, struct bench_result *r)
{
    struct iocp_loop l;
    uint64_t *heap = malloc(((size_t)p->timers + 1) * sizeof *heap);
    if (!heap || !iocp_loop_init(&l, p, r)) {
        bench_fail(r, "set-up failed");
        free(heap);
        return;
    }
    long n = 0, fired = 0;
    l.start_ns = bench_now_ns();
    uint64_t seed = BENCH_RAND_SEED;
    for (long i = 0; i < p->timers; i++) {
        heap_push(heap, &n, l.start_ns + bench_rand_next(&seed) % p->timer_span_ns);
    }
    while (n > 0 && !l.done) {
        uint64_t now = bench_now_ns();
        while (n > 0 && heap[0] <= now) {
            heap_pop(heap, &n);
            fired++;
        }
        if (n > 0) {
            /* Milliseconds, rounded up: waking early would only spin. */
            iocp_loop_pump(&l, (DWORD)((heap[0] - now + 999999u) / 1000000u));
        }
    }
    iocp_loop_finish(&l, (uint64_t)fired);
    iocp_loop_close(&l);
    free(heap);
}

/* ---- udp ---- */

struct udp {
    struct iocp_loop l;
    SOCKET tx, rx;
    struct iocp_receiver rv;
    struct iocp_op *sends;
    unsigned char buf[2048];
    uint64_t sent, received, lost, checked;
};

static void udp_pump(struct udp *u)
{
    uint64_t n = (uint64_t)u->l.p->udp_datagrams;
    int window = u->l.p->udp_window;
    while (!u->l.done && u->sent < n && u->sent - u->received - u->lost < (uint64_t)window) {
        if (!iocp_send(&u->l, u->tx, u->sends, window, payload, BENCH_UDP_SIZE, iocp_send_checked,
                       &u->l)) {
            return; /* every send pends: a completion or the stall check resumes */
        }
        u->sent++;
    }
}

static void udp_check_done(struct udp *u)
{
    if (!u->l.done && u->received + u->lost >= (uint64_t)u->l.p->udp_datagrams) {
        u->l.r->lost = u->lost;
        iocp_loop_finish(&u->l, u->received);
    }
}

static bool udp_got(void *owner, DWORD n)
{
    (void)n;
    struct udp *u = owner;
    bench_udp_arrived(u->sent, &u->received, &u->lost);
    udp_check_done(u);
    udp_pump(u);
    return !u->l.done;
}

static void io_udp(const struct bench_params *p, struct bench_result *r)
{
    struct udp *u = calloc(1, sizeof *u);
    if (!u || !(u->sends = calloc((size_t)p->udp_window, sizeof *u->sends)) ||
        !iocp_loop_init(&u->l, p, r)) {
        bench_fail(r, "set-up failed");
        if (u) {
            free(u->sends);
        }
        free(u);
        return;
    }
    struct sockaddr_in sin = iocp_loopback(0);
    int len = sizeof sin;
    u->rx = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
    u->tx = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (u->rx == INVALID_SOCKET || u->tx == INVALID_SOCKET ||
        bind(u->rx, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(u->rx, (struct sockaddr *)&sin, &len) != 0 ||
        connect(u->tx, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        !iocp_associate(&u->l, (HANDLE)u->rx) || !iocp_associate(&u->l, (HANDLE)u->tx)) {
        iocp_loop_fail(&u->l, "udp set-up", (unsigned long)WSAGetLastError());
    } else {
        u->l.start_ns = bench_now_ns();
        udp_check_done(u);
        iocp_receiver_start(&u->rv, &u->l, u->rx, u->buf, sizeof u->buf, udp_got, u);
        udp_pump(u);
        while (!u->l.done) {
            if (!iocp_loop_pump(&u->l, (DWORD)(BENCH_UDP_STALL_NS / 1000000u)) && !u->l.done &&
                u->received == u->checked && u->sent > u->received + u->lost) {
                /* A whole stall period without a datagram: the window is lost. */
                u->lost = u->sent - u->received;
                udp_check_done(u);
                udp_pump(u);
            }
            u->checked = u->received;
        }
    }
    iocp_close_socket(&u->tx);
    iocp_close_socket(&u->rx);
    iocp_loop_close(&u->l);
    free(u->sends);
    free(u);
}

/* ---- udp_to: the same, unconnected: WSASendTo and WSARecvFrom ---- */

struct udp_to {
    struct udp u; /* first: udp_check_done is udp's */
    struct sockaddr_in to;
};

static void udp_to_pump(struct udp_to *t)
{
    struct udp *u = &t->u;
    uint64_t n = (uint64_t)u->l.p->udp_datagrams;
    int window = u->l.p->udp_window;
    while (!u->l.done && u->sent < n && u->sent - u->received - u->lost < (uint64_t)window) {
        if (!iocp_send_to(&u->l, u->tx, u->sends, window, payload, BENCH_UDP_SIZE,
                          (const struct sockaddr *)&t->to, (int)sizeof t->to, iocp_send_checked,
                          &u->l)) {
            return; /* every send pends: a completion or the stall check resumes */
        }
        u->sent++;
    }
}

static bool udp_to_got(void *owner, DWORD n)
{
    (void)n;
    struct udp_to *t = owner;
    bench_udp_arrived(t->u.sent, &t->u.received, &t->u.lost);
    udp_check_done(&t->u);
    udp_to_pump(t);
    return !t->u.l.done;
}

static void io_udp_to(const struct bench_params *p, struct bench_result *r)
{
    struct udp_to *t = calloc(1, sizeof *t);
    struct udp *u = t ? &t->u : NULL;
    if (!t || !(u->sends = calloc((size_t)p->udp_window, sizeof *u->sends)) ||
        !iocp_loop_init(&u->l, p, r)) {
        bench_fail(r, "set-up failed");
        if (t) {
            free(u->sends);
        }
        free(t);
        return;
    }
    struct sockaddr_in sin = iocp_loopback(0);
    int len = sizeof t->to;
    u->rx = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
    u->tx = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
    if (u->rx == INVALID_SOCKET || u->tx == INVALID_SOCKET ||
        bind(u->rx, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(u->rx, (struct sockaddr *)&t->to, &len) != 0 ||
        bind(u->tx, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        !iocp_associate(&u->l, (HANDLE)u->rx) || !iocp_associate(&u->l, (HANDLE)u->tx)) {
        iocp_loop_fail(&u->l, "udp set-up", (unsigned long)WSAGetLastError());
    } else {
        u->l.start_ns = bench_now_ns();
        udp_check_done(u);
        u->rv.with_from = true;
        iocp_receiver_start(&u->rv, &u->l, u->rx, u->buf, sizeof u->buf, udp_to_got, t);
        udp_to_pump(t);
        while (!u->l.done) {
            if (!iocp_loop_pump(&u->l, (DWORD)(BENCH_UDP_STALL_NS / 1000000u)) && !u->l.done &&
                u->received == u->checked && u->sent > u->received + u->lost) {
                /* A whole stall period without a datagram: the window is lost. */
                u->lost = u->sent - u->received;
                udp_check_done(u);
                udp_to_pump(t);
            }
            u->checked = u->received;
        }
    }
    iocp_close_socket(&u->tx);
    iocp_close_socket(&u->rx);
    iocp_loop_close(&u->l);
    free(u->sends);
    free(t);
}

/* ---- start-up ---- */

static int io_init(void)
{
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
        return -1;
    }
    SOCKET s = iocp_new_tcp();
    GUID accept_guid = WSAID_ACCEPTEX, connect_guid = WSAID_CONNECTEX,
         addrs_guid = WSAID_GETACCEPTEXSOCKADDRS;
    DWORD n = 0;
    bool ok = s != INVALID_SOCKET &&
              WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &accept_guid, sizeof accept_guid,
                       &accept_ex, sizeof accept_ex, &n, NULL, NULL) == 0 &&
              WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &connect_guid, sizeof connect_guid,
                       &connect_ex, sizeof connect_ex, &n, NULL, NULL) == 0 &&
              WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &addrs_guid, sizeof addrs_guid,
                       &get_sockaddrs, sizeof get_sockaddrs, &n, NULL, NULL) == 0;
    if (s != INVALID_SOCKET) {
        closesocket(s);
    }
    if (!ok) {
        WSACleanup();
        return -1;
    }
    return 0;
}

static void io_clean_up(void)
{
    WSACleanup();
}

/*
 * The same programs, each run on a thread of its own while the calling
 * thread waits for it: the threading of reseau, whose loop always has its
 * own thread. Under Wine the thread matters as much as the code: a request
 * made from the process's main thread costs less than the same request
 * from a second thread (docs/performance.md, wall time under Wine), so this
 * is the floor reseau's own overhead is measured against.
 */
struct on_thread {
    bench_fn *fn;
    const struct bench_params *p;
    struct bench_result *r;
};

static void on_thread_main(void *arg)
{
    struct on_thread *t = arg;
    t->fn(t->p, t->r);
}

static void run_on_thread(bench_fn *fn, const struct bench_params *p, struct bench_result *r)
{
    struct on_thread t = {fn, p, r};
    struct bench_thread *thread = bench_thread_start(on_thread_main, &t);
    if (!thread) {
        bench_fail(r, "CreateThread failed");
        return;
    }
    bench_thread_join(thread);
}

#define ON_THREAD(workload)                                                                        \
    static void workload##_on_thread(const struct bench_params *p, struct bench_result *r)         \
    {                                                                                              \
        run_on_thread(workload, p, r);                                                             \
    }
ON_THREAD(io_pingpong)
ON_THREAD(io_stream)
ON_THREAD(io_connect)
ON_THREAD(io_tasks)
ON_THREAD(io_tasks_padded)
ON_THREAD(io_timers)
ON_THREAD(io_udp)
ON_THREAD(io_fanin)
ON_THREAD(io_pipe)
ON_THREAD(io_watch)
ON_THREAD(io_udp_to)

const struct bench_impl bench_impl_iocp_thread = {
    .name = "iocp-thread",
    .description = "the raw IOCP floor run on a thread of its own, as reseau's loop is",
    .run =
        {
            [BW_PINGPONG] = io_pingpong_on_thread,
            [BW_STREAM] = io_stream_on_thread,
            [BW_CONNECT] = io_connect_on_thread,
            [BW_TASKS] = io_tasks_on_thread,
            [BW_TIMERS] = io_timers_on_thread,
            [BW_UDP] = io_udp_on_thread,
            [BW_FANIN] = io_fanin_on_thread,
            [BW_PIPE] = io_pipe_on_thread,
            [BW_WATCH] = io_watch_on_thread,
            [BW_UDP_TO] = io_udp_to_on_thread,
        },
    .na_note =
        {
            [BW_IDLE] = "the iocp row: idle connections cost the same on any thread",
        },
    .init = io_init,
    .clean_up = io_clean_up,
};

const struct bench_impl bench_impl_iocp = {
    .name = "iocp",
    .description = "raw completion port + GetQueuedCompletionStatusEx, skip-on-success inline",
    .run =
        {
            [BW_PINGPONG] = io_pingpong,
            [BW_STREAM] = io_stream,
            [BW_CONNECT] = io_connect,
            [BW_TASKS] = io_tasks,
            [BW_TIMERS] = io_timers,
            [BW_UDP] = io_udp,
            [BW_FANIN] = io_fanin,
            [BW_PIPE] = io_pipe,
            [BW_WATCH] = io_watch,
            [BW_UDP_TO] = io_udp_to,
            [BW_IDLE] = bench_io_idle,
        },
    .init = io_init,
    .clean_up = io_clean_up,
};

#define PADDED_NA "the iocp-thread row: only the tasks workload depends on the size of a node"
const struct bench_impl bench_impl_iocp_padded = {
    .name = "iocp-padded",
    .description = "iocp-thread with each task node padded to sizeof(rs_task), as many bytes "
                   "per task as reseau moves between the threads",
    .run = {[BW_TASKS] = io_tasks_padded_on_thread},
    .na_note =
        {
            [BW_PINGPONG] = PADDED_NA,
            [BW_STREAM] = PADDED_NA,
            [BW_CONNECT] = PADDED_NA,
            [BW_TIMERS] = PADDED_NA,
            [BW_UDP] = PADDED_NA,
            [BW_FANIN] = PADDED_NA,
            [BW_PIPE] = PADDED_NA,
            [BW_WATCH] = PADDED_NA,
            [BW_UDP_TO] = PADDED_NA,
            [BW_IDLE] = PADDED_NA,
        },
    .init = io_init,
    .clean_up = io_clean_up,
};
