/*
 * IOCP backend, TCP: ConnectEx, AcceptEx, reads, and one overlapped WSASend
 * per write (UDP shares the writes).
 *
 * Reads (W5), two modes, chosen per socket when it is attached:
 *   - buffered (while the loop has a place, rs__iocp_loop_take_read_buffer):
 *     an overlapped WSARecv into a buffer the socket owns, 128 KiB for the
 *     loop's first RS__IOCP_BUFFERED_STREAMS sockets
 *     (RS__IOCP_STREAM_READ_BUF), 4 KiB for the next
 *     RS__IOCP_SMALL_BUFFERED_STREAMS (RS__IOCP_STREAM_SMALL_BUF).
 *     Its completion is "readable"; rs_socket_read hands the bytes out and
 *     posts the next receive once they are all taken. One receive per
 *     direction per round trip, and with skip-on-success a receive of data
 *     already there completes inline, without a packet. A receive that
 *     filled the buffer is followed by a direct non-blocking recv into the
 *     rest of the caller's buffer (read_on_directly): a bulk transfer
 *     through a 4 KiB buffer does not take one receive per 4 KiB.
 *   - zero-byte readiness (beyond both): a zero-byte overlapped WSARecv
 *     completes when data (or the end of stream) is there, without
 *     consuming it, and the data is then read with a non-blocking recv into
 *     the caller's buffer. An idle socket pins no buffer, so 10k idle
 *     connections do not hold 1.25 GiB, or 40 MiB at 4 KiB each.
 * libuv's precedent is the first tier alone (uv_active_tcp_streams_threshold:
 * real-buffer reads up to 50 active streams, zero reads beyond). Zero-byte
 * readiness receives each direction twice (the zero-byte receive, then the
 * recv), each a wineserver request under Wine; the small tier gives a
 * loop's next sockets a buffered read too, so that many connections on one
 * loop read at the raw IOCP floor's cost (docs/performance.md). In both modes a read is
 * posted only once the socket is subscribed (or read), and posted again only
 * once a read has drained what was reported (RS_ERROR_WOULD_BLOCK or a short
 * read), so a socket that is not read is not reported again
 * (docs/readable-events.md).
 */
#include "iocp_socket.h"

#include "../../common/alloc.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <limits.h>
#include <string.h>

/* AcceptEx calls kept posted per listener: several, so that a burst of
 * connections does not wait for one completion per connection; the rest
 * waits in the listen backlog. */
#define MAX_POSTED_ACCEPTS 16

/* ---- connect ---- */

