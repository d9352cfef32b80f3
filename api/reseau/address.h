/** @file
 * reseau: socket addresses: domains, endpoints, and their validation (ports,
 * strict IPv4/IPv6 literals, IPv6 zones, interface names), and the IPv6 text
 * the library reports. Any thread; the library need not be initialised.
 */
#ifndef RESEAU_ADDRESS_H
#define RESEAU_ADDRESS_H

#include <reseau/common.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Address family of a socket. */
typedef enum rs_socket_domain {
    RS_SOCKET_IPV4 = 0, /**< IPv4 */
    RS_SOCKET_IPV6,     /**< IPv6 */
    RS_SOCKET_LOCAL,    /**< Unix-domain socket (POSIX) or named pipe (Windows) */
} rs_socket_domain;

/** Longest interface name, including the terminating NUL (IFNAMSIZ). */
#define RS_NETWORK_INTERFACE_NAME_MAX 16
/** Longest endpoint address, including the NUL: the largest of an IPv6
 * literal, a sun_path and a pipe name. */
#define RS_ADDRESS_MAX_LEN 256

/** An address and port to bind or connect to. */
typedef struct rs_socket_endpoint {
    /** IPv4 dotted quad; IPv6 literal (no brackets), optionally with the
     * zone of a scoped (link-local) address: "fe80::1%lo" (an interface
     * name) or "fe80::1%1" (an interface index), see
     * rs_parse_ipv6_scoped_address; or for LOCAL a path (POSIX, at most
     * sizeof(sun_path) - 1 bytes) or a pipe name (Windows,
     * \\\\.\\pipe\\NAME). Addresses the library reports (bound, remote)
     * are in the form rs_format_ipv6_address writes. */
    char address[RS_ADDRESS_MAX_LEN];
    /** 1..65535 to connect, 0..65535 to bind (0: the OS picks). Ignored for LOCAL. */
    uint32_t port;
} rs_socket_endpoint;

/** 0 if port can be connected to in this domain: 1..65535 for IPv4/IPv6, any
 * for LOCAL. Else RS_ERROR_INVALID_PORT. */
RS_API int rs_socket_validate_port_for_connect(uint32_t port, rs_socket_domain domain);
/** 0 if port can be bound: 0..65535 for IPv4/IPv6, any for LOCAL. */
RS_API int rs_socket_validate_port_for_bind(uint32_t port, rs_socket_domain domain);
/** Strict dotted quad: four decimal parts 0..255, no leading zeros, nothing else. */
RS_API int rs_parse_ipv4_address(const char *text, uint8_t out[4]);
/** RFC 4291 text form: hex groups, one "::", optional trailing dotted quad; no
 * zone (see rs_parse_ipv6_scoped_address). */
RS_API int rs_parse_ipv6_address(const char *text, uint8_t out[16]);

/** Room for any IPv6 text rs_parse_ipv6_scoped_address reads back from
 * rs_format_ipv6_address, zone and NUL included. */
#define RS_IPV6_ADDRESS_TEXT_MAX 57

/**
 * An IPv6 literal as rs_parse_ipv6_address reads it, optionally followed by
 * "%ZONE" (RFC 4007 section 11): ZONE is a decimal interface index
 * (1..4294967295, no leading zero) or the name of an interface of this host
 * (rs_is_network_interface_name_valid), turned into its index. *scope_id is
 * that index, 0 without a zone. out and *scope_id are left untouched on
 * failure. Errors: RS_ERROR_INVALID_ARGUMENT (a NULL argument),
 * RS_ERROR_INVALID_ADDRESS (not a literal, empty zone, index 0 or out of
 * range, no interface of that name).
 */
RS_API int rs_parse_ipv6_scoped_address(const char *text, uint8_t out[16], uint32_t *scope_id);

/**
 * Writes the RFC 5952 text of address (lowercase, the longest run of zero
 * groups as "::", an IPv4-mapped address as "::ffff:a.b.c.d") and, when
 * scope_id is not 0, "%" and the decimal scope id, always the index (never
 * an interface name: the same text on every system), then a NUL. size must
 * be at least RS_IPV6_ADDRESS_TEXT_MAX. Returns the length written (without
 * the NUL). Errors: RS_ERROR_INVALID_ARGUMENT (NULL, size too small).
 */
RS_API int rs_format_ipv6_address(const uint8_t address[16], uint32_t scope_id, char *out,
                                  size_t size);
/** True if name is a non-empty interface name that fits and exists on this host. */
RS_API bool rs_is_network_interface_name_valid(const char *name);

#ifdef __cplusplus
}
#endif

#endif
