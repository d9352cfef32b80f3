/*
 * Port, address and interface-name validation, IPv6 text, and the one
 * conversion between endpoints and socket addresses both backends use. The
 * address parsers and formatters are written by hand rather than on
 * inet_pton / inet_ntop, whose treatment of leading zeros in a dotted quad
 * and whose IPv6 output differ between C libraries and Windows: both
 * backends must accept, reject and print exactly the same strings.
 */
#ifndef _WIN32
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* if_nametoindex */
#endif
#endif

#include "address.h"

#include "error.h"

#include <reseau/common.h>

#include <stddef.h>
#include <string.h>

#ifdef _WIN32
/* <winsock2.h> must come before <windows.h> (pulled in by <iphlpapi.h>),
 * which would otherwise include the old <winsock.h>. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>
#include <afunix.h>
#else
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

/* RS_LOCAL_NAMED_PIPE (meson.build): LOCAL endpoints are named pipes (the
 * IOCP backend) rather than AF_UNIX socket paths (the libevent backend, on
 * every system, Windows included). */
#if RS_LOCAL_NAMED_PIPE
/* Named pipes live under this prefix; CreateNamedPipe rejects other names. */
static const char pipe_prefix[] = "\\\\.\\pipe\\";
/* CreateNamedPipe's limit on the whole name, prefix included. */
#define RS__PIPE_NAME_MAX 256
/* An endpoint address holds at most RS_ADDRESS_MAX_LEN - 1 characters, so the
 * NUL-termination check already enforces the pipe-name limit. */
_Static_assert(RS_ADDRESS_MAX_LEN - 1 <= RS__PIPE_NAME_MAX,
               "an endpoint address could exceed the named-pipe limit");
#else
/* The longest path a sockaddr_un can hold with its terminating NUL (103 on
 * macOS, 107 on Linux). */
#define RS__LOCAL_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#endif

/* strlen(s) if s has a NUL among its first max bytes, else max. Reads no
 * byte past the NUL, so a short string in a short buffer is safe. */
static size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0') {
        n++;
    }
    return n;
}

static bool is_ip_domain(rs_socket_domain domain)
{
    return domain == RS_SOCKET_IPV4 || domain == RS_SOCKET_IPV6;
}

static bool is_known_domain(rs_socket_domain domain)
{
    return is_ip_domain(domain) || domain == RS_SOCKET_LOCAL;
}

int rs_socket_validate_port_for_connect(uint32_t port, rs_socket_domain domain)
{
    if (!is_known_domain(domain)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    /* Port 0 cannot be connected to; LOCAL endpoints have no port at all. */
    if (is_ip_domain(domain) && (port == 0 || port > 65535)) {
        return rs_raise(RS_ERROR_INVALID_PORT);
    }
    return 0;
}

int rs_socket_validate_port_for_bind(uint32_t port, rs_socket_domain domain)
{
    if (!is_known_domain(domain)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    /* Port 0 asks the OS to pick one. */
    if (is_ip_domain(domain) && port > 65535) {
        return rs_raise(RS_ERROR_INVALID_PORT);
    }
    return 0;
}

/* ASCII only: the C library's isdigit/isxdigit follow the locale. */
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Strict dotted quad that runs to the end of text. Shared by the IPv4 parser
 * and the IPv6 parser's embedded-IPv4 tail. */
static bool parse_dotted_quad(const char *text, uint8_t out[4])
{
    const char *p = text;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && *p++ != '.') {
            return false;
        }
        if (!is_digit(*p)) {
            return false;
        }
        /* "0" is a part; "01" is not: some parsers read it as octal. */
        if (*p == '0' && is_digit(p[1])) {
            return false;
        }
        unsigned value = 0;
        int digits = 0;
        while (is_digit(*p)) {
            if (++digits > 3) {
                return false;
            }
            value = value * 10 + (unsigned)(*p++ - '0');
        }
        if (value > 255) {
            return false;
        }
        out[part] = (uint8_t)value;
    }
    return *p == '\0';
}