/* The same address and port (and IPv6 scope). */
static bool same_endpoint(const SOCKADDR_STORAGE *a, const SOCKADDR_STORAGE *b)
{
    if (a->ss_family != b->ss_family) {
        return false;
    }
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* The addresses, once the connect context is updated: the local one from
 * the system (bind chose the port); the remote one is the address ConnectEx
 * connected to, which getpeername would only repeat (at the cost of a system
 * call). *self: the socket is connected to itself. */
static int prepare_connected(rs_socket *s, bool *self)
{
    struct rs__iocp_socket *im = s->impl;
    SOCKADDR_STORAGE local;
    int local_len = 0;
    if (rs__iocp_getsockname(im->sock, &local, &local_len) != 0) {
        return -1;
    }
    rs__socket_set_local(s, (const struct sockaddr *)&local, (size_t)local_len);
    rs__socket_set_remote(s, (const struct sockaddr *)&im->remote, (size_t)im->remote_len);
    *self = same_endpoint(&local, &im->remote);
    return 0;
}

static void connected(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes)
{
    (void)bytes;
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_sock_op_free(op);
    bool self = false;
    if (error == 0) {
        /* A ConnectEx socket has the default context until
         * SO_UPDATE_CONNECT_CONTEXT: getsockname, getpeername and shutdown
         * need it (ConnectEx's documentation). */
        if (setsockopt(im->sock, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0) != 0) {
            error = rs__iocp_error_from_wsa(WSAGetLastError());
        } else if (prepare_connected(s, &self) != 0) {
            error = rs__last_error();
        } else if (self) {
            /* ConnectEx needs a bound socket, and bind(port 0) may hand out
             * the very port being connected to when nothing listens there:
             * TCP then connects the socket to itself (a simultaneous open).
             * With no listener the connect is refused. */
            error = RS_ERROR_CONNECTION_REFUSED;
        }
    }
    if (error != 0) {
        rs__iocp_connect_failed(s, error);
        return;
    }
    rs__socket_connect_done(s, 0);
}

static void start_connect(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    struct rs__iocp_sock_op *op = rs__iocp_sock_op_new(0);
    if (!op) {
        rs__iocp_connect_failed(s, rs__last_error());
        return;
    }
    rs__iocp_sock_op_start(s, op, connected);
    int injected =
        RS__TEST_HOOK(rs__iocp_fault_take(RS__IOCP_FAULT_CONNECT, im->sock, &im->remote));
    if (injected == RS__IOCP_FAULT_STALL) {
        op->stalled = true;
        return;
    }
    if (injected) {
        rs__iocp_sock_op_complete(op, rs__iocp_error_from_wsa(injected));
        return;
    }
    if (rs__winsock_ext_for(s->options.domain)
            ->connect_ex(im->sock, (const struct sockaddr *)&im->remote, im->remote_len, NULL, 0,
                         NULL, &op->base.overlapped)) {
        rs__iocp_sock_op_succeeded(op);
    } else {
        int err = WSAGetLastError();
        if (err != ERROR_IO_PENDING) {
            rs__iocp_sock_op_complete(op, rs__iocp_error_from_wsa(err));
        }
    }
}

int rs__iocp_tcp_new_read_op(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    enum rs__iocp_read_tier tier = rs__iocp_loop_take_read_buffer(s->loop);
    if (tier != RS__IOCP_READ_ZERO_BYTE) {
        size_t size =
            tier == RS__IOCP_READ_LARGE ? RS__IOCP_STREAM_READ_BUF : RS__IOCP_STREAM_SMALL_BUF;
        if (!(im->read_op = rs__iocp_sock_op_new(size))) {
            rs__iocp_loop_return_read_buffer(s->loop, tier);
            return -1;
        }
        im->buffered_loop = s->loop;
        im->read_tier = tier;
        return 0;
    }
    return (im->read_op = rs__iocp_sock_op_new(0)) ? 0 : -1;
}

int rs__iocp_tcp_attach(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__iocp_socket_associate(s, (HANDLE)im->sock) != 0) {
        return -1;
    }
    if (rs__socket_state(s) == RS__SOCKET_CONNECTING) {
        start_connect(s);
    } else if (rs__socket_half_open(s, RS__SOCKET_READ_SHUT) ||
               rs__socket_half_open(s, RS__SOCKET_WRITE_SHUT)) {
        rs__iocp_tcp_post_read(s); /* if it was subscribed before it had its loop */
    }
    return 0;
}

/* ---- accept ---- */

/* Wraps the socket AcceptEx filled into an accepted rs_socket (NULL: the
 * connection is dropped, the reason logged). */
