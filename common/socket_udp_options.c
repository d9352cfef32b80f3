/*
 * The UDP options of api/reseau/udp.h: every argument, state and thread is
 * checked here, before the backend's setsockopt, so that a bad call fails
 * with the same code on every backend and changes nothing.
 */
#include "backend.h"
#include "error.h"
#include "socket_impl.h"

#include <reseau/address.h>
#include <reseau/udp.h>

#include <string.h>

/* An open IPv4 or IPv6 datagram socket: the only kind with these options. */
static int check_udp(const rs_socket *socket)
{
    if (rs__socket_state(socket) == RS__SOCKET_CLOSED) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (socket->options.type != RS_SOCKET_DGRAM ||
        (socket->options.domain != RS_SOCKET_IPV4 && socket->options.domain != RS_SOCKET_IPV6)) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    return 0;
}

/* A setter: the thread rule of rs_socket_set_options as well. */
static int check_udp_setter(rs_socket *socket)
{
    if (!socket) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    rs_event_loop *loop = rs__socket_loop(socket);
    if (loop && !rs_event_loop_is_on_thread(loop)) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    return check_udp(socket);
}

/* A literal address of the socket's family into out (16 bytes; IPv4 in the
 * first 4). IPv6 zones are refused: the interface is its own argument. */
static int parse_address(rs_socket_domain domain, const char *text, uint8_t out[16])
{
    memset(out, 0, 16);
    if (domain == RS_SOCKET_IPV4) {
        return rs_parse_ipv4_address(text, out);
    }
    return rs_parse_ipv6_address(text, out);
}

static bool is_multicast(rs_socket_domain domain, const uint8_t address[16])
{
    /* 224.0.0.0/4 (RFC 5771), ff00::/8 (RFC 4291 section 2.7). */
    return domain == RS_SOCKET_IPV4 ? (address[0] & 0xf0) == 0xe0 : address[0] == 0xff;
}

static bool is_unspecified(const uint8_t address[16])
{
    static const uint8_t zero[16];
    return memcmp(address, zero, sizeof zero) == 0;
}

/* The interface of api/reseau/udp.h into m: IPv4 an address, IPv6 an index
 * or a name, read by the zone rule of rs_parse_ipv6_scoped_address (RFC
 * 4007 section 11) so that the names and numbers accepted are the same as
 * in an address's "%ZONE". */
static int parse_interface(rs_socket_domain domain, const char *name, struct rs__udp_membership *m)
{
    if (!name || name[0] == '\0') {
        return 0;
    }
    if (domain == RS_SOCKET_IPV4) {
        return rs_parse_ipv4_address(name, m->interface_ipv4);
    }
    /* The longest zone: a name of RS_NETWORK_INTERFACE_NAME_MAX - 1 bytes or
     * a 10-digit index; anything longer names no interface. */
    char scoped[3 + RS_NETWORK_INTERFACE_NAME_MAX + 1] = "::%";
    size_t len = 0;
    while (len < RS_NETWORK_INTERFACE_NAME_MAX && name[len] != '\0') {
        len++;
    }
    if (len == RS_NETWORK_INTERFACE_NAME_MAX) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    memcpy(scoped + 3, name, len + 1);
    uint8_t unused[16];
    return rs_parse_ipv6_scoped_address(scoped, unused, &m->interface_index);
}

static int set_membership(rs_socket *socket, const char *group, const char *interface_name,
                          const char *source, rs_socket_membership membership)
{
    if (check_udp_setter(socket) != 0) {
        return -1;
    }
    if (!group || (membership != RS_SOCKET_JOIN_GROUP && membership != RS_SOCKET_LEAVE_GROUP)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    rs_socket_domain domain = socket->options.domain;
    struct rs__udp_membership m;
    memset(&m, 0, sizeof m);
    if (parse_address(domain, group, m.group) != 0 || !is_multicast(domain, m.group)) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    if (source) {
        if (parse_address(domain, source, m.source) != 0 || is_multicast(domain, m.source) ||
            is_unspecified(m.source)) {
            return rs_raise(RS_ERROR_INVALID_ADDRESS);
        }
        m.has_source = true;
    }
    if (parse_interface(domain, interface_name, &m) != 0) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    return rs__backend_socket_set_membership(socket, &m, membership == RS_SOCKET_JOIN_GROUP);
}

int rs_socket_set_membership(rs_socket *socket, const char *group, const char *interface_name,
                             rs_socket_membership membership)
{
    return set_membership(socket, group, interface_name, NULL, membership);
}

int rs_socket_set_source_membership(rs_socket *socket, const char *group,
                                    const char *interface_name, const char *source,
                                    rs_socket_membership membership)
{
    if (!source) {
        /* Checked first only for the socket: NULL is not "any source". */
        if (check_udp_setter(socket) != 0) {
            return -1;
        }
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    return set_membership(socket, group, interface_name, source, membership);
}

int rs_socket_set_multicast_interface(rs_socket *socket, const char *interface_name)
{
    if (check_udp_setter(socket) != 0) {
        return -1;
    }
    struct rs__udp_membership m;
    memset(&m, 0, sizeof m);
    if (parse_interface(socket->options.domain, interface_name, &m) != 0) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    return rs__backend_socket_set_multicast_interface(socket, &m);
}

static int set_int(rs_socket *socket, enum rs__udp_option option, int value, int min, int max)
{
    if (check_udp_setter(socket) != 0) {
        return -1;
    }
    if (value < min || value > max) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    return rs__backend_socket_set_udp_option(socket, option, value);
}

static int get_int(const rs_socket *socket, enum rs__udp_option option, int *value)
{
    if (!socket || !value) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (check_udp(socket) != 0) {
        return -1;
    }
    return rs__backend_socket_get_udp_option(socket, option, value);
}

static int get_bool(const rs_socket *socket, enum rs__udp_option option, bool *on)
{
    if (!on) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    int value = 0;
    if (get_int(socket, option, &value) != 0) {
        return -1;
    }
    *on = value != 0;
    return 0;
}

int rs_socket_set_multicast_ttl(rs_socket *socket, int ttl)
{
    return set_int(socket, RS__UDP_MULTICAST_TTL, ttl, 0, 255);
}

int rs_socket_get_multicast_ttl(const rs_socket *socket, int *ttl)
{
    return get_int(socket, RS__UDP_MULTICAST_TTL, ttl);
}

int rs_socket_set_multicast_loop(rs_socket *socket, bool on)
{
    return set_int(socket, RS__UDP_MULTICAST_LOOP, on ? 1 : 0, 0, 1);
}

int rs_socket_get_multicast_loop(const rs_socket *socket, bool *on)
{
    return get_bool(socket, RS__UDP_MULTICAST_LOOP, on);
}

int rs_socket_set_broadcast(rs_socket *socket, bool on)
{
    return set_int(socket, RS__UDP_BROADCAST, on ? 1 : 0, 0, 1);
}

int rs_socket_get_broadcast(const rs_socket *socket, bool *on)
{
    return get_bool(socket, RS__UDP_BROADCAST, on);
}

int rs_socket_set_ttl(rs_socket *socket, int ttl)
{
    return set_int(socket, RS__UDP_TTL, ttl, 1, 255);
}

int rs_socket_get_ttl(const rs_socket *socket, int *ttl)
{
    return get_int(socket, RS__UDP_TTL, ttl);
}
