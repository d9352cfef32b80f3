/*
 * libevent backend, sockets: creation, options, addresses, bind, listen,
 * connect and close. The I/O paths (readiness, accept, read, write) are in
 * le_socket_io.c.
 *
 * Every descriptor is created close-on-exec and non-blocking, and never
 * raises SIGPIPE (MSG_NOSIGNAL on send, SO_NOSIGPIPE where that is the
 * mechanism).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC */
#endif
#include "le_socket.h"

#include "../../common/address.h"
#include "../../common/alloc.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <errno.h>
#include <string.h>

#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
#define HAVE_SOCK_CLOEXEC 1
#else
#define HAVE_SOCK_CLOEXEC 0
#endif

/* ---- addresses ---- */

int rs__le_set_local_from_fd(rs_socket *socket, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return rs__le_raise_errno(errno);
    }
    rs__socket_set_local(socket, (const struct sockaddr *)&ss, (size_t)len);
    return 0;
}

/* ---- descriptors and options ---- */

int rs__le_prepare_fd(int fd, bool flags_done)
{
    if (!flags_done && rs__le_fd_cloexec_nonblock(fd) != 0) {
        return -1;
    }
#ifdef SO_NOSIGPIPE
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) {
        return rs__le_raise_errno(errno);
    }
#endif
    return 0;
}

#ifndef _WIN32
/* On Windows the options are those the IOCP backend applies too
 * (common/os_socket.c, through le_win32.c). */
static int bind_to_interface(int fd, const rs_socket_options *o)
{
    const char *name = o->network_interface_name;
#if defined(__linux__)
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name)) != 0) {
        RS__LOG(RS_LOG_ERROR, "SO_BINDTODEVICE %s refused: %s", name, strerror(errno));
        return rs__raise(RS_ERROR_SOCKET_OPTION);
    }
    return 0;
#elif defined(__APPLE__)
    unsigned index = if_nametoindex(name);
    if (index == 0) {
        return rs__raise(RS_ERROR_INVALID_OPTIONS);
    }
    if (o->domain == RS_SOCKET_IPV6) {
        return rs__os_socket_set_int(fd, IPPROTO_IPV6, IPV6_BOUND_IF, (int)index, "IPV6_BOUND_IF");
    }
    return rs__os_socket_set_int(fd, IPPROTO_IP, IP_BOUND_IF, (int)index, "IP_BOUND_IF");
#else
    (void)fd;
    (void)name;
    (void)o;
    return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
#endif
}

int rs__le_apply_options(int fd, const rs_socket_options *o)
{
    if (RS__TEST_HOOK(rs__socket_take_option_fault())) {
        return rs__raise(RS_ERROR_SOCKET_OPTION);
    }
    bool tcp = o->type == RS_SOCKET_STREAM && o->domain != RS_SOCKET_LOCAL;
    if (tcp && o->keepalive) {
        if (rs__os_socket_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE") != 0) {
            return -1;
        }
#if defined(TCP_KEEPIDLE)
        if (o->keep_alive_idle_s &&
            rs__os_socket_set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, o->keep_alive_idle_s,
                                  "TCP_KEEPIDLE") != 0) {
            return -1;
        }
#elif defined(TCP_KEEPALIVE)
        if (o->keep_alive_idle_s &&
            rs__os_socket_set_int(fd, IPPROTO_TCP, TCP_KEEPALIVE, o->keep_alive_idle_s,
                                  "TCP_KEEPALIVE") != 0) {
            return -1;
        }
#endif
        if (o->keep_alive_interval_s &&
            rs__os_socket_set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, o->keep_alive_interval_s,
                                  "TCP_KEEPINTVL") != 0) {
            return -1;
        }
        if (o->keep_alive_probes &&
            rs__os_socket_set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, o->keep_alive_probes,
                                  "TCP_KEEPCNT") != 0) {
            return -1;
        }
    }
    if (tcp && o->tcp_nodelay != RS_SOCKET_OPTION_DEFAULT &&
        rs__os_socket_set_int(fd, IPPROTO_TCP, TCP_NODELAY, o->tcp_nodelay == RS_SOCKET_OPTION_ON,
                              "TCP_NODELAY") != 0) {
        return -1;
    }
    if (o->network_interface_name[0] && o->domain != RS_SOCKET_LOCAL &&
        bind_to_interface(fd, o) != 0) {
        return -1;
    }
    return 0;
}
#endif