static rs_socket *wrap_accepted(rs_socket *listener, struct rs__iocp_sock_op *op)
{
    struct rs__iocp_socket *lim = listener->impl;
    SOCKET sock = op->accepted;
    op->accepted = INVALID_SOCKET;
    /* Until SO_UPDATE_ACCEPT_CONTEXT names the listener, the accepted socket
     * has no context for getsockname, getpeername, getsockopt, setsockopt or
     * shutdown (AcceptEx's documentation): it comes before any other call. */
    if (setsockopt(sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&lim->sock,
                   (int)sizeof lim->sock) != 0) {
        RS__LOG(RS_LOG_WARN, "accepted connection dropped: SO_UPDATE_ACCEPT_CONTEXT failed: %d",
                WSAGetLastError());
        closesocket(sock);
        return NULL;
    }
    /* AcceptEx stores both addresses in an internal format:
     * GetAcceptExSockaddrs, given the lengths AcceptEx was given, is the
     * only documented parser. */
    struct sockaddr *local = NULL;
    struct sockaddr *remote = NULL;
    INT local_len = 0;
    INT remote_len = 0;
    rs__winsock_ext_for(listener->options.domain)
        ->get_accept_ex_sockaddrs(op->buf, 0, RS__IOCP_ACCEPT_ADDR_LEN, RS__IOCP_ACCEPT_ADDR_LEN,
                                  &local, &local_len, &remote, &remote_len);
    /* The options first: a refusal then needs no socket taken apart. */
    if (rs__os_socket_apply_options(sock, &listener->options) != 0) {
        RS__LOG(RS_LOG_WARN, "accepted connection dropped: %s", rs__error_name(rs__last_error()));
        closesocket(sock);
        return NULL;
    }
    struct rs__iocp_socket *im = rs__iocp_socket_impl_new(RS__IOCP_TCP);
    if (!im) {
        closesocket(sock);
        return NULL;
    }
    im->sock = sock;
    rs_socket *a = rs__iocp_socket_new_accepted(listener, im);
    if (!a) {
        return NULL;
    }
    rs__socket_set_local(a, local, (size_t)local_len);
    rs__socket_set_remote(a, remote, (size_t)remote_len);
    return a;
}

static void post_accepts(rs_socket *s);

static void accept_done(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes)
{
    (void)bytes;
    struct rs__iocp_socket *im = s->impl;
    im->accepts_posted--;
    if (error) {
        rs__iocp_sock_op_free(op);
        /* W18: an AcceptEx fails for one connection when its client reset
         * or gave up before the accept completed: Windows reports
         * ERROR_NETNAME_DELETED, WSAECONNRESET or WSAECONNABORTED, Wine
         * WSAENOTCONN. That connection is skipped (common/ says so) and
         * the accept posted again; only the listener's own failure (or its
         * close, which cancels the accepts) ends accepting. */
        if (rs__iocp_accepting(s) && rs__iocp_accept_failed(s, error)) {
            post_accepts(s);
        }
        return;
    }
    rs_socket *a = wrap_accepted(s, op);
    rs__iocp_sock_op_free(op);
    if (a) {
        rs__iocp_deliver_accepted(s, a);
    }
    post_accepts(s);
}

static int post_accept(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    struct rs__iocp_sock_op *op = rs__iocp_sock_op_new(2 * (size_t)RS__IOCP_ACCEPT_ADDR_LEN);
    if (!op) {
        return -1;
    }
    int injected = RS__TEST_HOOK(rs__iocp_fault_take(RS__IOCP_FAULT_ACCEPT, im->sock, NULL));
    if (injected) {
        rs__iocp_raise_wsa(injected); /* as the WSASocket below would */
    } else {
        op->accepted = rs__iocp_socket_open(s->options.domain, RS_SOCKET_STREAM);
    }
    if (op->accepted == INVALID_SOCKET) {
        rs__iocp_sock_op_free(op);
        return -1;
    }
    rs__socket_accept_shortage_over(s);
    rs__iocp_sock_op_start(s, op, accept_done);
    im->accepts_posted++;
    injected = RS__TEST_HOOK(rs__iocp_fault_take(RS__IOCP_FAULT_ACCEPT_EX, im->sock, NULL));
    if (injected) {
        rs__iocp_sock_op_complete(op, rs__iocp_error_from_win32((DWORD)injected));
        return 0;
    }
    DWORD received = 0;
    if (rs__winsock_ext_for(s->options.domain)
            ->accept_ex(im->sock, op->accepted, op->buf, 0, RS__IOCP_ACCEPT_ADDR_LEN,
                        RS__IOCP_ACCEPT_ADDR_LEN, &received, &op->base.overlapped)) {
        rs__iocp_sock_op_succeeded(op);
    } else {
        int err = WSAGetLastError();
        if (err != ERROR_IO_PENDING) {
            rs__iocp_sock_op_complete(op, rs__iocp_error_from_wsa(err));
        }
    }
    return 0;
}

