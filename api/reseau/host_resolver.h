/** @file
 * reseau: asynchronous host-name resolution.
 *
 * rs_resolve runs getaddrinfo (libc's, or ws2_32's on Windows: names are
 * ASCII by the validation rule below, so the wide-character GetAddrInfoW
 * would add nothing) on a worker thread
 * and delivers the result on the given loop's thread, never inside the call.
 */
#ifndef RESEAU_HOST_RESOLVER_H
#define RESEAU_HOST_RESOLVER_H

#include <reseau/event_loop.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest host name accepted (RFC 1035 presentation form, without the NUL). */
#define RS_HOST_NAME_MAX 255
/** Longest address text, with the NUL (INET6_ADDRSTRLEN). */
#define RS_HOST_ADDRESS_MAX 46

/** Family of a resolved address. */
typedef enum rs_address_family {
    RS_ADDRESS_IPV4 = 0, /**< IPv4 */
    RS_ADDRESS_IPV6,     /**< IPv6 */
} rs_address_family;

/** One resolved address. */
typedef struct rs_host_address {
    rs_address_family family;          /**< IPv4 or IPv6 */
    char address[RS_HOST_ADDRESS_MAX]; /**< numeric text, e.g. "127.0.0.1" or "::1" */
} rs_host_address;

/**
 * Called exactly once, on the loop thread. On success error_code is 0 and
 * addresses[0..count-1] are the results (IPv6 and IPv4, in the order the
 * system returned them, without duplicates); the array is valid only during
 * the call. On failure addresses is NULL and count 0; error_code is
 * RS_ERROR_DNS_QUERY_FAILED (the lookup failed or the name does not exist),
 * RS_ERROR_DNS_NO_ADDRESS (the name exists but has no IPv4/IPv6 address), or
 * RS_ERROR_EVENT_LOOP_SHUTDOWN (the loop was destroyed first: then the call
 * comes on the destroying thread).
 */
typedef void(rs_resolve_fn)(const char *host, int error_code, const rs_host_address *addresses,
                            size_t count, void *user_data);

/**
 * Starts resolving host; on_result runs later on loop's thread. Any thread.
 * Errors (nothing is started, no callback): RS_ERROR_LIBRARY_NOT_INITIALIZED,
 * RS_ERROR_INVALID_ARGUMENT (NULL loop, host or callback),
 * RS_ERROR_DNS_INVALID_NAME (empty, longer than RS_HOST_NAME_MAX, a label
 * longer than 63 bytes or empty, or a character other than letters, digits,
 * '-', '_', '.' and ':' for IPv6 literals), RS_ERROR_OUT_OF_MEMORY,
 * RS_ERROR_SYS_CALL_FAILURE (no worker thread).
 */
RS_API int rs_resolve(rs_event_loop *loop, const char *host, rs_resolve_fn *on_result,
                      void *user_data);

/** The name check rs_resolve applies; true if host would be accepted. */
RS_API bool rs_host_name_is_valid(const char *host);

#ifdef __cplusplus
}
#endif

#endif
