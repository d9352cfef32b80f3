#include "iocp_loop.h"

#include <string.h>

/* ---- the loop ---- */

bool iocp_loop_init(struct iocp_loop *l, const struct bench_params *p, struct bench_result *r)
{
    memset(l, 0, sizeof *l);
    l->p = p;
    l->r = r;
    l->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    if (!l->port) {
        bench_fail(r, "CreateIoCompletionPort: error %lu", GetLastError());
        return false;
    }
    return true;
}

void iocp_loop_finish(struct iocp_loop *l, uint64_t ops)
{
    l->r->elapsed_ns = bench_now_ns() - l->start_ns;
    l->r->ops = ops;
    l->done = true;
}

void iocp_loop_fail(struct iocp_loop *l, const char *what, unsigned long err)
{
    bench_fail(l->r, "%s: error %lu", what, err);
    l->done = true;
}

/* Waits up to timeout_ms and runs what completed; false if nothing did. */
bool iocp_loop_pump(struct iocp_loop *l, DWORD timeout_ms)
{
    OVERLAPPED_ENTRY e[64];
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(l->port, e, 64, &n, timeout_ms, FALSE)) {
        DWORD err = GetLastError();
        if (err != WAIT_TIMEOUT) {
            iocp_loop_fail(l, "GetQueuedCompletionStatusEx", err);
        }
        return false;
    }
    for (ULONG i = 0; i < n; i++) {
        struct iocp_op *op = (struct iocp_op *)e[i].lpOverlapped;
        op->busy = false;
        op->fn(op, e[i].dwNumberOfBytesTransferred, op->ov.Internal == 0);
    }
    return true;
}

void iocp_loop_run(struct iocp_loop *l)
{
    uint64_t deadline = bench_now_ns() + BENCH_TIMEOUT_NS;
    while (!l->done) {
        if (!iocp_loop_pump(l, 1000) && !l->done && bench_now_ns() > deadline) {
            iocp_loop_fail(l, "timed out", 0);
        }
    }
}

bool iocp_associate(struct iocp_loop *l, HANDLE h)
{
    if (!CreateIoCompletionPort(h, l->port, 0, 0) ||
        !SetFileCompletionNotificationModes(h, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS |
                                                   FILE_SKIP_SET_EVENT_ON_HANDLE)) {
        iocp_loop_fail(l, "iocp_associate", GetLastError());
        return false;
    }
    return true;
}

void iocp_loop_close(struct iocp_loop *l)
{
    if (l->port) {
        CloseHandle(l->port);
    }
}

struct iocp_op *iocp_op_arm(struct iocp_op *op, iocp_op_fn *fn, void *ctx)
{
    memset(&op->ov, 0, sizeof op->ov);
    op->fn = fn;
    op->ctx = ctx;
    return op;
}

/* ---- sockets ---- */

SOCKET iocp_new_tcp(void)
{
    return WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
}