/* Keeps MAX_POSTED_ACCEPTS (at most the backlog) AcceptEx calls posted
 * while accepting; none are added while stopped. */
static void post_accepts(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    int target = im->backlog < MAX_POSTED_ACCEPTS ? im->backlog : MAX_POSTED_ACCEPTS;
    while (rs__iocp_accepting(s) && im->sock != INVALID_SOCKET && im->accepts_posted < target) {
        if (post_accept(s) != 0) {
            int err = rs__last_error();
            bool listener_failed = rs__accept_error_kind(err) == RS__ACCEPT_ERROR_LISTENER;
            if (im->accepts_posted > 0 && listener_failed) {
                return; /* a completion will try again */
            }
            /* Out of socket handles or memory: with nothing posted, the
             * listener tries again after a back-off (retrying at once would
             * spin while the shortage lasts); with accepts posted, their
             * completions try again. Either way the user learns it began,
             * as with accept(2)'s EMFILE. A failure of the listener with
             * nothing posted is the user's to know too, or the listener
             * would wait for nothing. Reported from the accept task (this
             * may run inside rs_socket_start_accept). */
            if (!listener_failed && im->accepts_posted == 0) {
                rs__socket_accept_back_off(s);
            }
            if (!im->accept_error) {
                im->accept_error = err;
            }
            rs__iocp_schedule_accept_task(s);
            return;
        }
    }
}

int rs__iocp_tcp_start_accept(rs_socket *s)
{
    post_accepts(s);
    return 0;
}

/* ---- reads ---- */

/* Keeps the result of a receive: held bytes, the end of the stream or an
 * error. */
static void keep_result(struct rs__iocp_socket *im, struct rs__iocp_sock_op *op, int error,
                        size_t bytes)
{
    if (error) {
        im->read_error = error;
    } else if (im->buffered_loop) {
        if (bytes == 0) {
            /* Zero bytes into a buffer on a stream socket: the peer closed
             * gracefully (WSARecv's documentation). */
            rs__iocp_set(im, RS__IOCP_F_EOF, true);
        } else {
            op->len = bytes;
            op->off = 0;
            rs__iocp_set(im, RS__IOCP_F_READ_READY, true);
        }
    }
}

static void read_done(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes)
{
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_set(im, RS__IOCP_F_READ_IN_FLIGHT, false);
    if (rs__iocp_is(im, RS__IOCP_F_READ_CLAIMED)) {
        /* A read took this result already (take_completed_receive) and
         * reported it; the operation is over, and the next receive is
         * posted if that read drained it. */
        rs__iocp_set(im, RS__IOCP_F_READ_CLAIMED, false);
        rs__iocp_tcp_post_read(s);
        return;
    }
    keep_result(im, op, error, bytes);
    /* A read that drains the socket inside this callback leaves the next
     * receive to be posted here, after the callback: the caller's reply is
     * then sent before the receive is posted, as a hand-written IOCP loop
     * does, and under Wine the reply's completion on the peer is usually
     * queued by the time the loop asks the port (no empty dequeue). */
    rs__iocp_set(im, RS__IOCP_F_IN_READ_CALLBACK, true);
    rs__iocp_set(im, RS__IOCP_F_REPOST, false);
    rs__socket_readable(s);
    rs__iocp_set(im, RS__IOCP_F_IN_READ_CALLBACK, false);
    if (rs__iocp_is(im, RS__IOCP_F_REPOST)) {
        rs__iocp_set(im, RS__IOCP_F_REPOST, false);
        rs__iocp_tcp_post_read(s);
    }
}

/* After a read drained what was reported: the next read is posted now, or
 * right after the completion's callback when inside it. */
static void repost_read(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__iocp_is(im, RS__IOCP_F_IN_READ_CALLBACK)) {
        rs__iocp_set(im, RS__IOCP_F_REPOST, true);
    } else {
        rs__iocp_tcp_post_read(s);
    }
}

