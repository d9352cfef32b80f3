/*
 * IOCP backend, UDP: connect, and readability without MSG_PEEK (W4).
 *
 * MSG_PEEK is valid only on non-overlapped sockets (WSARecv's
 * documentation), so readiness cannot peek. Instead one overlapped
 * WSARecvFrom is kept posted into a 64 KiB buffer the socket owns: its
 * completion is "readable", rs_socket_read hands that datagram out
 * (truncated to the caller's buffer, the rest discarded, as on POSIX) and
 * posts the next receive. Datagrams that arrive meanwhile wait in the
 * socket's receive buffer, in order. The receive records each datagram's
 * sender (rs_socket_read_from). Writes are the overlapped sends of
 * iocp_socket_tcp.c (WSASendTo for rs_socket_write_to).
 */
#include "iocp_socket.h"

#include "../../common/address.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <string.h>

int rs__iocp_udp_connect(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    /* A datagram connect is immediate: it sets the default peer (and binds
     * an unbound socket, which then has its source address). */
    if (connect(im->sock, (const struct sockaddr *)&im->remote, im->remote_len) != 0) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    rs__os_socket_udp_report_unreachable(im->sock, true);
    return rs__iocp_set_local_from_socket(s, im->sock);
}

static void received(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes)
{
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_set(im, RS__IOCP_F_READ_IN_FLIGHT, false);
    rs__iocp_set(im, RS__IOCP_F_READ_READY, true);
    /* The buffer holds the largest datagram UDP carries, so an overflow
     * cannot happen; if it did, what arrived is what the caller gets. */
    if (error == RS_ERROR_MESSAGE_TOO_LARGE) {
        error = 0;
    }
    op->len = bytes;
    op->error = rs__iocp_error_for_datagram(error);
    rs__socket_readable(s);
}

static void post_receive(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (!rs__iocp_is(im, RS__IOCP_F_ASSOCIATED) ||
        rs__iocp_any(im, RS__IOCP_F_READ_IN_FLIGHT | RS__IOCP_F_READ_READY) ||
        im->sock == INVALID_SOCKET) {
        return;
    }
    struct rs__iocp_sock_op *op = rs__iocp_read_start(s, received);
    WSABUF buf = {(ULONG)RS__IOCP_READ_BUF, (CHAR *)op->buf};
    DWORD flags = 0;
    /* The sender is recorded with every datagram, for rs_socket_read_from:
     * the system fills lpFrom and lpFromlen when the receive completes
     * (WSARecvFrom's documentation), so they stay in the operation. */
    struct rs__iocp_udp_from *from = (struct rs__iocp_udp_from *)(op->buf + RS__IOCP_READ_BUF);
    from->len = (INT)sizeof from->addr;
    if (WSARecvFrom(im->sock, &buf, 1, NULL, &flags, (struct sockaddr *)&from->addr, &from->len,
                    &op->base.overlapped, NULL) == 0) {
        rs__iocp_sock_op_succeeded(op);
    } else {
        int err = WSAGetLastError();
        if (err != WSA_IO_PENDING) {
            rs__iocp_sock_op_complete(op, rs__iocp_error_from_wsa(err));
        }
    }
}

int rs__iocp_udp_attach(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__iocp_socket_associate(s, (HANDLE)im->sock) != 0) {
        return -1;
    }
    post_receive(s);
    return 0;
}

/* Hands out the datagram the receive holds (and its sender, if from is not
 * NULL), then posts the next receive. */
static int take_datagram(rs_socket *s, void *buffer, size_t len, size_t *amount_read,
                         rs_socket_endpoint *from)
{
    struct rs__iocp_socket *im = s->impl;
    if (!rs__iocp_is(im, RS__IOCP_F_READ_READY)) {
        post_receive(s);
        return rs__raise(RS_ERROR_WOULD_BLOCK);
    }
    struct rs__iocp_sock_op *op = im->read_op;
    rs__iocp_set(im, RS__IOCP_F_READ_READY, false);
    int error = op->error;
    if (error == 0) {
        size_t n = op->len < len ? op->len : len;
        memcpy(buffer, op->buf, n);
        *amount_read = n;
        if (from) {
            const struct rs__iocp_udp_from *sender =
                (const struct rs__iocp_udp_from *)(op->buf + RS__IOCP_READ_BUF);
            rs__endpoint_from_sockaddr((const struct sockaddr *)&sender->addr, (size_t)sender->len,
                                       from);
        }
    }
    post_receive(s);
    return error ? rs__raise(error) : 0;
}

int rs__iocp_udp_read(rs_socket *s, void *buffer, size_t len, size_t *amount_read)
{
    return take_datagram(s, buffer, len, amount_read, NULL);
}

int rs__backend_socket_read_from(rs_socket *s, void *buffer, size_t len, size_t *amount_read,
                                 rs_socket_endpoint *from)
{
    /* common/ lets only datagram sockets through. */
    return take_datagram(s, buffer, len, amount_read, from);
}