struct sockaddr_in iocp_loopback(unsigned short port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

SOCKET iocp_listener(unsigned short *port)
{
    SOCKET l = iocp_new_tcp();
    struct sockaddr_in sin = iocp_loopback(0);
    int len = sizeof sin;
    if (l == INVALID_SOCKET || bind(l, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        listen(l, SOMAXCONN) != 0 || getsockname(l, (struct sockaddr *)&sin, &len) != 0) {
        if (l != INVALID_SOCKET) {
            closesocket(l);
        }
        return INVALID_SOCKET;
    }
    *port = ntohs(sin.sin_port);
    return l;
}

/* A connected pair (set-up, not measured: blocking connect and accept). */
bool iocp_tcp_pair(struct iocp_loop *l, SOCKET listener, unsigned short port, SOCKET out[2])
{
    struct sockaddr_in sin = iocp_loopback(port);
    BOOL one = TRUE;
    out[0] = iocp_new_tcp();
    out[1] = INVALID_SOCKET;
    if (out[0] == INVALID_SOCKET || connect(out[0], (struct sockaddr *)&sin, sizeof sin) != 0 ||
        (out[1] = accept(listener, NULL, NULL)) == INVALID_SOCKET) {
        iocp_loop_fail(l, "connect/accept", (unsigned long)WSAGetLastError());
        return false;
    }
    setsockopt(out[0], IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    setsockopt(out[1], IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
    return iocp_associate(l, (HANDLE)out[0]) && iocp_associate(l, (HANDLE)out[1]);
}

void iocp_close_socket(SOCKET *s)
{
    if (*s != INVALID_SOCKET) {
        closesocket(*s);
        *s = INVALID_SOCKET;
    }
}

static void recv_loop(struct iocp_receiver *rv)
{
    while (!rv->l->done) {
        WSABUF b = {rv->len, (char *)rv->buf};
        DWORD n = 0, flags = 0;
        iocp_op_arm(&rv->op, rv->op.fn, rv);
        int rc;
        if (rv->with_from) {
            rv->from_len = (INT)sizeof rv->from;
            rc = WSARecvFrom(rv->s, &b, 1, &n, &flags, (struct sockaddr *)&rv->from, &rv->from_len,
                             &rv->op.ov, NULL);
        } else {
            rc = WSARecv(rv->s, &b, 1, &n, &flags, &rv->op.ov, NULL);
        }
        if (rc == 0) {
            if (!rv->got(rv->owner, n)) {
                return;
            }
            continue;
        }
        int err = WSAGetLastError();
        if (err == WSA_IO_PENDING) {
            rv->op.busy = true;
            return;
        }
        iocp_loop_fail(rv->l, "WSARecv", (unsigned long)err);
        return;
    }
}

static void recv_done(struct iocp_op *op, DWORD n, bool ok)
{
    struct iocp_receiver *rv = op->ctx;
    if (!ok) {
        if (!rv->l->done) {
            iocp_loop_fail(rv->l, "receive completion", 0);
        }
        return;
    }
    if (rv->got(rv->owner, n)) {
        recv_loop(rv);
    }
}

void iocp_receiver_start(struct iocp_receiver *rv, struct iocp_loop *l, SOCKET s, void *buf,
                         DWORD len, iocp_got_fn *got, void *owner)
{
    rv->l = l;
    rv->s = s;
    rv->buf = buf;
    rv->len = len;
    rv->got = got;
    rv->owner = owner;
    rv->op.fn = recv_done;
    recv_loop(rv);
}

/* Sends from the first free operation of ops; false if none is free. A send
 * that completes at once leaves the operation free. */
bool iocp_send(struct iocp_loop *l, SOCKET s, struct iocp_op *ops, int nops, const void *data,
               DWORD len, iocp_op_fn *done, void *ctx)
{
    return iocp_send_to(l, s, ops, nops, data, len, NULL, 0, done, ctx);
}

bool iocp_send_to(struct iocp_loop *l, SOCKET s, struct iocp_op *ops, int nops, const void *data,
                  DWORD len, const struct sockaddr *to, int to_len, iocp_op_fn *done, void *ctx)
{
    struct iocp_op *op = NULL;
    for (int i = 0; i < nops && !op; i++) {
        op = ops[i].busy ? NULL : &ops[i];
    }
    if (!op) {
        return false;
    }
    WSABUF b = {len, (char *)data};
    DWORD n = 0;
    iocp_op_arm(op, done, ctx);
    int rc = to ? WSASendTo(s, &b, 1, &n, 0, to, to_len, &op->ov, NULL)
                : WSASend(s, &b, 1, &n, 0, &op->ov, NULL);
    if (rc == 0) {
        return true;
    }
    int err = WSAGetLastError();
    if (err != WSA_IO_PENDING) {
        iocp_loop_fail(l, to ? "WSASendTo" : "WSASend", (unsigned long)err);
        return true;
    }
    op->busy = true;
    return true;
}

void iocp_send_checked(struct iocp_op *op, DWORD n, bool ok)
{
    (void)n;
    struct iocp_loop *l = op->ctx;
    if (!ok && !l->done) {
        iocp_loop_fail(l, "send completion", 0);
    }
}