int rs_parse_ipv4_address(const char *text, uint8_t out[4])
{
    if (!text || !out) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    /* Parsed into a copy: out is left untouched on failure. */
    uint8_t bytes[4];
    if (!parse_dotted_quad(text, bytes)) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    memcpy(out, bytes, sizeof bytes);
    return 0;
}

/* RFC 4291 section 2.2 text forms into eight 16-bit groups. */
static bool parse_ipv6_groups(const char *text, uint16_t groups[8])
{
    const char *p = text;
    int count = 0; /* groups parsed so far */
    int gap = -1;  /* index of the groups "::" stands for, -1 if none */

    /* A leading colon is only valid as the start of "::". */
    if (p[0] == ':') {
        if (p[1] != ':') {
            return false;
        }
        gap = 0;
        p += 2;
    }
    while (*p != '\0') {
        const char *start = p;
        unsigned value = 0;
        int digits = 0;
        int v;
        while ((v = hex_value(*p)) >= 0) {
            if (++digits > 4) {
                return false;
            }
            value = value * 16 + (unsigned)v;
            p++;
        }
        /* No group where one must be: ":::", or a stray character. */
        if (digits == 0) {
            return false;
        }
        if (*p == '.') {
            /* An embedded dotted quad fills the last two groups and must end
             * the text; parse_dotted_quad checks that. */
            uint8_t quad[4];
            if (count > 6 || !parse_dotted_quad(start, quad)) {
                return false;
            }
            groups[count++] = (uint16_t)(quad[0] << 8 | quad[1]);
            groups[count++] = (uint16_t)(quad[2] << 8 | quad[3]);
            break;
        }
        if (count == 8) {
            return false;
        }
        groups[count++] = (uint16_t)value;
        if (*p == '\0') {
            break;
        }
        /* Anything but ':' here (a '%' zone id, ']', a space) is invalid. */
        if (*p++ != ':') {
            return false;
        }
        if (*p == ':') {
            if (gap >= 0) {
                return false;
            }
            gap = count;
            p++;
        } else if (*p == '\0') {
            /* A single colon must be followed by a group. */
            return false;
        }
    }

    if (gap < 0) {
        return count == 8;
    }
    /* "::" stands for at least one zero group. */
    if (count > 7) {
        return false;
    }
    int zeros = 8 - count;
    memmove(&groups[gap + zeros], &groups[gap], (size_t)(count - gap) * sizeof groups[0]);
    for (int i = gap; i < gap + zeros; i++) {
        groups[i] = 0;
    }
    return true;
}

int rs_parse_ipv6_address(const char *text, uint8_t out[16])
{
    if (!text || !out) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    uint16_t groups[8];
    if (!parse_ipv6_groups(text, groups)) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    for (int i = 0; i < 8; i++) {
        out[2 * i] = (uint8_t)(groups[i] >> 8);
        out[2 * i + 1] = (uint8_t)(groups[i] & 0xff);
    }
    return 0;
}

unsigned int rs__network_interface_index(const char *name)
{
    if (!name) {
        return 0;
    }
    size_t len = bounded_len(name, RS_NETWORK_INTERFACE_NAME_MAX);
    if (len == 0 || len == RS_NETWORK_INTERFACE_NAME_MAX) {
        return 0;
    }
    unsigned int index = if_nametoindex(name);
#ifdef _WIN32
    /* Windows names interfaces by NDIS type and number ("loopback_0",
     * "ethernet_32768"), and the lookup may parse the number leniently (Wine
     * maps "loopback_01", "loopback_1x" and "loopback_1 " to loopback_1;
     * Windows documents no rule). Only the name the interface reports back
     * is accepted, so a name passes exactly when it would on POSIX. */
    NET_LUID luid;
    char canonical[RS_NETWORK_INTERFACE_NAME_MAX];
    if (index == 0 || ConvertInterfaceIndexToLuid(index, &luid) != NO_ERROR ||
        ConvertInterfaceLuidToNameA(&luid, canonical, sizeof canonical) != NO_ERROR ||
        strcmp(canonical, name) != 0) {
        return 0;
    }
#endif
    return index;
}

bool rs_is_network_interface_name_valid(const char *name)
{
    return rs__network_interface_index(name) != 0;
}

