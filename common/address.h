/*
 * Endpoint validation shared by common/socket.c and the backends, so that a
 * malformed endpoint fails with the same code on every backend before any OS
 * call is made.
 */
#ifndef RS_COMMON_ADDRESS_H
#define RS_COMMON_ADDRESS_H

#include <reseau/address.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The system's socket address types; only backends, which include the
 * system headers, dereference them. */
struct sockaddr;
struct sockaddr_storage;

/*
 * 0 if ep can be bound (for_bind) or connected to in domain; otherwise raises
 * and returns -1. Checks, in this order: RS_ERROR_INVALID_ARGUMENT (ep NULL,
 * unknown domain), RS_ERROR_INVALID_ADDRESS (address not NUL-terminated within
 * RS_ADDRESS_MAX_LEN; IPv4/IPv6: not a literal rs_parse_ipv4_address /
 * rs_parse_ipv6_address accepts), RS_ERROR_INVALID_PORT (IPv4/IPv6 only, the
 * rules of rs_socket_validate_port_for_bind / _for_connect),
 * RS_ERROR_FILE_INVALID_PATH (LOCAL: empty path; POSIX: longer than
 * sizeof(sun_path) - 1; Windows: not \\.\pipe\NAME with a non-empty NAME
 * free of backslashes). Any thread.
 */
int rs__endpoint_validate(const rs_socket_endpoint *ep, rs_socket_domain domain, bool for_bind);

/*
 * The index of the interface called exactly name (the name
 * rs_is_network_interface_name_valid accepts), for SO_BINDTODEVICE,
 * IP_BOUND_IF or IP_UNICAST_IF / IPV6_UNICAST_IF; 0 if name is NULL, empty,
 * not NUL-terminated within RS_NETWORK_INTERFACE_NAME_MAX or names no
 * interface. Raises nothing. Any thread.
 */
unsigned int rs__network_interface_index(const char *name);

/*
 * Writes the dotted quad of an IPv4 address (4 bytes, network order) and its
 * NUL to out, which has room for 16 bytes; returns the length. The inverse of
 * rs_parse_ipv4_address, by hand: libc's inet_ntop goes through sprintf,
 * which dominated the cost of a connection. Any thread.
 */
size_t rs__format_ipv4(const uint8_t address[4], char out[16]);

/*
 * The one conversion between endpoints and socket addresses, for both
 * backends. rs__sockaddr_from_endpoint fills out (zeroed first) and *len for
 * an endpoint rs__endpoint_validate accepted: IPv4, IPv6 with its scope id
 * (the zone of "fe80::1%lo" / "fe80::1%2"), and on POSIX LOCAL (a
 * sockaddr_un). Errors: RS_ERROR_INVALID_ADDRESS, RS_ERROR_FILE_INVALID_PATH,
 * RS_ERROR_INVALID_ARGUMENT (unknown domain; LOCAL on Windows, where a named
 * pipe has no socket address). rs__endpoint_from_sockaddr writes the text of
 * sa (len bytes, as accept or getsockname returned it) into ep (zeroed
 * first): a dotted quad, RFC 5952 IPv6 text ("::ffff:a.b.c.d" for an
 * IPv4-mapped address) with "%<index>" for a non-zero scope id, or a Unix
 * socket's path (empty for an unnamed one); other families leave ep empty.
 * Any thread.
 */
int rs__sockaddr_from_endpoint(rs_socket_domain domain, const rs_socket_endpoint *ep,
                               struct sockaddr_storage *out, size_t *len);
void rs__endpoint_from_sockaddr(const struct sockaddr *sa, size_t len, rs_socket_endpoint *ep);
/* An IPv4 socket address (len bytes of sa): its address (network order)
 * and port, true; false for any other family. Any thread. */
bool rs__sockaddr_ipv4(const struct sockaddr *sa, size_t len, uint8_t address[4], uint16_t *port);
/* Room for an IPv4 or IPv6 socket address (a sockaddr_in6 is 28 bytes on
 * every supported system; address.c checks it), aligned for either, so that
 * a request can carry its destination without the system's headers. */
#define RS__SOCKADDR_IP_MAX 28
struct rs__sockaddr_ip {
    union {
        uint64_t align;
        unsigned char bytes[RS__SOCKADDR_IP_MAX];
    } u;
};
/* rs__sockaddr_from_endpoint for an IPv4 or IPv6 endpoint (validated for
 * domain) into out, with its length in *len. Errors: those of
 * rs__sockaddr_from_endpoint, RS_ERROR_INVALID_ARGUMENT (LOCAL). Any thread. */
int rs__sockaddr_ip_from_endpoint(rs_socket_domain domain, const rs_socket_endpoint *ep,
                                  struct rs__sockaddr_ip *out, size_t *len);
/* rs__endpoint_validate of an IPv4 or IPv6 endpoint (the same checks, the
 * same errors; RS_ERROR_INVALID_ARGUMENT for LOCAL) that also writes its
 * socket address (rs__sockaddr_ip_from_endpoint's) from the same parse:
 * for a call that needs both (rs_socket_connect). Any thread. */
int rs__endpoint_validate_ip(const rs_socket_endpoint *ep, rs_socket_domain domain, bool for_bind,
                             struct rs__sockaddr_ip *out, size_t *len);

#endif
