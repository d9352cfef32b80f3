/*
 * IOCP backend: adopting a SOCKET the application made (rs_socket_adopt).
 * Every check reads the handle only. The first change is the association
 * with the loop's completion port, which is also the one step a handle can
 * refuse for a reason of its own (a file object has one completion port for
 * its life, docs/windows.md): a refused handle is left as it was.
 */
#include "iocp_socket.h"

#include "../../common/error.h"

#include <string.h>

/* The accepts kept posted on an adopted listener (its own backlog being
 * unknown): SOMAXCONN would also be capped by the posted-accept limit of
 * iocp_socket_tcp.c. */
#define RS__IOCP_ADOPTED_BACKLOG SOMAXCONN

/* Whether sock is in the state kind names; reads its addresses. */
static int check_state(SOCKET sock, rs_socket_adopt_kind kind, SOCKADDR_STORAGE *local,
                       int *local_len, SOCKADDR_STORAGE *peer, int *peer_len)
{
    *local_len = (int)sizeof *local;
    /* getsockname fails with WSAEINVAL on a socket that is not bound. */
    bool bound = getsockname(sock, (struct sockaddr *)local, local_len) == 0;
    if (!bound && WSAGetLastError() != WSAEINVAL) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    *peer_len = (int)sizeof *peer;
    bool connected = getpeername(sock, (struct sockaddr *)peer, peer_len) == 0;
    if (!connected && WSAGetLastError() != WSAENOTCONN) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    switch (kind) {
    case RS_SOCKET_ADOPT_CONNECTED:
        return connected && bound ? 0 : rs__raise(RS_ERROR_NOT_CONNECTED);
    case RS_SOCKET_ADOPT_LISTENING: {
        BOOL listening = FALSE;
        int len = (int)sizeof listening;
        if (getsockopt(sock, SOL_SOCKET, SO_ACCEPTCONN, (char *)&listening, &len) != 0) {
            return rs__iocp_raise_wsa(WSAGetLastError());
        }
        return listening ? 0 : rs__raise(RS_ERROR_INVALID_STATE);
    }
    case RS_SOCKET_ADOPT_BOUND:
        return bound && !connected ? 0 : rs__raise(RS_ERROR_INVALID_STATE);
    }
    return rs__raise(RS_ERROR_INVALID_ARGUMENT);
}

int rs__backend_socket_adopt(rs_socket *s, rs_os_socket handle, rs_socket_adopt_kind kind,
                             bool *dual_stack)
{
    /* reseau's LOCAL sockets are named pipes on Windows, not sockets. */
    if (s->options.domain == RS_SOCKET_LOCAL) {
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    SOCKET sock = (SOCKET)handle;
    SOCKADDR_STORAGE local, peer;
    memset(&local, 0, sizeof local);
    memset(&peer, 0, sizeof peer);
    int local_len = 0, peer_len = 0;
    if (rs__os_socket_check_open(handle) != 0 ||
        rs__os_socket_check_kind(handle, &s->options) != 0 ||
        check_state(sock, kind, &local, &local_len, &peer, &peer_len) != 0) {
        return -1;
    }
    if (s->options.domain == RS_SOCKET_IPV6) {
        DWORD v6only = 0;
        int len = (int)sizeof v6only;
        if (getsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, (char *)&v6only, &len) != 0) {
            return rs__iocp_raise_wsa(WSAGetLastError());
        }
        *dual_stack = v6only == 0;
    }
    bool udp = s->options.type == RS_SOCKET_DGRAM;
    struct rs__iocp_socket *im = rs__iocp_socket_impl_new(udp ? RS__IOCP_UDP : RS__IOCP_TCP);
    if (!im) {
        return -1;
    }
    im->sock = sock;
    rs__iocp_set(im, RS__IOCP_F_BOUND, true);
    /* The backlog the application listened with cannot be read back; it
     * only bounds the accepts kept posted, which are at most
     * RS__IOCP_ADOPTED_BACKLOG for an adopted listener. */
    im->backlog = RS__IOCP_ADOPTED_BACKLOG;
    s->impl = im;
    rs__iocp_socket_init_tasks(s);
    /* Associates first: the one change a handle can refuse. */
    if (rs__backend_socket_attach(s) != 0) {
        im->sock = INVALID_SOCKET; /* the caller's again: not closed */
        rs__backend_socket_clean_up(s);
        return -1;
    }
    if (udp) {
        /* As rs_socket_new's sockets: an ICMP port unreachable fails the
         * receives of a connected socket only (POSIX's rule). */
        rs__os_socket_udp_report_unreachable(sock, kind == RS_SOCKET_ADOPT_CONNECTED);
        rs__os_socket_udp_ignore_net_reset(sock);
    }
    rs__socket_set_local(s, (const struct sockaddr *)&local, (size_t)local_len);
    if (kind == RS_SOCKET_ADOPT_CONNECTED) {
        memcpy(&im->remote, &peer, sizeof peer);
        im->remote_len = peer_len;
        rs__socket_set_remote(s, (const struct sockaddr *)&peer, (size_t)peer_len);
    }
    return 0;
}
