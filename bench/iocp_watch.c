/*
 * The raw AFD-poll floor of the watch workload (the IOCP floor's other
 * workloads are in impl_iocp.c): pingpong between two non-blocking sockets
 * the bench owns, each polled for readability with IOCTL_AFD_POLL through
 * one \Device\Afd handle associated with the port, re-armed after each
 * completion; the completion handler recv()s and send()s itself. This is the
 * least work a readiness watch on a completion port can do per round trip,
 * the same declarations and calls as backends/iocp/iocp_watch.c.
 */
#include "iocp_loop.h"

#include <winternl.h>

#include <string.h>

#define IOCTL_AFD_POLL 0x00012024
#define AFD_POLL_RECEIVE 0x0001
#define AFD_POLL_DISCONNECT 0x0008
#define AFD_POLL_ABORT 0x0010
#define AFD_POLL_LOCAL_CLOSE 0x0020

struct afd_poll_info {
    LARGE_INTEGER timeout;
    ULONG handle_count;
    ULONG exclusive;
    struct {
        HANDLE handle;
        ULONG events;
        NTSTATUS status;
    } handles[1];
};

struct afd_side {
    struct iocp_op op;
    struct afd_poll_info info;
    struct afd_run *run;
    SOCKET s;
    HANDLE base;
    unsigned char buf[BENCH_PINGPONG_SIZE];
    size_t got;
    bool client;
};

struct afd_run {
    struct iocp_loop l;
    HANDLE afd;
    struct afd_side side[2];
    long trips;
};

static const unsigned char payload[BENCH_PINGPONG_SIZE];

static void on_poll(struct iocp_op *op, DWORD bytes, bool ok);

static void poll_arm(struct afd_side *side)
{
    struct afd_poll_info *info = &side->info;
    info->timeout.QuadPart = INT64_MAX;
    info->handle_count = 1;
    info->exclusive = FALSE;
    info->handles[0].handle = side->base;
    info->handles[0].events =
        AFD_POLL_RECEIVE | AFD_POLL_DISCONNECT | AFD_POLL_ABORT | AFD_POLL_LOCAL_CLOSE;
    info->handles[0].status = 0;
    iocp_op_arm(&side->op, on_poll, side);
    NTSTATUS st = NtDeviceIoControlFile(side->run->afd, NULL, NULL, &side->op.ov,
                                        (PIO_STATUS_BLOCK)&side->op.ov, IOCTL_AFD_POLL, info,
                                        sizeof *info, info, sizeof *info);
    /* Pending or done at once: a packet comes either way (no skip mode). */
    if (st < 0) {
        iocp_loop_fail(&side->run->l, "IOCTL_AFD_POLL", (unsigned long)st);
        return;
    }
    side->op.busy = true;
}

static void ping(struct afd_side *side)
{
    if (send(side->s, (const char *)payload, BENCH_PINGPONG_SIZE, 0) != BENCH_PINGPONG_SIZE) {
        iocp_loop_fail(&side->run->l, "send", (unsigned long)WSAGetLastError());
    }
}

static void on_poll(struct iocp_op *op, DWORD bytes, bool ok)
{
    (void)bytes;
    struct afd_side *side = op->ctx;
    struct afd_run *run = side->run;
    if (run->l.done) {
        return;
    }
    if (!ok) {
        iocp_loop_fail(&run->l, "AFD poll", (unsigned long)op->ov.Internal);
        return;
    }
    while (side->got < BENCH_PINGPONG_SIZE) {
        int n =
            recv(side->s, (char *)side->buf + side->got, (int)(BENCH_PINGPONG_SIZE - side->got), 0);
        if (n > 0) {
            side->got += (size_t)n;
            continue;
        }
        if (n < 0 && WSAGetLastError() == WSAEWOULDBLOCK) {
            poll_arm(side);
            return;
        }
        iocp_loop_fail(&run->l, "recv", (unsigned long)WSAGetLastError());
        return;
    }
    side->got = 0;
    if (side->client && ++run->trips >= run->l.p->watch_trips) {
        iocp_loop_finish(&run->l, (uint64_t)run->trips);
        return;
    }
    ping(side);
    poll_arm(side);
}

