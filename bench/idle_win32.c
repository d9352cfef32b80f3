/*
 * The idle workload's measurement on Windows (idle.h), and the raw IOCP
 * floor's idle workload. The clients are a second process (this program
 * started with --idle-client), so that the measured process holds only the
 * accepted ends. The heap figure is the sum of the busy blocks of every
 * heap of the process (HeapWalk: each block's size and the heap's overhead
 * for it), the resident one the working set; the same for reseau and the
 * floor.
 */
#include "idle.h"
#include "iocp_loop.h"

#include <psapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t heap_in_use(void)
{
    HANDLE heaps[64];
    DWORD n = GetProcessHeaps(64, heaps);
    if (n == 0 || n > 64) {
        return BENCH_MEM_NONE;
    }
    int64_t total = 0;
    for (DWORD i = 0; i < n; i++) {
        PROCESS_HEAP_ENTRY e;
        memset(&e, 0, sizeof e);
        if (!HeapLock(heaps[i])) {
            continue;
        }
        while (HeapWalk(heaps[i], &e)) {
            if (e.wFlags & PROCESS_HEAP_ENTRY_BUSY) {
                total += (int64_t)e.cbData + e.cbOverhead;
            }
        }
        HeapUnlock(heaps[i]);
    }
    return total;
}

static void sample(struct bench_mem *out)
{
    PROCESS_MEMORY_COUNTERS pmc;
    memset(&pmc, 0, sizeof pmc);
    out->heap = heap_in_use();
    out->rss = BENCH_MEM_NONE;
    if (K32GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) {
        out->rss = (int64_t)pmc.WorkingSetSize;
    }
}

void bench_mem_start(struct bench_mem *before)
{
    sample(before);
}

void bench_mem_stop(struct bench_mem *after)
{
    sample(after);
}

bool bench_idle_fd_limit(long n, struct bench_result *r)
{
    (void)n;
    (void)r;
    return true; /* Windows has no per-process descriptor limit to raise */
}

static PROCESS_INFORMATION client;
static HANDLE client_stdin = NULL; /* closing it tells the client to exit */

int bench_idle_clients_start(uint16_t port, long n, struct bench_result *r)
{
    char exe[MAX_PATH], cmd[MAX_PATH + 64];
    HANDLE rd = NULL, wr = NULL;
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    if (!GetModuleFileNameA(NULL, exe, sizeof exe) || !CreatePipe(&rd, &wr, &sa, 0) ||
        !SetHandleInformation(wr, HANDLE_FLAG_INHERIT, 0)) {
        bench_fail(r, "client process set-up: error %lu", GetLastError());
        if (rd) {
            CloseHandle(rd);
            CloseHandle(wr);
        }
        return -1;
    }
    snprintf(cmd, sizeof cmd, "\"%s\" --idle-client %u %ld", exe, (unsigned)port, n);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = rd;
    si.hStdOutput = GetStdHandle(STD_ERROR_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    BOOL ok = CreateProcessA(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &client);
    CloseHandle(rd);
    if (!ok) {
        bench_fail(r, "CreateProcess: error %lu", GetLastError());
        CloseHandle(wr);
        return -1;
    }
    client_stdin = wr;
    return 0;
}

void bench_idle_clients_stop(void)
{
    if (!client_stdin) {
        return;
    }
    CloseHandle(client_stdin);
    client_stdin = NULL;
    WaitForSingleObject(client.hProcess, INFINITE);
    CloseHandle(client.hProcess);
    CloseHandle(client.hThread);
}

int bench_idle_client_main(uint16_t port, long n)
{
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
        return 1;
    }
    struct sockaddr_in to = iocp_loopback(port);
    for (long i = 0; i < n; i++) {
        SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
        if (s == INVALID_SOCKET || connect(s, (struct sockaddr *)&to, sizeof to) != 0) {
            fprintf(stderr, "idle client: connect %ld of %ld: error %d\n", i + 1, n,
                    WSAGetLastError());
            return 1;
        }
    }
    /* The connections close when the process exits, once the bench closes
     * the other end of standard input. */
    char c;
    DWORD got;
    while (ReadFile(GetStdHandle(STD_INPUT_HANDLE), &c, 1, &got, NULL) && got > 0) {
    }
    return 0;
}

const char *bench_idle_no_heap_reason(void)
{
    return "HeapWalk failed";
}

/* ---- the raw IOCP floor: AcceptEx, then a zero-byte WSARecv per
 * connection as its read subscription (what a reader that owns no buffer
 * posts) ---- */

struct idle_conn {
    struct iocp_op op;
    SOCKET s;
};

struct io_idle {
    struct iocp_loop l;
    SOCKET listener, accepting;
    struct iocp_op accept_op;
    unsigned char addrs[2 * (sizeof(struct sockaddr_in6) + 16)];
    struct idle_conn **conns;
    long n, count;
    long receiving; /* zero-byte receives pending */
    LPFN_ACCEPTEX accept_ex;
};

static void idle_recv_done(struct iocp_op *op, DWORD n, bool ok)
{
    (void)n;
    (void)ok; /* no traffic: only the teardown's close completes these */
    struct io_idle *id = op->ctx;
    id->receiving--;
}