void rs__iocp_tcp_post_read(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (!rs__iocp_is(im, RS__IOCP_F_WANT_READ) || !rs__iocp_is(im, RS__IOCP_F_ASSOCIATED) ||
        rs__iocp_any(im, RS__IOCP_F_READ_IN_FLIGHT | RS__IOCP_F_READ_READY | RS__IOCP_F_EOF) ||
        im->read_error || im->sock == INVALID_SOCKET) {
        return;
    }
    rs__iocp_socket_skip_mode(s);
    struct rs__iocp_sock_op *op = rs__iocp_read_start(s, read_done);
    /* Buffered: into the socket's buffer. Zero-byte: completes once data or
     * the end of stream is there, and consumes nothing (never MSG_PEEK,
     * which is only valid on non-overlapped sockets). */
    WSABUF buf = {0, NULL};
    if (im->buffered_loop) {
        buf.len = (ULONG)op->cap;
        buf.buf = (CHAR *)op->buf;
    }
    DWORD flags = 0;
    /* Pending until the system stores the result (take_completed_receive
     * asks for it): set here so that it does not rely on the call doing
     * so. */
    op->base.overlapped.Internal = (ULONG_PTR)STATUS_PENDING;
    if (WSARecv(im->sock, &buf, 1, NULL, &flags, &op->base.overlapped, NULL) == 0) {
        rs__iocp_sock_op_succeeded(op);
    } else {
        int err = WSAGetLastError();
        if (err != WSA_IO_PENDING) {
            rs__iocp_sock_op_complete(op, rs__iocp_error_from_wsa(err));
        }
    }
}

/* Puts the socket in non-blocking mode for the non-overlapped calls (a
 * direct recv, rs_socket_try_write): 0, or the WSA error. */
static int make_nonblocking(struct rs__iocp_socket *im)
{
    if (!rs__iocp_is(im, RS__IOCP_F_NONBLOCKING)) {
        /* Set on the first such call, so that sockets that never make one
         * never pay for it. The socket's overlapped calls are unaffected:
         * on them WSAEWOULDBLOCK only means too many outstanding requests
         * (WSARecv's and WSASend's documentation), they still pend. */
        u_long on = 1;
        if (ioctlsocket(im->sock, FIONBIO, &on) != 0) {
            return WSAGetLastError();
        }
        rs__iocp_set(im, RS__IOCP_F_NONBLOCKING, true);
    }
    return 0;
}

/* One non-blocking recv into the caller's buffer: the bytes (0 at the end
 * of the stream), or -1 with *wsa_error set. */
static int recv_direct(struct rs__iocp_socket *im, void *buffer, size_t len, int *wsa_error)
{
    if ((*wsa_error = make_nonblocking(im)) != 0) {
        return -1;
    }
    int n = recv(im->sock, buffer, len > INT_MAX ? INT_MAX : (int)len, 0);
    if (n < 0) {
        *wsa_error = WSAGetLastError();
    }
    return n;
}

/* Zero-byte mode: the data is still in the socket. */
static int recv_now(rs_socket *s, void *buffer, size_t len, size_t *amount_read)
{
    struct rs__iocp_socket *im = s->impl;
    int err = 0;
    int n = recv_direct(im, buffer, len, &err);
    if (n > 0) {
        *amount_read = (size_t)n;
        if ((size_t)n < len) {
            repost_read(s);
        }
        return 0;
    }
    if (n == 0) {
        rs__iocp_set(im, RS__IOCP_F_EOF, true);
        return rs__raise(RS_ERROR_SOCKET_CLOSED);
    }
    if (err == WSAEWOULDBLOCK) {
        repost_read(s);
    }
    return rs__iocp_raise_wsa(err);
}

/*
 * Buffered mode, after handing out a receive that filled the socket's
 * buffer: more is probably waiting (a bulk transfer through a small
 * buffer), so the rest of the caller's buffer is filled by a direct recv
 * instead of one posted receive per buffer. If that fills it, the reader
 * reads again; otherwise the next receive is posted, and it also reports
 * an end of stream or an error the direct recv met, after the bytes
 * already handed out (docs/readable-events.md, rule 4).
 */