static int validate_local_path(const char *path, size_t len)
{
    if (len == 0) {
        return rs_raise(RS_ERROR_FILE_INVALID_PATH);
    }
#if RS_LOCAL_NAMED_PIPE
    size_t prefix_len = sizeof pipe_prefix - 1;
    /* The object manager matches "\\.\pipe\" without regard to case. */
    if (len <= prefix_len || _strnicmp(path, pipe_prefix, prefix_len) != 0) {
        return rs_raise(RS_ERROR_FILE_INVALID_PATH);
    }
    /* The pipe's own name may hold any character but a backslash. */
    if (strchr(path + prefix_len, '\\')) {
        return rs_raise(RS_ERROR_FILE_INVALID_PATH);
    }
#else
    (void)path;
    if (len > RS__LOCAL_PATH_MAX) {
        return rs_raise(RS_ERROR_FILE_INVALID_PATH);
    }
#endif
    return 0;
}

/* The zone of a scoped IPv6 literal: a decimal interface index, or the name
 * of an interface of this host. 0 if it is neither. */
static uint32_t parse_zone(const char *zone)
{
    if (is_digit(zone[0])) {
        uint64_t value = 0;
        for (const char *p = zone; *p; p++) {
            if (!is_digit(*p) || (p == zone && *p == '0' && p[1] != '\0')) {
                return 0;
            }
            value = value * 10 + (uint64_t)(*p - '0');
            if (value > UINT32_MAX) {
                return 0;
            }
        }
        return (uint32_t)value;
    }
    return rs__network_interface_index(zone);
}

int rs_parse_ipv6_scoped_address(const char *text, uint8_t out[16], uint32_t *scope_id)
{
    if (!text || !out || !scope_id) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    const char *percent = strchr(text, '%');
    size_t len = percent ? (size_t)(percent - text) : strlen(text);
    /* The longest literal is 45 characters; a longer head is invalid. */
    char head[RS_IPV6_ADDRESS_TEXT_MAX];
    if (len >= sizeof head) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    memcpy(head, text, len);
    head[len] = '\0';
    uint32_t scope = 0;
    if (percent) {
        scope = parse_zone(percent + 1);
        if (scope == 0) {
            return rs_raise(RS_ERROR_INVALID_ADDRESS);
        }
    }
    uint16_t groups[8];
    if (!parse_ipv6_groups(head, groups)) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    for (int i = 0; i < 8; i++) {
        out[2 * i] = (uint8_t)(groups[i] >> 8);
        out[2 * i + 1] = (uint8_t)(groups[i] & 0xff);
    }
    *scope_id = scope;
    return 0;
}

/* Appends the lowercase hex of one group, without leading zeros. */
static char *format_group(char *p, unsigned value)
{
    static const char hex[] = "0123456789abcdef";
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
        unsigned nibble = (value >> shift) & 0xf;
        if (nibble || started || shift == 0) {
            *p++ = hex[nibble];
            started = true;
        }
    }
    return p;
}

int rs_format_ipv6_address(const uint8_t address[16], uint32_t scope_id, char *out, size_t size)
{
    if (!address || !out || size < RS_IPV6_ADDRESS_TEXT_MAX) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    unsigned groups[8];
    for (int i = 0; i < 8; i++) {
        groups[i] = (unsigned)address[2 * i] << 8 | address[2 * i + 1];
    }
    /* RFC 5952 section 4.2: "::" replaces the longest run of two or more
     * zero groups, the first one if two runs are as long. */
    int best = -1;
    int best_len = 1;
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && groups[j] == 0) {
            j++;
        }
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j : i + 1;
    }
    /* An IPv4-mapped address (::ffff:0:0/96) ends in its dotted quad
     * (RFC 5952 section 5), as the IPv4 client of a dual-stack listener. */
    bool mapped = best == 0 && best_len == 5 && groups[5] == 0xffff;
    int end = mapped ? 6 : 8;
    char *p = out;
    for (int i = 0; i < end; i++) {
        if (i == best) {
            *p++ = ':';
            *p++ = ':';
            i += best_len - 1;
            continue;
        }
        if (i > 0 && i != best + best_len) {
            *p++ = ':';
        }
        p = format_group(p, groups[i]);
    }
    if (mapped) {
        *p++ = ':';
        p += rs__format_ipv4(address + 12, p);
    }
    if (scope_id != 0) {
        /* Always the index: it is what the socket address holds, it prints
         * the same on every system, and it stays meaningful if the interface
         * is renamed. */
        char digits[10];
        int n = 0;
        do {
            digits[n++] = (char)('0' + scope_id % 10);
            scope_id /= 10;
        } while (scope_id);
        *p++ = '%';
        while (n) {
            *p++ = digits[--n];
        }
    }
    *p = '\0';
    return (int)(p - out);
}