static void idle_accept_next(struct io_idle *id);

/* The accepted socket's read subscription; false (failure recorded) on error. */
static bool idle_took(struct io_idle *id)
{
    SOCKET s = id->accepting;
    id->accepting = INVALID_SOCKET;
    if (setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&id->listener,
                   sizeof id->listener) != 0) {
        closesocket(s);
        iocp_loop_fail(&id->l, "SO_UPDATE_ACCEPT_CONTEXT", (unsigned long)WSAGetLastError());
        return false;
    }
    struct idle_conn *c = calloc(1, sizeof *c);
    if (!c) {
        closesocket(s);
        iocp_loop_fail(&id->l, "out of memory", 0);
        return false;
    }
    c->s = s;
    id->conns[id->count++] = c;
    WSABUF buf = {0, NULL};
    DWORD got = 0, flags = 0;
    iocp_op_arm(&c->op, idle_recv_done, id);
    if (WSARecv(s, &buf, 1, &got, &flags, &c->op.ov, NULL) != 0) {
        if (WSAGetLastError() != WSA_IO_PENDING) {
            iocp_loop_fail(&id->l, "WSARecv", (unsigned long)WSAGetLastError());
            return false;
        }
        c->op.busy = true;
        id->receiving++;
    }
    return true;
}

static void idle_accept_done(struct iocp_op *op, DWORD n, bool ok)
{
    (void)n;
    struct io_idle *id = op->ctx;
    if (id->l.done) {
        return; /* the teardown's close */
    }
    if (!ok) {
        iocp_loop_fail(&id->l, "AcceptEx completion", 0);
        return;
    }
    if (idle_took(id)) {
        idle_accept_next(id);
    }
}

static void idle_accept_next(struct io_idle *id)
{
    while (!id->l.done) {
        if (id->count == id->n) {
            iocp_loop_finish(&id->l, (uint64_t)id->n);
            return;
        }
        DWORD n = 0;
        id->accepting = iocp_new_tcp();
        if (id->accepting == INVALID_SOCKET || !iocp_associate(&id->l, (HANDLE)id->accepting)) {
            iocp_loop_fail(&id->l, "accept set-up", (unsigned long)WSAGetLastError());
            return;
        }
        iocp_op_arm(&id->accept_op, idle_accept_done, id);
        if (id->accept_ex(id->listener, id->accepting, id->addrs, 0,
                          sizeof(struct sockaddr_in6) + 16, sizeof(struct sockaddr_in6) + 16, &n,
                          &id->accept_op.ov)) {
            if (!idle_took(id)) {
                return;
            }
        } else if (WSAGetLastError() == ERROR_IO_PENDING) {
            id->accept_op.busy = true;
            return;
        } else {
            iocp_loop_fail(&id->l, "AcceptEx", (unsigned long)WSAGetLastError());
            return;
        }
    }
}

void bench_io_idle(const struct bench_params *p, struct bench_result *r)
{
    long n = p->idle_connections;
    struct io_idle *id = calloc(1, sizeof *id);
    struct idle_conn **conns = calloc((size_t)n, sizeof *conns);
    if (!id || !conns || !iocp_loop_init(&id->l, p, r)) {
        bench_fail(r, "set-up failed");
        free(id);
        free(conns);
        return;
    }
    id->n = n;
    id->conns = conns;
    id->accepting = INVALID_SOCKET;
    unsigned short port = 0;
    id->listener = iocp_listener(&port);
    GUID guid = WSAID_ACCEPTEX;
    DWORD got = 0;
    if (id->listener == INVALID_SOCKET || !iocp_associate(&id->l, (HANDLE)id->listener) ||
        WSAIoctl(id->listener, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid,
                 &id->accept_ex, sizeof id->accept_ex, &got, NULL, NULL) != 0) {
        iocp_loop_fail(&id->l, "listener", (unsigned long)WSAGetLastError());
    } else {
        struct bench_mem before, after;
        bench_mem_start(&before);
        if (bench_idle_clients_start(port, n, r) == 0) {
            idle_accept_next(id);
            iocp_loop_run(&id->l);
            bench_mem_stop(&after);
            if (r->status == BENCH_OK && id->count < n) {
                bench_fail(r, "%ld of %ld connections", id->count, n);
            }
            if (r->status == BENCH_OK) {
                bench_idle_result(r, n, &before, &after);
            }
        }
    }
    /* Closing a socket ends its pending receive, whose completion still
     * writes to the OVERLAPPED: drained before the memory goes. */
    for (long i = 0; i < id->count; i++) {
        iocp_close_socket(&conns[i]->s);
    }
    iocp_close_socket(&id->accepting);
    iocp_close_socket(&id->listener);
    uint64_t deadline = bench_now_ns() + 10000000000ull;
    while ((id->receiving > 0 || id->accept_op.busy) && bench_now_ns() < deadline) {
        iocp_loop_pump(&id->l, 100);
    }
    bench_idle_clients_stop();
    iocp_loop_close(&id->l);
    for (long i = 0; i < id->count; i++) {
        free(conns[i]);
    }
    free(conns);
    free(id);
}