static void read_on_directly(rs_socket *s, unsigned char *rest, size_t len, size_t *amount_read)
{
    int err = 0;
    int n = recv_direct(s->impl, rest, len, &err);
    if (n > 0) {
        *amount_read += (size_t)n;
        if ((size_t)n == len) {
            return;
        }
    }
    repost_read(s);
}

/*
 * Buffered mode, nothing held: RS_ERROR_WOULD_BLOCK must mean that nothing
 * is there now (HO4), not that nothing was there when the last receive
 * completed. With no receive in flight (the last one's bytes were all read,
 * its repost left for after the readable callback, or data that arrived
 * while bytes were held), one is posted now: it asks the system. A receive
 * in flight whose result is already stored (it completed at once, or its
 * completion is queued but not dequeued yet: WSAGetOverlappedResult, not
 * waiting, finds the operation complete) is taken now; the dispatch of its completion later only
 * ends the operation (read_done). The data is then handed out in the order it arrived, and nothing
 * waits unseen behind a WOULD_BLOCK.
 */
static void take_completed_receive(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (!rs__iocp_is(im, RS__IOCP_F_READ_IN_FLIGHT)) {
        rs__iocp_set(im, RS__IOCP_F_REPOST, false);
        rs__iocp_tcp_post_read(s);
    }
    if (!rs__iocp_is(im, RS__IOCP_F_READ_IN_FLIGHT) || rs__iocp_is(im, RS__IOCP_F_READ_CLAIMED)) {
        return;
    }
    struct rs__iocp_sock_op *op = im->read_op;
    int error;
    size_t bytes;
    if (op->posted) {
        error = op->posted_error; /* failed at once */
        bytes = 0;
    } else {
        /* WSAGetOverlappedResult without waiting: the documented reader of
         * an OVERLAPPED the system may still be writing (the byte count is
         * valid once the status is no longer STATUS_PENDING, not before). */
        DWORD got = 0;
        DWORD flags = 0;
        if (!WSAGetOverlappedResult(im->sock, &op->base.overlapped, &got, FALSE, &flags) &&
            WSAGetLastError() == WSA_IO_INCOMPLETE) {
            return;
        }
        error = rs__iocp_error_from_ntstatus((uint32_t)op->base.overlapped.Internal);
        bytes = got;
    }
    rs__iocp_set(im, RS__IOCP_F_READ_CLAIMED, true);
    keep_result(im, op, error, bytes);
}

int rs__iocp_tcp_read(rs_socket *s, void *buffer, size_t len, size_t *amount_read)
{
    struct rs__iocp_socket *im = s->impl;
    /* A read without a subscription wants data too. */
    rs__iocp_set(im, RS__IOCP_F_WANT_READ, true);
    if (im->buffered_loop && !rs__iocp_any(im, RS__IOCP_F_READ_READY | RS__IOCP_F_EOF) &&
        !im->read_error) {
        take_completed_receive(s);
    }
    if (rs__iocp_is(im, RS__IOCP_F_READ_READY)) {
        /* Bytes received before an error or the end of the stream come
         * first (docs/readable-events.md, rule 4). */
        bool filled = im->read_op->len == im->read_op->cap;
        if (rs__iocp_take_held(im, buffer, len, amount_read)) {
            if (filled && *amount_read < len) {
                read_on_directly(s, (unsigned char *)buffer + *amount_read, len - *amount_read,
                                 amount_read);
            } else {
                repost_read(s);
            }
        }
        return 0;
    }
    if (im->read_error) {
        return rs__raise(im->read_error);
    }
    if (rs__iocp_is(im, RS__IOCP_F_EOF)) {
        return rs__raise(RS_ERROR_SOCKET_CLOSED);
    }
    if (!im->buffered_loop && im->sock != INVALID_SOCKET && im->read_op) {
        return recv_now(s, buffer, len, amount_read);
    }
    return rs__raise(RS_ERROR_WOULD_BLOCK);
}