/* ---- life cycle ---- */

static int family_of(rs_socket_domain domain)
{
    return domain == RS_SOCKET_IPV4 ? AF_INET : domain == RS_SOCKET_IPV6 ? AF_INET6 : AF_UNIX;
}

size_t rs__backend_socket_impl_size(void)
{
    return sizeof(struct le_socket) + RS_LE_SOCKET_EVENTS * rs__le_event_room();
}

int rs__backend_socket_init(rs_socket *s)
{
    struct le_socket *le = rs__socket_impl_room(s);
    int type = s->options.type == RS_SOCKET_STREAM ? SOCK_STREAM : SOCK_DGRAM;
    int family = family_of(s->options.domain);
#if HAVE_SOCK_CLOEXEC
    le->fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
#else
    le->fd = socket(family, type, 0);
#endif
    if (le->fd < 0) {
        return rs__le_raise_errno(errno);
    }
    /* IPV6_V6ONLY defaults off on Linux and on on Windows (and may be a
     * sysctl elsewhere): always set, so that the option means the same on
     * every system. */
    if (rs__le_prepare_fd(le->fd, HAVE_SOCK_CLOEXEC || RS_LE_SOCKETS_COME_READY) != 0 ||
        (s->options.domain == RS_SOCKET_IPV6 &&
         rs__os_socket_set_v6only(le->fd, &s->options) != 0)) {
        close(le->fd);
        return -1;
    }
    le->writable = true;
    s->impl = le;
    return 0;
}

void rs__backend_socket_clean_up(rs_socket *socket)
{
    struct le_socket *le = socket->impl;
    if (le && le->fd >= 0) {
        close(le->fd);
    }
    /* The record is the socket's room (rs__backend_socket_impl_size): it
     * goes with the socket. */
    socket->impl = NULL;
}

