/*
 * libevent backend: adopting a descriptor the application made
 * (rs_socket_adopt). Every check reads the descriptor only; it is changed
 * (non-blocking, close-on-exec) once it is registered with the loop, the
 * last step that can fail, so that a refused descriptor is left as it was.
 * On Windows the descriptor is a Winsock SOCKET (le_compat.h).
 */
#include "le_socket.h"

#include "../../common/alloc.h"
#include "../../common/error.h"

#include <errno.h>
#include <string.h>

static int get_int(int fd, int level, int name, int *value)
{
    socklen_t len = sizeof *value;
    *value = 0;
    if (getsockopt(fd, level, name, value, &len) != 0) {
        return rs__le_raise_errno(errno);
    }
    return 0;
}

/* Whether handle is an open socket of the socket's type and domain (what
 * both backends check the same way: common/os_socket.c); reads its local
 * address. */
static int check_kind(rs_socket *s, rs_os_socket handle, struct sockaddr_storage *local,
                      socklen_t *local_len)
{
    if (rs__os_socket_check_open(handle) != 0 ||
        rs__os_socket_check_kind(handle, &s->options) != 0) {
        return -1;
    }
    *local_len = sizeof *local;
    memset(local, 0, sizeof *local);
    if (getsockname((int)handle, (struct sockaddr *)local, local_len) != 0) {
#ifdef _WIN32
        /* Winsock's getsockname fails with WSAEINVAL on a socket that is not
         * bound (POSIX reports the wildcard address, port 0): the same
         * unbound state for check_state. */
        if (errno == EINVAL) {
            *local_len = 0;
            return 0;
        }
#endif
        return rs__le_raise_errno(errno);
    }
    return 0;
}

/* Whether fd is in the state kind names; reads the peer's address. */
static int check_state(int fd, rs_socket_adopt_kind kind, const struct sockaddr_storage *local,
                       struct sockaddr_storage *peer, socklen_t *peer_len)
{
    *peer_len = sizeof *peer;
    bool connected = getpeername(fd, (struct sockaddr *)peer, peer_len) == 0;
    if (!connected && errno != ENOTCONN) {
        return rs__le_raise_errno(errno);
    }
    switch (kind) {
    case RS_SOCKET_ADOPT_CONNECTED:
        return connected ? 0 : rs__raise(RS_ERROR_NOT_CONNECTED);
    case RS_SOCKET_ADOPT_LISTENING: {
        int listening = 0;
        if (get_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening) != 0) {
            return -1;
        }
        return listening ? 0 : rs__raise(RS_ERROR_INVALID_STATE);
    }
    case RS_SOCKET_ADOPT_BOUND: {
        /* An unbound UDP socket reads as the wildcard address, port 0. */
        uint16_t port = local->ss_family == 0 ? 0
                        : local->ss_family == AF_INET
                            ? ((const struct sockaddr_in *)local)->sin_port
                            : ((const struct sockaddr_in6 *)local)->sin6_port;
        return !connected && port != 0 ? 0 : rs__raise(RS_ERROR_INVALID_STATE);
    }
    }
    return rs__raise(RS_ERROR_INVALID_ARGUMENT);
}

int rs__backend_socket_adopt(rs_socket *s, rs_os_socket handle, rs_socket_adopt_kind kind,
                             bool *dual_stack)
{
    int fd = (int)handle;
    struct sockaddr_storage local, peer;
    socklen_t local_len = 0, peer_len = 0;
    if (check_kind(s, handle, &local, &local_len) != 0 ||
        check_state(fd, kind, &local, &peer, &peer_len) != 0) {
        return -1;
    }
    if (s->options.domain == RS_SOCKET_IPV6) {
        int v6only = 0;
        if (get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only) != 0) {
            return -1;
        }
        *dual_stack = v6only == 0;
    }
#ifndef _WIN32
    int fdflags = fcntl(fd, F_GETFD);
    int flflags = fcntl(fd, F_GETFL);
    if (fdflags < 0 || flflags < 0) {
        return rs__le_raise_errno(errno);
    }
#endif
    struct le_socket *le = rs__socket_impl_room(s);
    le->fd = fd;
    le->writable = true;
    s->impl = le;
    if (rs__backend_socket_attach(s) != 0) {
        goto fail;
    }
    if (rs__le_prepare_fd(fd, false) != 0) {
        if (le->event) {
            event_del(le->event);
        }
#ifndef _WIN32
        /* Put back what the failed step may have set. */
        fcntl(fd, F_SETFD, fdflags);
        fcntl(fd, F_SETFL, flflags);
#endif
        /* On Windows the step is ioctlsocket(FIONBIO) and then the handle's
         * inheritance: a failed FIONBIO changed nothing, and Winsock has no
         * call that reads the blocking mode back. */
        goto fail;
    }
#ifdef _WIN32
    if (s->options.type == RS_SOCKET_DGRAM) {
        /* As the backend's own datagram sockets on Windows: an ICMP port
         * unreachable fails the receives of a connected socket only. */
        rs__os_socket_udp_report_unreachable(handle, kind == RS_SOCKET_ADOPT_CONNECTED);
        rs__os_socket_udp_ignore_net_reset(handle);
    }
#endif
    rs__socket_set_local(s, (const struct sockaddr *)&local, (size_t)local_len);
    if (kind == RS_SOCKET_ADOPT_CONNECTED) {
        rs__socket_set_remote(s, (const struct sockaddr *)&peer, (size_t)peer_len);
    }
    return 0;
fail:
    le->fd = -1; /* the caller's again: not closed */
    rs__backend_socket_clean_up(s);
    return -1;
}
