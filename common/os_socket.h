/*
 * What both backends do the same way to an OS socket: set an integer
 * option, IPV6_V6ONLY as the options ask, the names of the UDP options and
 * a group or interface address as a socket address. The descriptor is an
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

#endif
