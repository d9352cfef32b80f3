/* The UDP options of api/reseau/udp.h on POSIX sockets. common/
 * socket_udp_options.c has validated the socket, the values and the
 * addresses. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ip_mreq_source, group_source_req (RFC 3678) */
#endif

#include "le_socket.h"
#include "../../common/error.h"

#include <errno.h>
#include <string.h>

/* The errors udp.h documents; the others are a refused option. */
static int raise_option_errno(int err)
{
    switch (err) {
    case EADDRINUSE:    /* a group (or source) already joined */
    case EADDRNOTAVAIL: /* leaving one not joined; no interface with that address */
    case ENOBUFS:       /* the limit of memberships per socket (igmp_max_memberships) */
        return rs__le_raise_errno(err);
    case ENODEV: /* an interface index of no interface */
        return rs__raise(RS_ERROR_ADDRESS_NOT_AVAILABLE);
    default:
        return rs__raise(RS_ERROR_SOCKET_OPTION);
    }
}

/* A refused leave or outgoing interface. The group and interface were
 * validated (multicast, of the socket's family), so the one thing left to
 * refuse is a membership the socket does not hold or an address no
 * interface has: Linux says EADDRNOTAVAIL, except for a source-specific
 * leave of a group not joined, which it refuses with EINVAL
 * (ip_mc_source); both are the documented RS_ERROR_ADDRESS_NOT_AVAILABLE. */
static int raise_not_available(int err)
{
    if (err == EINVAL) {
        return rs__raise(RS_ERROR_ADDRESS_NOT_AVAILABLE);
    }
    return raise_option_errno(err);
}

static bool is_ipv6(const rs_socket *socket)
{
    return socket->options.domain == RS_SOCKET_IPV6;
}

int rs__backend_socket_set_udp_option(rs_socket *socket, enum rs__udp_option option, int value)
{
    const struct le_socket *le = socket->impl;
    int level = 0;
    int name = 0;
    rs__os_socket_udp_option_name(is_ipv6(socket), option, &level, &name);
    /* Linux takes an int for IP_MULTICAST_TTL / IP_MULTICAST_LOOP (and a
     * byte as well); the BSDs and macOS insist on a u_char (ip(4)). */
#if !defined(__linux__)
    if (level == IPPROTO_IP && (name == IP_MULTICAST_TTL || name == IP_MULTICAST_LOOP)) {
        unsigned char byte = (unsigned char)value;
        if (setsockopt(le->fd, level, name, &byte, sizeof byte) != 0) {
            return raise_option_errno(errno);
        }
        return 0;
    }
#endif
    if (setsockopt(le->fd, level, name, &value, sizeof value) != 0) {
        return raise_option_errno(errno);
    }
    return 0;
}

int rs__backend_socket_get_udp_option(const rs_socket *socket, enum rs__udp_option option,
                                      int *value)
{
    const struct le_socket *le = socket->impl;
    int level = 0;
    int name = 0;
    rs__os_socket_udp_option_name(is_ipv6(socket), option, &level, &name);
    /* Room for an int; a system that answers with a byte (the BSDs'
     * IP_MULTICAST_TTL / LOOP) fills only the first, read as such. */
    union {
        int i;
        unsigned char byte;
    } out;
    memset(&out, 0, sizeof out);
    socklen_t len = sizeof out.i;
    if (getsockopt(le->fd, level, name, &out, &len) != 0) {
        return raise_option_errno(errno);
    }
    *value = len == sizeof out.byte ? out.byte : out.i;
    return 0;
}

static int source_membership(rs_socket *socket, const struct rs__udp_membership *m, bool join)
{
    const struct le_socket *le = socket->impl;
    int rc = -1;
    int err = ENOPROTOOPT;
    if (!is_ipv6(socket)) {
#if defined(IP_ADD_SOURCE_MEMBERSHIP)
        struct ip_mreq_source req;
        memset(&req, 0, sizeof req);
        memcpy(&req.imr_multiaddr, m->group, 4);
        memcpy(&req.imr_sourceaddr, m->source, 4);
        memcpy(&req.imr_interface, m->interface_ipv4, 4);
        rc = setsockopt(le->fd, IPPROTO_IP,
                        join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP, &req,
                        sizeof req);
        err = errno;
#endif
    } else {
#if defined(MCAST_JOIN_SOURCE_GROUP)
        struct group_source_req req;
        memset(&req, 0, sizeof req);
        req.gsr_interface = m->interface_index;
        rs__os_socket_address(is_ipv6(socket), m->group, &req.gsr_group);
        rs__os_socket_address(is_ipv6(socket), m->source, &req.gsr_source);
        rc =
            setsockopt(le->fd, IPPROTO_IPV6,
                       join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP, &req, sizeof req);
        err = errno;
#endif
    }
    if (rc == 0) {
        return 0;
    }
    if (err == ENOPROTOOPT || err == EOPNOTSUPP) {
        /* The system has no source-specific membership (udp.h). */
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    return join ? raise_option_errno(err) : raise_not_available(err);
}

int rs__backend_socket_set_membership(rs_socket *socket, const struct rs__udp_membership *m,
                                      bool join)
{
    const struct le_socket *le = socket->impl;
    if (m->has_source) {
        return source_membership(socket, m, join);
    }
    int rc;
    if (is_ipv6(socket)) {
        struct ipv6_mreq req;
        memset(&req, 0, sizeof req);
        memcpy(&req.ipv6mr_multiaddr, m->group, 16);
        req.ipv6mr_interface = m->interface_index;
        rc = setsockopt(le->fd, IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP, &req,
                        sizeof req);
    } else {
        struct ip_mreq req;
        memset(&req, 0, sizeof req);
        memcpy(&req.imr_multiaddr, m->group, 4);
        memcpy(&req.imr_interface, m->interface_ipv4, 4);
        rc = setsockopt(le->fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &req,
                        sizeof req);
    }
    if (rc == 0) {
        return 0;
    }
    return join ? raise_option_errno(errno) : raise_not_available(errno);
}

int rs__backend_socket_set_multicast_interface(rs_socket *socket,
                                               const struct rs__udp_membership *m)
{
    const struct le_socket *le = socket->impl;
    int rc;
    if (is_ipv6(socket)) {
        unsigned int index = m->interface_index;
        rc = setsockopt(le->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index);
    } else {
        struct in_addr address;
        memcpy(&address, m->interface_ipv4, 4);
        rc = setsockopt(le->fd, IPPROTO_IP, IP_MULTICAST_IF, &address, sizeof address);
    }
    return rc == 0 ? 0 : raise_not_available(errno);
}