/* Writes the socket address of a parsed IPv4 (4 bytes) or IPv6 (16 bytes,
 * with its scope id) address and port into zeroed storage; returns its
 * length. */
static size_t ip_sockaddr(void *out, rs_socket_domain domain, const uint8_t *bytes,
                          uint32_t scope_id, uint32_t port)
{
    if (domain == RS_SOCKET_IPV4) {
        struct sockaddr_in *sin = out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, bytes, 4);
        return sizeof *sin;
    }
    struct sockaddr_in6 *sin6 = out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    memcpy(&sin6->sin6_addr, bytes, 16);
    sin6->sin6_scope_id = scope_id;
    return sizeof *sin6;
}

/* The IPv4 / IPv6 checks of rs__endpoint_validate (the length already
 * checked), with what the parse found: the address and the scope id. */
static int validate_ip(const rs_socket_endpoint *ep, rs_socket_domain domain, bool for_bind,
                       uint8_t bytes[16], uint32_t *scope_id)
{
    *scope_id = 0;
    int rc = domain == RS_SOCKET_IPV4 ? rs_parse_ipv4_address(ep->address, bytes)
                                      : rs_parse_ipv6_scoped_address(ep->address, bytes, scope_id);
    if (rc != 0) {
        return rc;
    }
    /* A link-local address (fe80::/10) is ambiguous without its zone (RFC
     * 4007 section 6): Linux refuses it (EINVAL) where Windows picks an
     * interface, so both backends refuse it here. */
    if (domain == RS_SOCKET_IPV6 && bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80 &&
        *scope_id == 0) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    return for_bind ? rs_socket_validate_port_for_bind(ep->port, domain)
                    : rs_socket_validate_port_for_connect(ep->port, domain);
}

