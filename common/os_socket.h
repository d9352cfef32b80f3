/*
 * What the backends do the same way to an OS socket: tell whether a value
 * is an open socket, and one of the kind the options name; set an integer
 * option, IPV6_V6ONLY as the options ask, the names of the UDP options and
 * a group or interface address as a socket address; on Windows, the socket
 * options and datagram modes both Windows backends (IOCP, and libevent built
 * for Windows) apply. The descriptor is an
 * rs_os_socket (reseau/common.h): an int on POSIX, a SOCKET on Windows,
 * without the system's socket headers in every file.
 */
#ifndef RS_COMMON_OS_SOCKET_H
#define RS_COMMON_OS_SOCKET_H

#include <reseau/socket.h>
#include <reseau/watch.h>

#include <stdbool.h>
#include <stdint.h>

struct sockaddr_storage;

/* Whether sock can name a socket at all: RS_OS_SOCKET_INVALID, and on POSIX
 * every negative value, cannot (whether it is open is the backend's to ask).
 * Any thread. */
static inline bool rs__os_socket_in_range(rs_os_socket sock)
{
#ifdef _WIN32
    return sock != RS_OS_SOCKET_INVALID;
#else
    return sock >= 0;
#endif
}

/* Whether sock is an open socket, changing nothing: 0, or raises
 * RS_ERROR_INVALID_ARGUMENT for a value that names nothing open (closed,
 * never opened), RS_ERROR_NOT_A_SOCKET for an open descriptor or handle that
 * is no socket (a file, a pipe), RS_ERROR_SYS_CALL_FAILURE (logged) when the
 * system cannot tell. What rs_socket_adopt and rs_watch_new check first, on
 * every backend. Any thread. */
int rs__os_socket_check_open(rs_os_socket sock);
/* Whether the open socket sock is of o's type and domain, TCP for a stream
 * and UDP for datagrams (of LOCAL: a stream of AF_UNIX): 0, or raises
 * RS_ERROR_INVALID_OPTIONS, RS_ERROR_SYS_CALL_FAILURE (logged) when the
 * system cannot tell. Changes nothing. Any thread. */
int rs__os_socket_check_kind(rs_os_socket sock, const rs_socket_options *o);
/* setsockopt(level, name) of an int. A refusal is logged with what and the
 * system's error and raises RS_ERROR_SOCKET_OPTION. Any thread. */
int rs__os_socket_set_int(rs_os_socket sock, int level, int name, int value, const char *what);
/* IPV6_V6ONLY off when o asks for a dual-stack socket, else on (the systems'
 * defaults differ: off on Linux, on on Windows). The option-fault hook
 * stands for the OS refusing it, as where the other options are applied:
 * raises RS_ERROR_SOCKET_OPTION. Any thread. */
int rs__os_socket_set_v6only(rs_os_socket sock, const rs_socket_options *o);
/* rs__os_socket_udp_option_name: backend.h, after enum rs__udp_option. */
/* A socket address (port 0) of address: 16 bytes for IPv6, the first 4 for
 * IPv4, in network order. */
void rs__os_socket_address(bool ipv6, const uint8_t address[16], struct sockaddr_storage *out);

#ifdef _WIN32
/* Applies the options of o that a socket takes after it is made (keep-alive,
 * TCP_NODELAY, interface binding); none for LOCAL. The option-fault hook
 * stands for a refusal. Raises RS_ERROR_SOCKET_OPTION on refusal,
 * RS_ERROR_INVALID_OPTIONS for an unknown interface. Any thread. */
int rs__os_socket_apply_options(rs_os_socket sock, const rs_socket_options *o);
/* Whether a UDP socket's receives fail with WSAECONNRESET after a datagram
 * drew an ICMP port unreachable (SIO_UDP_CONNRESET): on for a connected
 * socket, off otherwise, as POSIX reports it. Any thread. */
void rs__os_socket_udp_report_unreachable(rs_os_socket sock, bool on);
/* Turns off WSAENETRESET on receives after an ICMP time exceeded
 * (SIO_UDP_NETRESET), which POSIX never reports to a UDP socket. Any
 * thread. */
void rs__os_socket_udp_ignore_net_reset(rs_os_socket sock);
#endif

#endif
