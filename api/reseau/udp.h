/**
 * @file
 * UDP socket options: multicast group membership (any-source and
 * source-specific), multicast TTL / hop limit, loopback and outgoing
 * interface, broadcast, and the unicast TTL / hop limit.
 *
 * Every call here takes an IPv4 or IPv6 datagram socket (RS_SOCKET_DGRAM)
 * that is open. The same errors on every backend:
 *
 * - RS_ERROR_INVALID_ARGUMENT: a NULL socket or output pointer, a NULL group,
 *   a TTL or hop limit out of range, an unknown rs_socket_membership.
 * - RS_ERROR_INVALID_STATE: the socket is closed, or is not a UDP socket (a
 *   TCP or LOCAL socket has no such option: a property of the socket, as for
 *   rs_socket_get_tcp_nodelay, not of the arguments).
 * - RS_ERROR_INVALID_ADDRESS: a group that is not a literal multicast address
 *   of the socket's family (224.0.0.0/4 for IPv4, ff00::/8 for IPv6; an IPv4
 *   group on an IPv6 socket is refused even when it is dual-stack), a source
 *   that is not a unicast literal of that family, an interface that does not
 *   parse (see below).
 * - RS_ERROR_WRONG_THREAD: a setter called off the socket's loop thread once
 *   the socket has a loop (the rule of rs_socket_set_options: any thread
 *   before the socket has a loop, its loop thread after). Getters read the
 *   value back from the OS and may be called from any thread.
 * - What the OS refuses, mapped: RS_ERROR_ADDRESS_IN_USE (joining an
 *   any-source group already joined on that interface),
 *   RS_ERROR_ADDRESS_NOT_AVAILABLE (leaving a group or source not joined; an
 *   interface address that is not this host's), RS_ERROR_NO_BUFFER_SPACE
 *   (the system's limit of memberships per socket),
 *   RS_ERROR_PLATFORM_NOT_SUPPORTED (source-specific membership where the
 *   system has none), RS_ERROR_SOCKET_OPTION (another refusal).
 *
 * A call that fails changes nothing. The interface of a membership or of
 * rs_socket_set_multicast_interface is named as each family names it: on an
 * IPv4 socket the interface's IPv4 address ("127.0.0.1"), on an IPv6 socket
 * its index ("1") or name ("lo"). NULL (or "") lets the system choose (its
 * route to the group; on a host without a multicast route, such as one with
 * only a loopback interface, name the interface).
 *
 * A broadcast datagram needs rs_socket_set_broadcast on: without it, connecting
 * a UDP socket to a broadcast address (255.255.255.255) fails with
 * RS_ERROR_NO_PERMISSION on every backend (EACCES, WSAEACCES).
 */
#ifndef RESEAU_UDP_H
#define RESEAU_UDP_H

#include <reseau/socket.h>

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Joining or leaving a multicast group (rs_socket_set_membership). */
typedef enum rs_socket_membership {
    RS_SOCKET_JOIN_GROUP = 1,  /**< start receiving the group's datagrams */
    RS_SOCKET_LEAVE_GROUP = 2, /**< stop receiving them */
} rs_socket_membership;

/**
 * Joins or leaves the any-source multicast group `group` (a literal
 * address) on the interface `interface_name` (NULL: the system's choice).
 * The socket receives the group's datagrams sent to the port it is bound
 * to. Errors: as listed in this header, including RS_ERROR_ADDRESS_IN_USE
 * (already joined) and RS_ERROR_ADDRESS_NOT_AVAILABLE (leaving a group not
 * joined).
 */
RS_API int rs_socket_set_membership(rs_socket *socket, const char *group,
                                    const char *interface_name, rs_socket_membership membership);

/**
 * Joins or leaves the source-specific group (`source`, `group`) (RFC 4607):
 * the socket receives the datagrams `source` sends to `group`.
 * `source` must be a unicast literal of the socket's family (else
 * RS_ERROR_INVALID_ADDRESS; NULL: RS_ERROR_INVALID_ARGUMENT). IPv4 uses
 * IP_ADD_SOURCE_MEMBERSHIP / IP_DROP_SOURCE_MEMBERSHIP, IPv6
 * MCAST_JOIN_SOURCE_GROUP / MCAST_LEAVE_SOURCE_GROUP; a system without
 * them fails with RS_ERROR_PLATFORM_NOT_SUPPORTED. Other errors: as for
 * rs_socket_set_membership.
 */
RS_API int rs_socket_set_source_membership(rs_socket *socket, const char *group,
                                           const char *interface_name, const char *source,
                                           rs_socket_membership membership);

/**
 * The TTL (IPv4 IP_MULTICAST_TTL) or hop limit (IPv6 IPV6_MULTICAST_HOPS)
 * of the multicast datagrams the socket sends: 0..255 (0: this host only).
 * Errors: as listed in this header (RS_ERROR_INVALID_ARGUMENT out of range).
 */
RS_API int rs_socket_set_multicast_ttl(rs_socket *socket, int ttl);
/** Reads the multicast TTL / hop limit back from the OS. Any thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE,
 * RS_ERROR_SOCKET_OPTION. */
RS_API int rs_socket_get_multicast_ttl(const rs_socket *socket, int *ttl);

/**
 * Whether the multicast datagrams the socket sends are delivered to the
 * members on this host too (IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP; on by
 * default on both systems). Note the sides differ: POSIX applies the option
 * on the sending socket, Windows on the receiving one; set it on both for
 * the same effect everywhere. Errors: as listed in this header.
 */
RS_API int rs_socket_set_multicast_loop(rs_socket *socket, bool on);
/** Reads the multicast loopback option back from the OS. Any thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE,
 * RS_ERROR_SOCKET_OPTION. */
RS_API int rs_socket_get_multicast_loop(const rs_socket *socket, bool *on);

/**
 * The interface the socket sends its multicast datagrams through
 * (IP_MULTICAST_IF / IPV6_MULTICAST_IF), named as this header describes;
 * NULL or "" returns to the system's choice. Errors: as listed in this
 * header (RS_ERROR_ADDRESS_NOT_AVAILABLE: no interface has that address).
 */
RS_API int rs_socket_set_multicast_interface(rs_socket *socket, const char *interface_name);

/**
 * Allows (on) or forbids (off, the default) sending to a broadcast address
 * (SO_BROADCAST). Errors: as listed in this header (IPv6 has no broadcast,
 * yet the option is kept on both families as the systems keep it).
 */
RS_API int rs_socket_set_broadcast(rs_socket *socket, bool on);
/** Reads SO_BROADCAST back from the OS. Any thread. Errors:
 * RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE, RS_ERROR_SOCKET_OPTION. */
RS_API int rs_socket_get_broadcast(const rs_socket *socket, bool *on);

/**
 * The TTL (IPv4 IP_TTL) or hop limit (IPv6 IPV6_UNICAST_HOPS) of the
 * unicast datagrams the socket sends: 1..255. Errors: as listed in this
 * header (RS_ERROR_INVALID_ARGUMENT out of range).
 */
RS_API int rs_socket_set_ttl(rs_socket *socket, int ttl);
/** Reads the unicast TTL / hop limit back from the OS (the system's default
 * until set, e.g. 64). Any thread. Errors: RS_ERROR_INVALID_ARGUMENT,
 * RS_ERROR_INVALID_STATE, RS_ERROR_SOCKET_OPTION. */
RS_API int rs_socket_get_ttl(const rs_socket *socket, int *ttl);

#ifdef __cplusplus
}
#endif

#endif