/* ---- writes ---- */

/* Held sends: WSASend refused them with WSAEWOULDBLOCK, which on an
 * overlapped socket means "too many outstanding overlapped I/O requests"
 * (WSASend's documentation): a shortage, not a verdict on the write. They
 * go out again, oldest first and before any later write, when one of the
 * socket's sends completes, or after a backoff when none is in flight. */
#define SEND_RETRY_FIRST_NS 1000000ull
#define SEND_RETRY_MAX_NS 64000000ull

static bool send_in_flight(const struct rs__iocp_socket *im)
{
    for (const struct rs__iocp_sock_op *op = im->ops_head; op; op = op->next) {
        if (op->req) {
            return true;
        }
    }
    return false;
}

static void arm_send_retry(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__iocp_is(im, RS__IOCP_F_RETRY_ARMED) || send_in_flight(im)) {
        return;
    }
    im->send_backoff_ns = im->send_backoff_ns ? im->send_backoff_ns * 2 : SEND_RETRY_FIRST_NS;
    if (im->send_backoff_ns > SEND_RETRY_MAX_NS) {
        im->send_backoff_ns = SEND_RETRY_MAX_NS;
    }
    rs__iocp_arm_retry(s, im->send_backoff_ns);
}

/* WSASend of a part of a vectored write, its buffers gathered into a
 * WSABUF array on the stack (WSASend captures the array before it returns,
 * its documentation says). Out of line: the array is too big for the frame
 * of every send. Returns WSASend's result. */
__attribute__((noinline)) static int send_vec(SOCKET sock, struct rs__iocp_sock_op *op)
{
    const struct rs__socket_write *req = op->req;
    WSABUF bufs[RS__IOCP_SEND_BUFS];
    DWORD count = 0;
    size_t off = op->buf_off;
    for (size_t left = op->chunk_len, i = op->buf_index; left > 0; i++) {
        size_t len = req->bufs[i].len - off;
        if (len > left) {
            len = left;
        }
        bufs[count].buf = (CHAR *)req->bufs[i].base + off;
        bufs[count].len = (ULONG)len;
        count++;
        left -= len;
        off = 0;
    }
    return WSASend(sock, bufs, count, NULL, 0, &op->base.overlapped, NULL);
}

/* Issues op's WSASend; returns its result. */
static int start_send(SOCKET sock, struct rs__iocp_sock_op *op)
{
    const struct rs__socket_write *req = op->req;
    if (req->bufs) {
        return send_vec(sock, op);
    }
    WSABUF buf = {(ULONG)op->chunk_len, (CHAR *)req->data + op->chunk_off};
    /* A write_to (an unconnected UDP socket) names its destination, which
     * the request keeps until the completion. */
    if (req->to_len) {
        return WSASendTo(sock, &buf, 1, NULL, 0, (const struct sockaddr *)req->to.u.bytes,
                         (int)req->to_len, &op->base.overlapped, NULL);
    }
    return WSASend(sock, &buf, 1, NULL, 0, &op->base.overlapped, NULL);
}

/* Posts op's send; false if WSASend held it back (op is then the oldest
 * held send). */
static bool post_send(rs_socket *s, struct rs__iocp_sock_op *op)
{
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_sock_op_start(s, op, rs__iocp_write_completed);
    /* Each write (each part of a long one) is its own overlapped send; the
     * stack keeps posted sends in order and holds the caller's buffer until
     * the completion. */
    int err = RS__TEST_HOOK(rs__iocp_fault_take(RS__IOCP_FAULT_SEND, im->sock, NULL));
    if (!err && start_send(im->sock, op) == 0) {
        rs__iocp_sock_op_succeeded(op);
        return true;
    }
    if (!err) {
        err = WSAGetLastError();
    }
    if (err == WSAEWOULDBLOCK) {
        rs__iocp_sock_op_unlink(im, op);
        op->next = im->held_head;
        im->held_head = op;
        if (!im->held_tail) {
            im->held_tail = op;
        }
        arm_send_retry(s);
        return false;
    }
    if (err != WSA_IO_PENDING) {
        rs__iocp_sock_op_complete(op, rs__iocp_error_from_wsa(err));
    }
    return true;
}

