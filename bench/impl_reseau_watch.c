/*
 * The watch workload on reseau: pingpong between two sockets the benchmark
 * makes and owns itself (plain socket calls, non-blocking, TCP_NODELAY),
 * each watched for READABLE on one loop; the callbacks recv and send
 * themselves, as a library integrated through a readiness watch would.
 */
#include "impl_reseau.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#define WOULD_BLOCK(e) ((e) == WSAEWOULDBLOCK)
#define sock_error() WSAGetLastError()
#define sock_close(s) closesocket(s)
#else
#include "posix_net.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#define WOULD_BLOCK(e) ((e) == EAGAIN || (e) == EWOULDBLOCK)
#define sock_error() errno
#define sock_close(s) close(s)
#endif

static const unsigned char payload[BENCH_PINGPONG_SIZE];

/* A connected pair on loopback (client, server), non-blocking, TCP_NODELAY. */
static bool make_pair(rs_os_socket out[2])
{
#ifdef _WIN32
    SOCKET l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int len = sizeof sin;
    out[0] = out[1] = INVALID_SOCKET;
    if (l == INVALID_SOCKET || bind(l, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(l, (struct sockaddr *)&sin, &len) != 0 || listen(l, 1) != 0) {
        goto fail;
    }
    out[0] = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (out[0] == INVALID_SOCKET || connect(out[0], (struct sockaddr *)&sin, sizeof sin) != 0 ||
        (out[1] = accept(l, NULL, NULL)) == INVALID_SOCKET) {
        goto fail;
    }
    closesocket(l);
    for (int i = 0; i < 2; i++) {
        u_long on = 1;
        BOOL one = TRUE;
        ioctlsocket(out[i], FIONBIO, &on);
        setsockopt(out[i], IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    }
    return true;
fail:
    if (l != INVALID_SOCKET) {
        closesocket(l);
    }
    for (int i = 0; i < 2; i++) {
        if (out[i] != INVALID_SOCKET) {
            closesocket(out[i]);
        }
    }
    return false;
#else
    uint16_t port;
    int l = bench_tcp_listener(&port);
    int fds[2];
    bool ok = l >= 0 && bench_tcp_pair(l, port, true, fds) == 0;
    if (l >= 0) {
        close(l);
    }
    out[0] = fds[0];
    out[1] = fds[1];
    return ok;
#endif
}

struct watch_run;

struct watch_side {
    struct watch_run *wr;
    rs_os_socket s;
    rs_watch *watch;
    unsigned char buf[BENCH_PINGPONG_SIZE];
    size_t got;
    bool client;
};

struct watch_run {
    struct rsb_run run;
    struct watch_side side[2];
    long trips;
    bool over;
};

static void fail(struct watch_run *wr, const char *what, int code)
{
    if (!wr->over) {
        wr->over = true;
        rsb_run_error(&wr->run, what, code);
    }
}

static void ping(struct watch_side *side)
{
    int n = (int)send(side->s, (const char *)payload, BENCH_PINGPONG_SIZE, 0);
    if (n != BENCH_PINGPONG_SIZE) {
        fail(side->wr, "send", RS_ERROR_SYS_CALL_FAILURE);
    }
}

static void on_ready(rs_watch *watch, int error, unsigned events, void *user_data)
{
    (void)watch;
    (void)events;
    struct watch_side *side = user_data;
    struct watch_run *wr = side->wr;
    if (error) {
        fail(wr, "watch", error);
        return;
    }
    if (wr->over) {
        return;
    }
    while (side->got < BENCH_PINGPONG_SIZE) {
        int n = (int)recv(side->s, (char *)side->buf + side->got,
                          (int)(BENCH_PINGPONG_SIZE - side->got), 0);
        if (n > 0) {
            side->got += (size_t)n;
        } else if (n < 0 && WOULD_BLOCK(sock_error())) {
            return;
        } else {
            fail(wr, "recv", n == 0 ? RS_ERROR_SOCKET_CLOSED : RS_ERROR_SYS_CALL_FAILURE);
            return;
        }
    }
    side->got = 0;
    if (side->client && ++wr->trips >= wr->run.p->watch_trips) {
        wr->over = true;
        rsb_run_finish(&wr->run, (uint64_t)wr->trips);
        return;
    }
    ping(side);
}

static void watch_start(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct watch_run *wr = arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        struct watch_side *side = &wr->side[i];
        side->watch = rs_watch_start(wr->run.loop, side->s, RS_WATCH_READABLE, on_ready, side);
        if (!side->watch) {
            fail(wr, "rs_watch_start", rs_last_error());
            return;
        }
    }
    wr->run.start_ns = bench_now_ns();
    if (wr->run.p->watch_trips <= 0) {
        wr->over = true;
        rsb_run_finish(&wr->run, 0);
        return;
    }
    ping(&wr->side[0]);
}

void rsb_watch(const struct bench_params *p, struct bench_result *r)
{
    struct watch_run *wr = calloc(1, sizeof *wr);
    rs_os_socket s[2] = {RS_OS_SOCKET_INVALID, RS_OS_SOCKET_INVALID};
    if (!wr || !rsb_run_begin(&wr->run, p, r)) {
        goto out;
    }
    if (!make_pair(s)) {
        bench_fail(r, "socket pair: system error %d", sock_error());
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        wr->side[i].wr = wr;
        wr->side[i].s = s[i];
        wr->side[i].client = i == 0;
    }
    rs_task start;
    rs_task_init(&start, watch_start, wr, "watch start");
    rs_event_loop_schedule_now(wr->run.loop, &start);
    rsb_run_wait(&wr->run);
    /* From this thread: each stop waits until the loop let go of the watch. */
    for (int i = 0; i < 2; i++) {
        if (wr->side[i].watch) {
            rs_watch_stop(wr->side[i].watch, NULL, NULL);
        }
    }
out:
    for (int i = 0; i < 2; i++) {
        if (s[i] != RS_OS_SOCKET_INVALID) {
            sock_close(s[i]);
        }
    }
    if (wr) {
        rsb_run_end(&wr->run);
    }
    free(wr);
}