int rs__endpoint_validate(const rs_socket_endpoint *ep, rs_socket_domain domain, bool for_bind)
{
    if (!ep || !is_known_domain(domain)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    size_t len = bounded_len(ep->address, RS_ADDRESS_MAX_LEN);
    if (len == RS_ADDRESS_MAX_LEN) {
        /* A LOCAL address is a path: one that does not end within the
         * endpoint is too long to be one, as on every backend. */
        return rs_raise(domain == RS_SOCKET_LOCAL ? RS_ERROR_FILE_INVALID_PATH
                                                  : RS_ERROR_INVALID_ADDRESS);
    }
    if (domain == RS_SOCKET_LOCAL) {
        return validate_local_path(ep->address, len);
    }
    uint8_t bytes[16];
    uint32_t scope_id;
    return validate_ip(ep, domain, for_bind, bytes, &scope_id);
}

int rs__endpoint_validate_ip(const rs_socket_endpoint *ep, rs_socket_domain domain, bool for_bind,
                             struct rs__sockaddr_ip *out, size_t *len)
{
    if (!ep || (domain != RS_SOCKET_IPV4 && domain != RS_SOCKET_IPV6)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (bounded_len(ep->address, RS_ADDRESS_MAX_LEN) == RS_ADDRESS_MAX_LEN) {
        return rs_raise(RS_ERROR_INVALID_ADDRESS);
    }
    uint8_t bytes[16];
    uint32_t scope_id;
    if (validate_ip(ep, domain, for_bind, bytes, &scope_id) != 0) {
        return -1;
    }
    memset(out, 0, sizeof *out);
    *len = ip_sockaddr(out->u.bytes, domain, bytes, scope_id, ep->port);
    return 0;
}

size_t rs__format_ipv4(const uint8_t address[4], char out[16])
{
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = address[i];
        if (v >= 100) {
            *p++ = (char)('0' + v / 100);
        }
        if (v >= 10) {
            *p++ = (char)('0' + v / 10 % 10);
        }
        *p++ = (char)('0' + v % 10);
        *p++ = i < 3 ? '.' : '\0';
    }
    return (size_t)(p - out - 1);
}

/* ---- socket addresses ---- */

int rs__sockaddr_from_endpoint(rs_socket_domain domain, const rs_socket_endpoint *ep,
                               struct sockaddr_storage *out, size_t *len)
{
    memset(out, 0, sizeof *out);
    switch (domain) {
    case RS_SOCKET_IPV4: {
        uint8_t bytes[4];
        if (rs_parse_ipv4_address(ep->address, bytes) != 0) {
            return -1;
        }
        *len = ip_sockaddr(out, domain, bytes, 0, ep->port);
        return 0;
    }
    case RS_SOCKET_IPV6: {
        uint8_t bytes[16];
        uint32_t scope_id;
        if (rs_parse_ipv6_scoped_address(ep->address, bytes, &scope_id) != 0) {
            return -1;
        }
        *len = ip_sockaddr(out, domain, bytes, scope_id, ep->port);
        return 0;
    }
    case RS_SOCKET_LOCAL: {
#if RS_LOCAL_NAMED_PIPE
        /* A named pipe has no socket address. */
        break;
#else
        struct sockaddr_un *sun = (struct sockaddr_un *)out;
        size_t n = bounded_len(ep->address, RS_ADDRESS_MAX_LEN);
        if (n == 0 || n > RS__LOCAL_PATH_MAX) {
            return rs_raise(RS_ERROR_FILE_INVALID_PATH);
        }
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, ep->address, n + 1);
        *len = sizeof *sun;
        return 0;
#endif
    }
    }
    return rs_raise(RS_ERROR_INVALID_ARGUMENT);
}

_Static_assert(sizeof(struct sockaddr_in6) <= RS__SOCKADDR_IP_MAX &&
                   sizeof(struct sockaddr_in) <= RS__SOCKADDR_IP_MAX,
               "struct rs__sockaddr_ip cannot hold an IP socket address");

int rs__sockaddr_ip_from_endpoint(rs_socket_domain domain, const rs_socket_endpoint *ep,
                                  struct rs__sockaddr_ip *out, size_t *len)
{
    if (domain != RS_SOCKET_IPV4 && domain != RS_SOCKET_IPV6) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    struct sockaddr_storage ss;
    if (rs__sockaddr_from_endpoint(domain, ep, &ss, len) != 0) {
        return -1;
    }
    memcpy(out->u.bytes, &ss, *len);
    return 0;
}

void rs__endpoint_from_sockaddr(const struct sockaddr *sa, size_t len, rs_socket_endpoint *ep)
{
    memset(ep, 0, sizeof *ep);
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        rs__format_ipv4((const uint8_t *)&sin->sin_addr, ep->address);
        ep->port = ntohs(sin->sin_port);
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        rs_format_ipv6_address((const uint8_t *)&sin6->sin6_addr, sin6->sin6_scope_id, ep->address,
                               sizeof ep->address);
        ep->port = ntohs(sin6->sin6_port);
    }
#if !RS_LOCAL_NAMED_PIPE
    else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
        size_t offset = offsetof(struct sockaddr_un, sun_path);
        /* An unnamed peer (the client end of a Unix socket) has no path. */
        if (len > offset) {
            size_t n = bounded_len(sun->sun_path, len - offset);
            if (n >= sizeof ep->address) {
                n = sizeof ep->address - 1;
            }
            memcpy(ep->address, sun->sun_path, n);
        }
    }
#endif
}

bool rs__sockaddr_ipv4(const struct sockaddr *sa, size_t len, uint8_t address[4], uint16_t *port)
{
    if (sa->sa_family != AF_INET || len < sizeof(struct sockaddr_in)) {
        return false;
    }
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    memcpy(address, &sin->sin_addr, 4);
    *port = ntohs(sin->sin_port);
    return true;
}