void rs__iocp_send_retry(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    while (im->held_head && im->sock != INVALID_SOCKET) {
        struct rs__iocp_sock_op *op = im->held_head;
        im->held_head = op->next;
        if (!im->held_head) {
            im->held_tail = NULL;
        }
        op->next = NULL;
        if (!post_send(s, op)) {
            return;
        }
    }
    im->send_backoff_ns = 0;
}

void rs__iocp_fail_held_sends(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    while (im->held_head) {
        struct rs__iocp_sock_op *op = im->held_head;
        im->held_head = op->next;
        op->next = NULL;
        /* Never posted: nothing of the system's refers to it. The queue of
         * writes reports it after the writes issued before it, whenever
         * their cancelled completions are dequeued. */
        rs__iocp_write_finished(im, op, RS_ERROR_SOCKET_CLOSED, 0);
    }
    im->held_tail = NULL;
}

void rs__iocp_write_completed(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes)
{
    /* An overlapped send on a stream completes only once every byte is
     * taken, unless it fails (WSASend's documentation): Windows reports a
     * send cut short by a reset as WSAECONNRESET. Wine 8 can complete it
     * with success and the bytes it took, SO_ERROR 0, on a connection being
     * closed or reset by the peer (docs/windows.md); the stream is broken
     * either way, and reported as the reset it is. */
    if (error == 0 && bytes != op->chunk_len && s->options.type == RS_SOCKET_STREAM) {
        error = RS_ERROR_CONNECTION_RESET;
    }
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_write_finished(im, op, error, bytes);
    if (im->held_head) {
        rs__iocp_send_retry(s); /* a send completed: the shortage may be over */
    }
}

int rs__iocp_wsa_write(rs_socket *s, struct rs__socket_write *req)
{
    struct rs__iocp_socket *im = s->impl;
    if (!rs__iocp_is(im, RS__IOCP_F_ASSOCIATED)) {
        return rs__raise(RS_ERROR_INVALID_STATE);
    }
    struct rs__iocp_sock_op *first = rs__iocp_write_ops_new(s, req, RS__IOCP_SEND_BUFS);
    if (!first) {
        return -1;
    }
    rs__iocp_socket_skip_mode(s);
    for (struct rs__iocp_sock_op *op = first; op; op = op->next_write) {
        if (im->held_head) {
            im->held_tail->next = op; /* behind the held ones, in order */
            im->held_tail = op;
        } else {
            post_send(s, op);
        }
    }
    return 0;
}

/*
 * rs_socket_try_write, as libuv's uv_try_write on Windows: a WSASend
 * without an OVERLAPPED and without a completion routine, which WSASend's
 * documentation says treats the socket as a non-overlapped one, on the
 * socket in non-blocking mode (FIONBIO): it takes what fits in the send
 * buffer now (on a stream between 1 byte and all of it, a datagram whole)
 * or fails with WSAEWOULDBLOCK, and it queues no completion packet (only
 * overlapped operations do). common/ calls it only while no overlapped
 * send of the socket is queued or held, so its bytes cannot overtake an
 * earlier write's.
 */
int rs__iocp_wsa_try_write(rs_socket *s, const void *data, size_t len, size_t *written)
{
    struct rs__iocp_socket *im = s->impl;
    if (im->sock == INVALID_SOCKET || !rs__iocp_is(im, RS__IOCP_F_ASSOCIATED)) {
        return rs__raise(RS_ERROR_INVALID_STATE);
    }
    int err = make_nonblocking(im);
    if (err != 0) {
        return rs__iocp_raise_wsa(err);
    }
    WSABUF buf = {len > ULONG_MAX ? ULONG_MAX : (ULONG)len, (CHAR *)data};
    DWORD sent = 0;
    if (WSASend(im->sock, &buf, 1, &sent, 0, NULL, NULL) != 0) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    *written = sent;
    return 0;
}
