/*
 * libFuzzer target: the strict address parsers and endpoint validation.
 * Invariants: no crash or sanitizer report; every failure raises a code the
 * headers document; reseau accepts exactly the literals glibc's inet_pton
 * accepts (glibc's rules are reseau's: four decimal parts without leading
 * zeros; RFC 4291 forms without a zone), with the same bytes; the canonical
 * text inet_ntop prints, and reseau's own RFC 5952 text, parse back to the
 * same bytes; a failed parse
 * leaves its output untouched. Native glibc builds only.
 */
#define _POSIX_C_SOURCE 200809L

#include "../common/address.h"

#include <reseau/reseau.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_ipv4(const char *text)
{
    uint8_t ours[4] = {0xee, 0xee, 0xee, 0xee};
    uint8_t theirs[4];
    int rc = rs_parse_ipv4_address(text, ours);
    bool libc_ok = inet_pton(AF_INET, text, theirs) == 1;
    if (rc != 0) {
        CHECK(rs_last_error() == RS_ERROR_INVALID_ADDRESS);
        CHECK(ours[0] == 0xee && ours[3] == 0xee); /* untouched on failure */
        CHECK(!libc_ok);
        return;
    }
    CHECK(libc_ok);
    CHECK(memcmp(ours, theirs, sizeof ours) == 0);
    char canonical[INET_ADDRSTRLEN];
    CHECK(inet_ntop(AF_INET, ours, canonical, sizeof canonical));
    uint8_t again[4];
    CHECK(rs_parse_ipv4_address(canonical, again) == 0);
    CHECK(memcmp(ours, again, sizeof ours) == 0);
}

static void check_ipv6(const char *text)
{
    uint8_t ours[16];
    uint8_t theirs[16];
    int rc = rs_parse_ipv6_address(text, ours);
    bool libc_ok = inet_pton(AF_INET6, text, theirs) == 1;
    if (rc != 0) {
        CHECK(rs_last_error() == RS_ERROR_INVALID_ADDRESS);
        CHECK(!libc_ok);
        return;
    }
    CHECK(libc_ok);
    CHECK(memcmp(ours, theirs, sizeof ours) == 0);
    char canonical[INET6_ADDRSTRLEN];
    CHECK(inet_ntop(AF_INET6, ours, canonical, sizeof canonical));
    uint8_t again[16];
    CHECK(rs_parse_ipv6_address(canonical, again) == 0);
    CHECK(memcmp(ours, again, sizeof ours) == 0);
    /* reseau's own text is RFC 5952 and parses back to the same bytes. */
    char text_ours[RS_IPV6_ADDRESS_TEXT_MAX];
    CHECK(rs_format_ipv6_address(ours, 0, text_ours, sizeof text_ours) > 0);
    CHECK(rs_parse_ipv6_address(text_ours, again) == 0);
    CHECK(memcmp(ours, again, sizeof ours) == 0);
}

static bool documented_endpoint_error(int code)
{
    return code == RS_ERROR_INVALID_ARGUMENT || code == RS_ERROR_INVALID_ADDRESS ||
           code == RS_ERROR_INVALID_PORT || code == RS_ERROR_FILE_INVALID_PATH;
}

/* The endpoint is built from the raw input: the address array may lack a
 * NUL, the port and the domain may be anything. */
static void check_endpoint(const uint8_t *data, size_t size)
{
    rs_socket_endpoint ep;
    memset(&ep, 0, sizeof ep);
    uint32_t port = 0;
    if (size >= sizeof port) {
        memcpy(&port, data, sizeof port);
        data += sizeof port;
        size -= sizeof port;
    }
    ep.port = port;
    memcpy(ep.address, data, size < sizeof ep.address ? size : sizeof ep.address);
    bool terminated = memchr(ep.address, 0, sizeof ep.address) != NULL;

    for (int domain = RS_SOCKET_IPV4; domain <= RS_SOCKET_LOCAL + 1; domain++) {
        for (int for_bind = 0; for_bind < 2; for_bind++) {
            int rc = rs__endpoint_validate(&ep, (rs_socket_domain)domain, for_bind);
            if (rc != 0) {
                CHECK(rc == -1 && documented_endpoint_error(rs_last_error()));
                continue;
            }
            CHECK(terminated && domain <= RS_SOCKET_LOCAL);
            uint8_t bytes[16];
            if (domain == RS_SOCKET_IPV4) {
                CHECK(rs_parse_ipv4_address(ep.address, bytes) == 0);
            } else if (domain == RS_SOCKET_IPV6) {
                uint32_t scope_id;
                CHECK(rs_parse_ipv6_scoped_address(ep.address, bytes, &scope_id) == 0);
            } else {
                CHECK(ep.address[0] != '\0');
            }
            if (domain != RS_SOCKET_LOCAL) {
                CHECK(port <= 65535 && (for_bind || port != 0));
            }
        }
    }
    CHECK(rs__endpoint_validate(NULL, RS_SOCKET_IPV4, true) == -1 &&
          rs_last_error() == RS_ERROR_INVALID_ARGUMENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parsers take C strings: the input up to its first NUL. */
    char text[512];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    check_ipv4(text);
    check_ipv6(text);
    check_endpoint(data, size);
    return 0;
}