int rs__backend_socket_bind(rs_socket *socket, const rs_socket_endpoint *local)
{
    struct le_socket *le = socket->impl;
    const rs_socket_options *o = &socket->options;
    struct sockaddr_storage ss;
    size_t len = 0;
    if (rs__sockaddr_from_endpoint(o->domain, local, &ss, &len) != 0 ||
        rs__le_apply_options(le->fd, o) != 0) {
        return -1;
    }
    /* A restarted server must rebind despite connections in TIME_WAIT. Not
     * for UDP, where SO_REUSEADDR would let two sockets share a port; not on
     * Windows, where it would let another socket take the port while this
     * one listens and a listener rebinds despite TIME_WAIT without it (the
     * IOCP backend's rs__backend_socket_bind). */
    if (RS_LE_REUSEADDR_ON_BIND && o->reuse == RS_SOCKET_REUSE_DEFAULT &&
        o->type == RS_SOCKET_STREAM && o->domain != RS_SOCKET_LOCAL &&
        rs__os_socket_set_int(le->fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR") != 0) {
        return -1;
    }
    if (bind(le->fd, (struct sockaddr *)&ss, (socklen_t)len) != 0) {
        return rs__le_raise_errno(errno);
    }
    if (o->domain == RS_SOCKET_LOCAL) {
        /* Connecting needs write permission on the socket file: 0600 lets
         * the owner (and root) in and nobody else, as the named pipe's
         * descriptor does on Windows; bind itself leaves the umask's mode.
         * No client can connect in between: the socket does not listen yet. */
        if (chmod(local->address, S_IRUSR | S_IWUSR) != 0) {
            int err = errno;
            unlink(local->address);
            return rs__le_raise_errno(err);
        }
        rs__socket_set_local_path(socket, local->address);
        return 0;
    }
    return rs__le_set_local_from_fd(socket, le->fd);
}

int rs__backend_socket_listen(rs_socket *socket, int backlog)
{
    struct le_socket *le = socket->impl;
    if (listen(le->fd, backlog) != 0) {
        return rs__le_raise_errno(errno);
    }
    return 0;
}

int rs__backend_socket_connect(rs_socket *socket, const rs_socket_endpoint *remote)
{
    struct le_socket *le = socket->impl;
    const rs_socket_options *o = &socket->options;
    /* IPv4 / IPv6: the socket address common/ parsed (socket->remote). */
    struct sockaddr_storage ss;
    const struct sockaddr *sa = (const struct sockaddr *)socket->remote.ip.u.bytes;
    size_t len = socket->remote_len;
    if (o->domain == RS_SOCKET_LOCAL) {
        if (rs__sockaddr_from_endpoint(o->domain, remote, &ss, &len) != 0) {
            return -1;
        }
        sa = (const struct sockaddr *)&ss;
    }
    if (rs__le_apply_options(le->fd, o) != 0) {
        return -1;
    }
    int rc;
    do {
        rc = connect(le->fd, sa, (socklen_t)len);
    } while (rc != 0 && errno == EINTR);
    /* The peer's address is the one connected to (already in
     * socket->remote), so no getpeername(2) is needed later; except for
     * 0.0.0.0, which Linux turns into a loopback address. */
    le->peer_known = false;
    if (o->domain == RS_SOCKET_IPV4 && o->type == RS_SOCKET_STREAM) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        le->peer_known = sin->sin_addr.s_addr != htonl(INADDR_ANY);
    }
    if (rc == 0 || errno == EINPROGRESS) {
        le->connect_error = 0;
    } else if (o->type == RS_SOCKET_STREAM && o->domain != RS_SOCKET_LOCAL) {
        /* Loopback can refuse inside connect(2); a TCP refusal is still
         * reported through the callback, as for a remote peer. */
        le->connect_error = rs__le_error_from_errno(errno);
    } else if (o->domain == RS_SOCKET_LOCAL) {
        return rs__raise(rs__le_local_connect_error_from_errno(errno));
    } else {
        return rs__le_raise_errno(errno);
    }
    if (o->type == RS_SOCKET_DGRAM) {
        /* connect(2) gave an unbound UDP socket its source address. */
        if (rs__le_set_local_from_fd(socket, le->fd) != 0) {
            return -1;
        }
    }
    return 0;
}

