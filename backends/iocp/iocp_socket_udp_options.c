/* The UDP options of api/reseau/udp.h on Winsock. common/
 * socket_udp_options.c has validated the socket, the values and the
 * addresses. Every option name and structure comes from ws2ipdef.h:
 * Winsock's IPPROTO_IP numbers differ from POSIX's (IP_ADD_MEMBERSHIP is
 * 12, not Linux's 35), and its ip_mreq_source orders its fields
 * differently, so nothing here is written by number or by position. */
#include "iocp_socket.h"
#include "../../common/error.h"

#include <string.h>

/* The errors udp.h documents; the others are a refused option. */
static int raise_option_error(int err)
{
    switch (err) {
    case WSAEADDRINUSE:    /* a group (or source) already joined */
    case WSAEADDRNOTAVAIL: /* leaving one not joined; no interface with that address */
    case WSAENOBUFS:       /* the limit of memberships per socket */
        return rs__iocp_raise_wsa(err);
    default:
        return rs__raise(RS_ERROR_SOCKET_OPTION);
    }
}

/* A refused leave or outgoing interface. The group and interface were
 * validated (multicast, of the socket's family), so the one thing left to
 * refuse is a membership the socket does not hold or an address no
 * interface has: Wine answers WSAEINVAL for both (Linux, under it, says
 * EADDRNOTAVAIL), which reseau reports as the documented
 * RS_ERROR_ADDRESS_NOT_AVAILABLE, the same as the libevent backend. */
static int raise_not_available(int err)
{
    if (err == WSAEINVAL) {
        return rs__raise(RS_ERROR_ADDRESS_NOT_AVAILABLE);
    }
    return raise_option_error(err);
}

static bool is_ipv6(const rs_socket *socket)
{
    return socket->options.domain == RS_SOCKET_IPV6;
}

static SOCKET sock_of(const rs_socket *socket)
{
    const struct rs__iocp_socket *im = socket->impl;
    return im->sock;
}

int rs__backend_socket_set_udp_option(rs_socket *socket, enum rs__udp_option option, int value)
{
    int level = 0;
    int name = 0;
    rs__os_socket_udp_option_name(is_ipv6(socket), option, &level, &name);
    /* Every one of these options takes a DWORD (IPPROTO_IP, IPPROTO_IPV6
     * and SOL_SOCKET socket options, Microsoft Learn). */
    DWORD dword = (DWORD)value;
    if (setsockopt(sock_of(socket), level, name, (const char *)&dword, (int)sizeof dword) != 0) {
        return raise_option_error(WSAGetLastError());
    }
    return 0;
}

int rs__backend_socket_get_udp_option(const rs_socket *socket, enum rs__udp_option option,
                                      int *value)
{
    int level = 0;
    int name = 0;
    rs__os_socket_udp_option_name(is_ipv6(socket), option, &level, &name);
    DWORD dword = 0;
    int len = (int)sizeof dword;
    if (getsockopt(sock_of(socket), level, name, (char *)&dword, &len) != 0) {
        return raise_option_error(WSAGetLastError());
    }
    /* A BOOL option may come back in one byte (SO_BROADCAST is documented
     * as a BOOL, the IP options as DWORDs); the zeroed rest reads the same. */
    *value = (int)dword;
    return 0;
}

static int source_membership(rs_socket *socket, const struct rs__udp_membership *m, bool join)
{
    int rc;
    if (!is_ipv6(socket)) {
        struct ip_mreq_source req;
        memset(&req, 0, sizeof req);
        memcpy(&req.imr_multiaddr, m->group, 4);
        memcpy(&req.imr_sourceaddr, m->source, 4);
        memcpy(&req.imr_interface, m->interface_ipv4, 4);
        rc = setsockopt(sock_of(socket), IPPROTO_IP,
                        join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP,
                        (const char *)&req, (int)sizeof req);
    } else {
        /* IPv6 has source-specific membership only through the
         * protocol-independent MCAST_JOIN_SOURCE_GROUP (Windows Vista+). */
        GROUP_SOURCE_REQ req;
        memset(&req, 0, sizeof req);
        req.gsr_interface = m->interface_index;
        rs__os_socket_address(is_ipv6(socket), m->group, &req.gsr_group);
        rs__os_socket_address(is_ipv6(socket), m->source, &req.gsr_source);
        rc = setsockopt(sock_of(socket), IPPROTO_IPV6,
                        join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP,
                        (const char *)&req, (int)sizeof req);
    }
    if (rc == 0) {
        return 0;
    }
    int err = WSAGetLastError();
    if (err == WSAENOPROTOOPT || err == WSAEOPNOTSUPP) {
        /* No source-specific membership on this system (udp.h). */
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    return join ? raise_option_error(err) : raise_not_available(err);
}

int rs__backend_socket_set_membership(rs_socket *socket, const struct rs__udp_membership *m,
                                      bool join)
{
    if (m->has_source) {
        return source_membership(socket, m, join);
    }
    int rc;
    if (is_ipv6(socket)) {
        /* IPV6_JOIN_GROUP is Winsock's IPV6_ADD_MEMBERSHIP (ws2ipdef.h). */
        struct ipv6_mreq req;
        memset(&req, 0, sizeof req);
        memcpy(&req.ipv6mr_multiaddr, m->group, 16);
        req.ipv6mr_interface = m->interface_index;
        rc = setsockopt(sock_of(socket), IPPROTO_IPV6, join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP,
                        (const char *)&req, (int)sizeof req);
    } else {
        struct ip_mreq req;
        memset(&req, 0, sizeof req);
        memcpy(&req.imr_multiaddr, m->group, 4);
        memcpy(&req.imr_interface, m->interface_ipv4, 4);
        rc = setsockopt(sock_of(socket), IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                        (const char *)&req, (int)sizeof req);
    }
    if (rc == 0) {
        return 0;
    }
    return join ? raise_option_error(WSAGetLastError()) : raise_not_available(WSAGetLastError());
}

int rs__backend_socket_set_multicast_interface(rs_socket *socket,
                                               const struct rs__udp_membership *m)
{
    int rc;
    if (is_ipv6(socket)) {
        /* IPV6_MULTICAST_IF: the interface index, a DWORD in host order. */
        DWORD index = m->interface_index;
        rc = setsockopt(sock_of(socket), IPPROTO_IPV6, IPV6_MULTICAST_IF, (const char *)&index,
                        (int)sizeof index);
    } else {
        /* IP_MULTICAST_IF: the interface's IPv4 address in network order. */
        IN_ADDR address;
        memcpy(&address, m->interface_ipv4, 4);
        rc = setsockopt(sock_of(socket), IPPROTO_IP, IP_MULTICAST_IF, (const char *)&address,
                        (int)sizeof address);
    }
    return rc == 0 ? 0 : raise_not_available(WSAGetLastError());
}
