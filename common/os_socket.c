/* The OS-socket work the backends share (os_socket.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SO_PROTOCOL */
#endif
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
#include <mstcpip.h>
#include <mswsock.h>
_Static_assert(sizeof(SOCKET) == sizeof(rs_os_socket), "rs_os_socket holds a SOCKET");
#else
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

static int family_of(rs_socket_domain domain)
{
    return domain == RS_SOCKET_IPV4 ? AF_INET : domain == RS_SOCKET_IPV6 ? AF_INET6 : AF_UNIX;
}

#ifdef _WIN32

int rs__os_socket_check_open(rs_os_socket sock)
{
    /* Winsock says WSAENOTSOCK both for a handle that is not a socket and
     * for a value that is no open handle; only the second has no handle
     * information (GetHandleInformation fails with ERROR_INVALID_HANDLE).
     * Neither call changes the handle. */
    DWORD flags = 0;
    if (!GetHandleInformation((HANDLE)(uintptr_t)sock, &flags)) {
        return rs__raise(RS_ERROR_INVALID_ARGUMENT);
    }
    int type = 0;
    int len = (int)sizeof type;
    if (getsockopt((SOCKET)sock, SOL_SOCKET, SO_TYPE, (char *)&type, &len) != 0) {
        int err = WSAGetLastError();
        if (err == WSAENOTSOCK) {
            return rs__raise(RS_ERROR_NOT_A_SOCKET);
        }
        RS__LOG(RS_LOG_ERROR, "getsockopt(SO_TYPE): %d", err);
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    return 0;
}

int rs__os_socket_check_kind(rs_os_socket sock, const rs_socket_options *o)
{
    WSAPROTOCOL_INFOW info;
    int len = (int)sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt((SOCKET)sock, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) != 0) {
        RS__LOG(RS_LOG_ERROR, "getsockopt(SO_PROTOCOL_INFOW): %d", WSAGetLastError());
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    bool stream = o->type == RS_SOCKET_STREAM;
    int protocol = o->domain == RS_SOCKET_LOCAL ? 0 : stream ? IPPROTO_TCP : IPPROTO_UDP;
    if (info.iAddressFamily != family_of(o->domain) ||
        info.iSocketType != (stream ? SOCK_STREAM : SOCK_DGRAM) || info.iProtocol != protocol) {
        return rs__raise(RS_ERROR_INVALID_OPTIONS);
    }
    return 0;
}

#else

int rs__os_socket_check_open(rs_os_socket sock)
{
    /* F_GETFD fails only with EBADF (no open descriptor); SO_TYPE with
     * ENOTSOCK on any other kind of file. Neither changes the descriptor. */
    if (fcntl(sock, F_GETFD) < 0) {
        return rs__raise(RS_ERROR_INVALID_ARGUMENT);
    }
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        if (errno == ENOTSOCK) {
            return rs__raise(RS_ERROR_NOT_A_SOCKET);
        }
        RS__LOG(RS_LOG_ERROR, "getsockopt(SO_TYPE): %s", strerror(errno));
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    return 0;
}

static int get_int(rs_os_socket sock, int level, int name, int *value, const char *what)
{
    socklen_t len = sizeof *value;
    *value = 0;
    if (getsockopt(sock, level, name, value, &len) != 0) {
        RS__LOG(RS_LOG_ERROR, "getsockopt(%s): %s", what, strerror(errno));
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    return 0;
}

int rs__os_socket_check_kind(rs_os_socket sock, const rs_socket_options *o)
{
    int type = 0;
    if (get_int(sock, SOL_SOCKET, SO_TYPE, &type, "SO_TYPE") != 0) {
        return -1;
    }
    if (type != (o->type == RS_SOCKET_STREAM ? SOCK_STREAM : SOCK_DGRAM)) {
        return rs__raise(RS_ERROR_INVALID_OPTIONS);
    }
    /* The family as getsockname reports it: every system has that, not
     * every one SO_DOMAIN. */
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    memset(&local, 0, sizeof local);
    if (getsockname(sock, (struct sockaddr *)&local, &len) != 0) {
        RS__LOG(RS_LOG_ERROR, "getsockname: %s", strerror(errno));
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    if (local.ss_family != family_of(o->domain)) {
        return rs__raise(RS_ERROR_INVALID_OPTIONS);
    }
#ifdef SO_PROTOCOL
    /* A stream of AF_INET may be SCTP, a datagram socket UDP-Lite: only TCP
     * and UDP behave as reseau expects. */
    if (o->domain != RS_SOCKET_LOCAL) {
        int proto = 0;
        if (get_int(sock, SOL_SOCKET, SO_PROTOCOL, &proto, "SO_PROTOCOL") != 0) {
            return -1;
        }
        if (proto != (type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP)) {
            return rs__raise(RS_ERROR_INVALID_OPTIONS);
        }
    }
#endif
    return 0;
}

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

#ifdef _WIN32

/* The Windows SDK's ws2ipdef.h defines it (Windows 10 1703 and later);
 * mingw-w64's does not yet. */
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 16
#endif

static int set_keepalive(rs_os_socket sock, const rs_socket_options *o)
{
    if (rs__os_socket_set_int(sock, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE") != 0) {
        return -1;
    }
    if (o->keep_alive_idle_s || o->keep_alive_interval_s) {
        /* Windows has no per-socket TCP_KEEPIDLE / TCP_KEEPINTVL before
         * Windows 10 1709 (and Wine has none): SIO_KEEPALIVE_VALS sets both,
         * in milliseconds; a zero keeps the system's default (2 h idle, 1 s
         * interval). */
        struct tcp_keepalive vals;
        vals.onoff = 1;
        vals.keepalivetime = o->keep_alive_idle_s ? o->keep_alive_idle_s * 1000u : 7200000u;
        vals.keepaliveinterval =
            o->keep_alive_interval_s ? o->keep_alive_interval_s * 1000u : 1000u;
        DWORD bytes = 0;
        if (WSAIoctl((SOCKET)sock, SIO_KEEPALIVE_VALS, &vals, sizeof vals, NULL, 0, &bytes, NULL,
                     NULL) != 0) {
            RS__LOG(RS_LOG_ERROR, "SIO_KEEPALIVE_VALS refused: %d", WSAGetLastError());
            return rs__raise(RS_ERROR_SOCKET_OPTION);
        }
    }
    if (o->keep_alive_probes) {
        int value = o->keep_alive_probes;
        if (setsockopt((SOCKET)sock, IPPROTO_TCP, TCP_KEEPCNT, (const char *)&value,
                       (int)sizeof value) != 0) {
            int err = WSAGetLastError();
            /* TCP_KEEPCNT exists from Windows 10 1703 on; before, the probe
             * count is fixed by the system (10) and cannot be requested. */
            if (err != WSAENOPROTOOPT) {
                RS__LOG(RS_LOG_ERROR, "TCP_KEEPCNT refused: %d", err);
                return rs__raise(RS_ERROR_SOCKET_OPTION);
            }
            RS__LOG(RS_LOG_WARN, "TCP_KEEPCNT is not available: the system's probe count applies");
        }
    }
    return 0;
}
static int bind_to_interface(rs_os_socket sock, const rs_socket_options *o)
{
    unsigned int index = rs__network_interface_index(o->network_interface_name);
    if (index == 0) {
        return rs__raise(RS_ERROR_INVALID_OPTIONS);
    }
    /* IP_UNICAST_IF takes the index in network byte order, IPV6_UNICAST_IF
     * in host order (their documentation). Wine 8 reads the IPv6 one in
     * network order too and refuses the documented form with WSAEINVAL;
     * the documented order is kept. */
    if (o->domain == RS_SOCKET_IPV6) {
        return rs__os_socket_set_int(sock, IPPROTO_IPV6, IPV6_UNICAST_IF, (int)index,
                                     "IPV6_UNICAST_IF");
    }
    return rs__os_socket_set_int(sock, IPPROTO_IP, IP_UNICAST_IF, (int)htonl(index),
                                 "IP_UNICAST_IF");
}

int rs__os_socket_apply_options(rs_os_socket sock, const rs_socket_options *o)
{
    if (RS__TEST_HOOK(rs__socket_take_option_fault())) {
        return rs__raise(RS_ERROR_SOCKET_OPTION);
    }
    if (o->domain == RS_SOCKET_LOCAL) {
        return 0;
    }
    bool tcp = o->type == RS_SOCKET_STREAM;
    if (tcp && o->keepalive && set_keepalive(sock, o) != 0) {
        return -1;
    }
    if (tcp && o->tcp_nodelay != RS_SOCKET_OPTION_DEFAULT &&
        rs__os_socket_set_int(sock, IPPROTO_TCP, TCP_NODELAY, o->tcp_nodelay == RS_SOCKET_OPTION_ON,
                              "TCP_NODELAY") != 0) {
        return -1;
    }
    if (o->network_interface_name[0] && bind_to_interface(sock, o) != 0) {
        return -1;
    }
    return 0;
}

void rs__os_socket_udp_report_unreachable(rs_os_socket sock, bool on)
{
    /* Windows fails the next receive of a UDP socket with WSAECONNRESET
     * after one of its datagrams drew an ICMP port unreachable, connected or
     * not (WSARecvFrom's documentation); POSIX reports it only on a
     * connected socket. SIO_UDP_CONNRESET turns the report on and off. */
    BOOL value = on ? TRUE : FALSE;
    DWORD bytes = 0;
    if (WSAIoctl((SOCKET)sock, SIO_UDP_CONNRESET, &value, sizeof value, NULL, 0, &bytes, NULL,
                 NULL) != 0) {
        RS__LOG(RS_LOG_DEBUG, "SIO_UDP_CONNRESET: %d", WSAGetLastError());
    }
}
/* The SDK's mstcpip.h has it; mingw-w64's headers do not. */
#ifndef SIO_UDP_NETRESET
#define SIO_UDP_NETRESET _WSAIOW(IOC_VENDOR, 15)
#endif
void rs__os_socket_udp_ignore_net_reset(rs_os_socket sock)
{
    /* Windows fails the next receive of a UDP socket with WSAENETRESET
     * after one of its datagrams drew an ICMP time exceeded (SIO_UDP_NETRESET
     * in the Winsock IOCTL documentation), connected or not; POSIX reports
     * that to no UDP socket. Wine 8 fails the IOCTL (WSAEOPNOTSUPP) and,
     * running on Linux, reports no time exceeded to a UDP socket either: the
     * failure is only logged. */
    BOOL value = FALSE;
    DWORD bytes = 0;
    if (WSAIoctl((SOCKET)sock, SIO_UDP_NETRESET, &value, sizeof value, NULL, 0, &bytes, NULL,
                 NULL) != 0) {
        RS__LOG(RS_LOG_DEBUG, "SIO_UDP_NETRESET: %d", WSAGetLastError());
    }
}

#endif