int rs__backend_socket_attach(rs_socket *socket)
{
    struct le_socket *le = socket->impl;
    struct rs__le_loop *ll = socket->loop->impl;
    struct event *ev = (struct event *)le->event_storage;
    /* A listener: level-triggered reads only, added while accepting
     * (rs__backend_socket_start_accept). */
    bool listener = rs__socket_state(socket) == RS__SOCKET_LISTENING;
#if RS_LE_EDGE_TRIGGERED
    short what = listener ? EV_READ | EV_PERSIST : EV_READ | EV_WRITE | EV_PERSIST | EV_ET;
    /* The end of the stream often comes with the last data, in one edge: a
     * read that returns the data short leaves the end to read, and no edge
     * is left to tell of it. EV_CLOSED (EPOLLRDHUP) marks that case; where
     * the base cannot report it (kqueue), any short read might be that
     * case, so none drains (RS__SF_END_MAY_WAIT). */
    if (!listener && ll->early_close) {
        what |= EV_CLOSED;
    } else if (!listener && socket->options.type == RS_SOCKET_STREAM) {
        rs__socket_set_flag(socket, RS__SF_END_MAY_WAIT, true);
    }
#else
    /* One-shot reads (re-armed by a read that drains) and writes (armed
     * while a send waits for room or a connect for its end): le_socket.h. */
    short what = listener ? EV_READ | EV_PERSIST : EV_READ;
#endif
    if (event_assign(ev, ll->base, le->fd, what, rs__le_socket_on_event, socket) != 0) {
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    if (listener) {
        return 0;
    }
#if !RS_LE_EDGE_TRIGGERED
    if (event_assign(rs__le_socket_write_event(le), ll->base, le->fd, EV_WRITE,
                     rs__le_socket_on_event, socket) != 0) {
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
#endif
    if (event_add(ev, NULL) != 0) {
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    le->event = ev;
#if !RS_LE_EDGE_TRIGGERED
    le->read_armed = true;
    if (rs__socket_state(socket) == RS__SOCKET_CONNECTING && !le->connect_error &&
        rs__le_socket_want_write(le) != 0) {
        return -1;
    }
#endif
    if (le->connect_error && rs__socket_state(socket) == RS__SOCKET_CONNECTING) {
        rs__le_close_os(socket);
        rs__socket_connect_done(socket, le->connect_error);
    }
    return 0;
}

int rs__backend_socket_shutdown(rs_socket *socket, rs_socket_direction direction)
{
    (void)direction; /* always the writing half (common/backend.h) */
    struct le_socket *le = socket->impl;
    rs__le_socket_flush_held(socket); /* what a write sent at once would have sent */
    if (shutdown(le->fd, SHUT_WR) != 0) {
        return rs__le_raise_errno(errno);
    }
    rs__le_socket_fail_writes(socket, RS_ERROR_SOCKET_CLOSED);
    return 0;
}

void rs__backend_socket_close(rs_socket *socket)
{
    rs__le_close_os(socket);
}

void rs__le_close_os(rs_socket *socket)
{
    struct le_socket *le = socket->impl;
    rs__le_socket_flush_held(socket); /* what a write sent at once would have sent */
    if (le->event) {
        event_del(le->event);
#if !RS_LE_EDGE_TRIGGERED
        if (le->write_armed) { /* a listener's was never assigned */
            event_del(rs__le_socket_write_event(le));
            le->write_armed = false;
        }
#endif
        le->event = NULL;
    }
    if (le->fd >= 0) {
        close(le->fd);
        le->fd = -1;
    }
    rs__le_socket_fail_writes(socket, RS_ERROR_SOCKET_CLOSED);
}

int rs__backend_socket_resolve_local(const rs_socket *socket, struct rs__sockaddr_ip *out,
                                     size_t *len)
{
    const struct le_socket *le = socket->impl;
    struct sockaddr_storage ss;
    socklen_t ss_len = sizeof ss;
    if (getsockname(le->fd, (struct sockaddr *)&ss, &ss_len) != 0) {
        return rs__le_raise_errno(errno);
    }
    if ((size_t)ss_len > sizeof out->u.bytes) {
        return rs__raise(RS_ERROR_INVALID_STATE); /* not an IP socket */
    }
    memcpy(out->u.bytes, &ss, ss_len);
    *len = ss_len;
    return 0;
}

int rs__backend_socket_set_options(rs_socket *socket, const rs_socket_options *options)
{
    struct le_socket *le = socket->impl;
    return rs__le_apply_options(le->fd, options);
}

int rs__backend_socket_get_tcp_nodelay(const rs_socket *socket, bool *on)
{
    const struct le_socket *le = socket->impl;
    int value = 0;
    socklen_t len = sizeof value;
    if (getsockopt(le->fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) != 0) {
        return rs__le_raise_errno(errno);
    }
    *on = value != 0;
    return 0;
}

int rs__backend_socket_get_error(rs_socket *socket)
{
    struct le_socket *le = socket->impl;
    int value = 0;
    socklen_t len = sizeof value;
    if (getsockopt(le->fd, SOL_SOCKET, SO_ERROR, &value, &len) != 0) {
        return rs__le_error_from_errno(errno);
    }
    return rs__le_error_from_errno(value);
}
