/* The OS-socket work both backends share (os_socket.h). */
#include "os_socket.h"

#include "backend.h"
#include "error.h"
#include "log.h"
#include "test_hooks.h"

#include <string.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2ipdef.h>
#include <ws2tcpip.h>
_Static_assert(sizeof(SOCKET) == sizeof(rs_os_socket), "rs_os_socket holds a SOCKET");
#else
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

int rs__os_socket_set_int(rs_os_socket sock, int level, int name, int value, const char *what)
{
#ifdef _WIN32
    if (setsockopt((SOCKET)sock, level, name, (const char *)&value, (int)sizeof value) != 0) {
        RS__LOG(RS_LOG_ERROR, "socket option %s refused: %d", what, WSAGetLastError());
        return rs__raise(RS_ERROR_SOCKET_OPTION);
    }
#else
    if (setsockopt(sock, level, name, &value, sizeof value) != 0) {
        RS__LOG(RS_LOG_ERROR, "socket option %s refused: %s", what, strerror(errno));
        return rs__raise(RS_ERROR_SOCKET_OPTION);
    }
#endif
    return 0;
}

int rs__os_socket_set_v6only(rs_os_socket sock, const rs_socket_options *o)
{
    if (RS__TEST_HOOK(rs__socket_take_option_fault())) {
        return rs__raise(RS_ERROR_SOCKET_OPTION);
    }
    return rs__os_socket_set_int(sock, IPPROTO_IPV6, IPV6_V6ONLY, !o->ipv6_dual_stack,
                                 "IPV6_V6ONLY");
}

void rs__os_socket_udp_option_name(bool ipv6, enum rs__udp_option option, int *level, int *name)
{
    *level = ipv6 ? IPPROTO_IPV6 : IPPROTO_IP;
    switch (option) {
    case RS__UDP_MULTICAST_TTL:
        *name = ipv6 ? IPV6_MULTICAST_HOPS : IP_MULTICAST_TTL;
        break;
    case RS__UDP_MULTICAST_LOOP:
        *name = ipv6 ? IPV6_MULTICAST_LOOP : IP_MULTICAST_LOOP;
        break;
    case RS__UDP_BROADCAST:
        *level = SOL_SOCKET;
        *name = SO_BROADCAST;
        break;
    case RS__UDP_TTL:
    default:
        *name = ipv6 ? IPV6_UNICAST_HOPS : IP_TTL;
        break;
    }
}

void rs__os_socket_address(bool ipv6, const uint8_t address[16], struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (ipv6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, address, 16);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, address, 4);
    }
}