static bool open_afd(struct afd_run *run)
{
    static const WCHAR name_text[] = L"\\Device\\Afd\\ReseauBench";
    UNICODE_STRING name = {(USHORT)(sizeof name_text - sizeof(WCHAR)), (USHORT)sizeof name_text,
                           (PWSTR)name_text};
    OBJECT_ATTRIBUTES attributes;
    InitializeObjectAttributes(&attributes, &name, 0, NULL, NULL);
    IO_STATUS_BLOCK iosb;
    NTSTATUS st = NtCreateFile(&run->afd, SYNCHRONIZE, &attributes, &iosb, NULL, 0,
                               FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, NULL, 0);
    if (st < 0) {
        run->afd = NULL;
        iocp_loop_fail(&run->l, "NtCreateFile(\\Device\\Afd)", (unsigned long)st);
        return false;
    }
    if (!CreateIoCompletionPort(run->afd, run->l.port, 0, 0)) {
        iocp_loop_fail(&run->l, "CreateIoCompletionPort(AFD)", GetLastError());
        return false;
    }
    return true;
}

void io_watch(const struct bench_params *p, struct bench_result *r)
{
    struct afd_run run;
    memset(&run, 0, sizeof run);
    if (!iocp_loop_init(&run.l, p, r)) {
        return;
    }
    unsigned short port = 0;
    SOCKET listener = iocp_listener(&port);
    SOCKET s[2] = {INVALID_SOCKET, INVALID_SOCKET};
    struct sockaddr_in sin = iocp_loopback(port);
    BOOL one = TRUE;
    if (listener == INVALID_SOCKET || (s[0] = iocp_new_tcp()) == INVALID_SOCKET ||
        connect(s[0], (struct sockaddr *)&sin, sizeof sin) != 0 ||
        (s[1] = accept(listener, NULL, NULL)) == INVALID_SOCKET) {
        iocp_loop_fail(&run.l, "socket pair", (unsigned long)WSAGetLastError());
        goto out;
    }
    if (!open_afd(&run)) {
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        struct afd_side *side = &run.side[i];
        u_long on = 1;
        DWORD n = 0;
        SOCKET base = INVALID_SOCKET;
        side->run = &run;
        side->s = s[i];
        side->client = i == 0;
        ioctlsocket(s[i], FIONBIO, &on);
        setsockopt(s[i], IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
        if (WSAIoctl(s[i], SIO_BASE_HANDLE, NULL, 0, &base, sizeof base, &n, NULL, NULL) != 0) {
            iocp_loop_fail(&run.l, "SIO_BASE_HANDLE", (unsigned long)WSAGetLastError());
            goto out;
        }
        side->base = (HANDLE)base;
        poll_arm(side);
    }
    run.l.start_ns = bench_now_ns();
    if (p->watch_trips <= 0) {
        iocp_loop_finish(&run.l, 0);
    } else {
        ping(&run.side[0]);
        iocp_loop_run(&run.l);
    }
out:
    /* Cancel the polls still in flight and collect their completions
     * before their memory goes. */
    for (int i = 0; i < 2; i++) {
        if (run.side[i].op.busy) {
            CancelIoEx(run.afd, &run.side[i].op.ov);
        }
    }
    for (int tries = 0; tries < 100 && (run.side[0].op.busy || run.side[1].op.busy); tries++) {
        iocp_loop_pump(&run.l, 100);
    }
    iocp_close_socket(&s[0]);
    iocp_close_socket(&s[1]);
    iocp_close_socket(&listener);
    if (run.afd) {
        CloseHandle(run.afd);
    }
    iocp_loop_close(&run.l);
}
