/*
 * The raw IOCP floor's plumbing (impl_iocp.c holds the workloads): a
 * completion port drained with GetQueuedCompletionStatusEx, handles set to
 * FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (an operation that succeeds at once is
 * handled inline and queues no packet), a receive loop and a send helper.
 * Issuing functions loop instead of recursing, so a long run of inline
 * successes cannot grow the stack.
 */
#ifndef RESEAU_BENCH_IOCP_LOOP_H
#define RESEAU_BENCH_IOCP_LOOP_H

#include "bench.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>

struct iocp_op;
typedef void(iocp_op_fn)(struct iocp_op *op, DWORD bytes, bool ok);

struct iocp_op {
    OVERLAPPED ov;
    iocp_op_fn *fn;
    void *ctx;
    bool busy; /* issued and pending: its packet has not been dequeued */
};

struct iocp_loop {
    HANDLE port;
    bool done;
    struct bench_result *r;
    const struct bench_params *p;
    uint64_t start_ns;
};

/*
 * Receives into buf until an operation pends. got(owner, n) handles each
 * inline or completed receive and returns false to stop receiving.
 */
typedef bool(iocp_got_fn)(void *owner, DWORD n);

struct iocp_receiver {
    struct iocp_op op;
    SOCKET s;
    unsigned char *buf;
    DWORD len;
    iocp_got_fn *got;
    void *owner;
    struct iocp_loop *l;
    /* WSARecvFrom instead of WSARecv: the sender's address lands here. */
    bool with_from;
    SOCKADDR_STORAGE from;
    INT from_len;
};

/* A fresh completion port; false (failure recorded) if none could be made. */
bool iocp_loop_init(struct iocp_loop *l, const struct bench_params *p, struct bench_result *r);
/* Stops the clock with ops operations done and ends the run. */
void iocp_loop_finish(struct iocp_loop *l, uint64_t ops);
/* Records a failure (the first one wins) and ends the run. */
void iocp_loop_fail(struct iocp_loop *l, const char *what, unsigned long err);
/* Waits up to timeout_ms and runs what completed; false if nothing did. */
bool iocp_loop_pump(struct iocp_loop *l, DWORD timeout_ms);
/* Pumps until the run ends (bounded by BENCH_TIMEOUT_NS). */
void iocp_loop_run(struct iocp_loop *l);
/* Attaches h to the port with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS. */
bool iocp_associate(struct iocp_loop *l, HANDLE h);
void iocp_loop_close(struct iocp_loop *l);
/* Clears the OVERLAPPED for a new operation that completes into fn. */
struct iocp_op *iocp_op_arm(struct iocp_op *op, iocp_op_fn *fn, void *ctx);
SOCKET iocp_new_tcp(void);
struct sockaddr_in iocp_loopback(unsigned short port);
/* A listener on 127.0.0.1 port 0; *port receives the port. */
SOCKET iocp_listener(unsigned short *port);
/* A connected pair (client, server), TCP_NODELAY on both, attached to the
 * port. Set-up, not measured: blocking connect and accept. */
bool iocp_tcp_pair(struct iocp_loop *l, SOCKET listener, unsigned short port, SOCKET out[2]);
void iocp_close_socket(SOCKET *s);
/* Starts receiving on s into buf; got(owner, n) sees every receive. */
void iocp_receiver_start(struct iocp_receiver *rv, struct iocp_loop *l, SOCKET s, void *buf,
                         DWORD len, iocp_got_fn *got, void *owner);
/* Sends from the first free operation of ops; false if none is free. A
 * send that completes at once leaves the operation free. */
bool iocp_send(struct iocp_loop *l, SOCKET s, struct iocp_op *ops, int nops, const void *data,
               DWORD len, iocp_op_fn *done, void *ctx);
/* The watch workload on raw AFD polls (iocp_watch.c). */
bench_fn io_watch;

/* iocp_send with WSASendTo to `to` (an unconnected datagram socket). */
bool iocp_send_to(struct iocp_loop *l, SOCKET s, struct iocp_op *ops, int nops, const void *data,
                  DWORD len, const struct sockaddr *to, int to_len, iocp_op_fn *done, void *ctx);
/* A send completion that only checks for errors (ctx: the loop). */
void iocp_send_checked(struct iocp_op *op, DWORD n, bool ok);

#endif
