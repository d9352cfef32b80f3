/*
 * Address and error parity scenarios PA1-PA4 (test-scenarios.md; W16 and W21
 * in windows-checklist.md): IPv6 dual stack, scoped (link-local) IPv6
 * addresses, LOCAL connect errors, and the OS error tables of the backend
 * under test, row by row. Every expectation holds on both backends.
 */
#ifndef _WIN32
#define _GNU_SOURCE /* getifaddrs, IFF_UP, O_CLOEXEC */
#endif
#include "rs_test.h"
#include "socket_fixture.h"

#include "../common/address.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if RS_TEST_IOCP
#define WIN32_NO_STATUS
#include "../backends/iocp/iocp_backend.h"
#undef WIN32_NO_STATUS
#include <ntstatus.h>
#else
#include "../backends/libevent/le_backend.h"
#include <errno.h>
#endif
#ifdef _WIN32
#include <ws2ipdef.h>
#include <iphlpapi.h>
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>
#endif

static rs_socket_endpoint endpoint(const char *address, uint32_t port)
{
    rs_socket_endpoint ep;
    memset(&ep, 0, sizeof ep);
    snprintf(ep.address, sizeof ep.address, "%s", address);
    ep.port = port;
    return ep;
}

/* ---- a listener that keeps the first connection it accepts ---- */

struct pa_listener {
    rs_socket *socket;
    rs_socket_endpoint bound;
    struct rs_test_counter counter;
    rs_socket *accepted;
    long accept_calls;
};

static void pa_on_accept(rs_socket *listener, int error_code, rs_socket *new_socket,
                         void *user_data)
{
    (void)listener;
    struct pa_listener *l = user_data;
    rs_test_counter_lock(&l->counter);
    l->accept_calls++;
    if (error_code == 0 && !l->accepted) {
        l->accepted = new_socket;
        new_socket = NULL;
    }
    rs_test_counter_unlock_add(&l->counter, 1);
    if (new_socket) {
        rs_socket_destroy(new_socket);
    }
}

/* Binds options' stream socket to address port 0, listens and accepts on loop. */
static void pa_listen(struct pa_listener *l, rs_event_loop *loop, const rs_socket_options *options,
                      const char *address)
{
    memset(l, 0, sizeof *l);
    rs_test_counter_init(&l->counter);
    l->socket = rs_socket_new(options);
    assert_non_null(l->socket);
    rs_socket_endpoint ep = endpoint(address, 0);
    assert_int_equal(rs_socket_bind(l->socket, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(l->socket, &l->bound), 0);
    assert_int_equal(rs_socket_listen(l->socket, 8), 0);
    assert_int_equal(rs_socket_start_accept(l->socket, loop, pa_on_accept, l), 0);
}

static void pa_listener_stop(struct pa_listener *l)
{
    rs_socket_destroy(l->socket);
    if (l->accepted) {
        rs_socket_destroy(l->accepted);
    }
    rs_test_counter_clean_up(&l->counter);
}

/* ---- PA1: IPv6 dual stack ---- */

static void pa1_connect_ipv4_to_any6(rs_event_loop *loop, bool dual_stack)
{
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV6);
    options.ipv6_dual_stack = dual_stack;
    struct pa_listener l;
    pa_listen(&l, loop, &options, "::");
    assert_string_equal(l.bound.address, "::");

    rs_socket_options read_back;
    assert_int_equal(rs_socket_get_options(l.socket, &read_back), 0);
    assert_int_equal(read_back.ipv6_dual_stack, dual_stack);

    rs_socket_options v4 = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_peer *client = sk_peer_new(loop, &v4);
    rs_socket_endpoint target = endpoint("127.0.0.1", l.bound.port);
    int result = sk_peer_connect(client, &target);
    if (!dual_stack) {
        assert_string_equal(rs_error_name(result), rs_error_name(RS_ERROR_CONNECTION_REFUSED));
    } else {
        assert_string_equal(rs_error_name(result), rs_error_name(RS_ERROR_SUCCESS));
        SK_WAIT(&l, l.accepted != NULL, "the IPv4 client's connection");
        rs_socket_endpoint client_local;
        assert_int_equal(rs_socket_get_bound_address(client->socket, &client_local), 0);
        /* The IPv4 peer as the IPv6 socket sees it: IPv4-mapped, on both
         * backends. */
        rs_socket_endpoint remote;
        assert_int_equal(rs_socket_get_remote_address(l.accepted, &remote), 0);
        assert_string_equal(remote.address, "::ffff:127.0.0.1");
        assert_int_equal(remote.port, client_local.port);
        rs_socket_endpoint local;
        assert_int_equal(rs_socket_get_bound_address(l.accepted, &local), 0);
        assert_string_equal(local.address, "::ffff:127.0.0.1");
        assert_int_equal(local.port, l.bound.port);
        /* The mapped text is a valid IPv6 endpoint to connect back to. */
        assert_int_equal(rs__endpoint_validate(&remote, RS_SOCKET_IPV6, false), 0);
    }
    sk_peer_free(client);
    pa_listener_stop(&l);
}

static void test_pa1_v6only_default_refuses_ipv4(void **state)
{
    pa1_connect_ipv4_to_any6(*state, false);
}

static void test_pa1_dual_stack_accepts_ipv4_mapped(void **state)
{
    pa1_connect_ipv4_to_any6(*state, true);
}

static void test_pa1_dual_stack_fixed_for_the_socket(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV6);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    rs_socket_options other = options;
    other.ipv6_dual_stack = true;
    assert_fails_with(rs_socket_set_options(s, &other), RS_ERROR_INVALID_OPTIONS);
    rs_socket_options read_back;
    assert_int_equal(rs_socket_get_options(s, &read_back), 0);
    assert_false(read_back.ipv6_dual_stack);
    assert_int_equal(rs_socket_set_options(s, &options), 0);
    rs_socket_destroy(s);
}

/* ---- PA2: scoped IPv6 addresses ---- */

static void pa2_round_trip(const char *text, uint32_t scope, const char *printed)
{
    uint8_t bytes[16];
    uint32_t scope_id = 12345;
    if (rs_parse_ipv6_scoped_address(text, bytes, &scope_id) != 0) {
        fail_msg("\"%s\" did not parse: %s", text, rs_error_name(rs_last_error()));
    }
    assert_int_equal(scope_id, scope);
    char out[RS_IPV6_ADDRESS_TEXT_MAX];
    assert_int_equal(rs_format_ipv6_address(bytes, scope_id, out, sizeof out),
                     (int)strlen(printed));
    assert_string_equal(out, printed);
    /* What is printed parses back to the same address and scope. */
    uint8_t again[16];
    uint32_t scope_again = 0;
    assert_int_equal(rs_parse_ipv6_scoped_address(out, again, &scope_again), 0);
    assert_memory_equal(bytes, again, sizeof bytes);
    assert_int_equal(scope_again, scope);
}

static void test_pa2_scoped_text_parses_and_prints_back(void **state)
{
    (void)state;
    char loopback[RS_NETWORK_INTERFACE_NAME_MAX];
    if (!rs_test_loopback_interface(loopback, sizeof loopback)) {
        fail_msg("%s", "the OS reports no loopback interface");
    }
    uint32_t index = rs__network_interface_index(loopback);
    assert_true(index != 0);
    char numeric[32];
    snprintf(numeric, sizeof numeric, "fe80::1%%%u", (unsigned)index);

    pa2_round_trip("fe80::1%1", 1, "fe80::1%1");
    pa2_round_trip("fe80::1%4294967295", 4294967295u, "fe80::1%4294967295");
    char by_name[64];
    snprintf(by_name, sizeof by_name, "fe80::1%%%s", loopback);
    /* A name is read as its index; the index is what is printed. */
    pa2_round_trip(by_name, index, numeric);
    pa2_round_trip("FE80:0:0:0:0:0:0:1%1", 1, "fe80::1%1");

    /* RFC 5952 text without a zone. */
    pa2_round_trip("::", 0, "::");
    pa2_round_trip("::1", 0, "::1");
    pa2_round_trip("1::", 0, "1::");
    pa2_round_trip("2001:DB8:0:0:1:0:0:1", 0, "2001:db8::1:0:0:1");
    pa2_round_trip("2001:0:0:1:0:0:0:1", 0, "2001:0:0:1::1");
    pa2_round_trip("2001:db8:0:1:1:1:1:1", 0, "2001:db8:0:1:1:1:1:1");
    pa2_round_trip("1:2:3:4:5:6:7:8", 0, "1:2:3:4:5:6:7:8");
    pa2_round_trip("0:0:0:0:0:ffff:7f00:1", 0, "::ffff:127.0.0.1");
    pa2_round_trip("::ffff:10.0.0.1%1", 1, "::ffff:10.0.0.1%1");
    pa2_round_trip("0001:0db8::00ff", 0, "1:db8::ff");

    static const char *const bad[] = {
        "fe80::1%",    "fe80::1%0", "fe80::1%01", "fe80::1%4294967296", "fe80::1%no-such0",
        "fe80::1%1%1", "%1",        "fe80::1%1 ", "fe80:::1%1",         "fe80::1%abcdefghijklmnopq",
    };
    for (size_t i = 0; i < RS__ARRAY_LEN(bad); i++) {
        uint8_t untouched[16];
        memset(untouched, 0xee, sizeof untouched);
        uint32_t scope_id = 777;
        if (rs_parse_ipv6_scoped_address(bad[i], untouched, &scope_id) != -1) {
            fail_msg("\"%s\" parsed", bad[i]);
        }
        assert_string_equal(rs_error_name(rs_last_error()),
                            rs_error_name(RS_ERROR_INVALID_ADDRESS));
        assert_int_equal(untouched[0], 0xee);
        assert_int_equal(scope_id, 777);
    }
    /* The zone-free parser stays zone-free. */
    uint8_t bytes[16];
    assert_fails_with(rs_parse_ipv6_address("fe80::1%1", bytes), RS_ERROR_INVALID_ADDRESS);

    uint32_t scope_id;
    assert_fails_with(rs_parse_ipv6_scoped_address(NULL, bytes, &scope_id),
                      RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_parse_ipv6_scoped_address("::1", NULL, &scope_id),
                      RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_parse_ipv6_scoped_address("::1", bytes, NULL), RS_ERROR_INVALID_ARGUMENT);
    char small[RS_IPV6_ADDRESS_TEXT_MAX - 1];
    assert_fails_with(rs_format_ipv6_address(bytes, 0, small, sizeof small),
                      RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_format_ipv6_address(NULL, 0, numeric, RS_IPV6_ADDRESS_TEXT_MAX),
                      RS_ERROR_INVALID_ARGUMENT);

    /* Endpoints: a zone on IPv6 only. */
    rs_socket_endpoint ep = endpoint(by_name, 0);
    assert_int_equal(rs__endpoint_validate(&ep, RS_SOCKET_IPV6, true), 0);
    ep = endpoint("127.0.0.1%1", 80);
    assert_fails_with(rs__endpoint_validate(&ep, RS_SOCKET_IPV4, false), RS_ERROR_INVALID_ADDRESS);
    ep = endpoint("fe80::1%no-such0", 80);
    assert_fails_with(rs__endpoint_validate(&ep, RS_SOCKET_IPV6, false), RS_ERROR_INVALID_ADDRESS);
}

/* A link-local address of an interface of this host, as "fe80::...%index";
 * false if there is none. */
static bool pa2_find_link_local(char *out, size_t size)
{
    bool found = false;
#ifdef _WIN32
    ULONG len = 16 * 1024;
    IP_ADAPTER_ADDRESSES *list = NULL;
    ULONG rc = ERROR_BUFFER_OVERFLOW;
    for (int attempt = 0; attempt < 4 && rc == ERROR_BUFFER_OVERFLOW; attempt++) {
        free(list);
        list = malloc(len);
        assert_non_null(list);
        /* AF_UNSPEC: Wine 8 fails the AF_INET6 query. */
        rc = GetAdaptersAddresses(AF_UNSPEC, GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST, NULL,
                                  list, &len);
    }
    for (IP_ADAPTER_ADDRESSES *a = rc == NO_ERROR ? list : NULL; a && !found; a = a->Next) {
        if (a->OperStatus != IfOperStatusUp) {
            continue;
        }
        for (IP_ADAPTER_UNICAST_ADDRESS *u = a->FirstUnicastAddress; u && !found; u = u->Next) {
            if (u->Address.lpSockaddr->sa_family != AF_INET6) {
                continue;
            }
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)u->Address.lpSockaddr;
            const uint8_t *b = (const uint8_t *)&sin6->sin6_addr;
            if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
                /* The address's own scope id; Wine 8 leaves Ipv6IfIndex 0. */
                uint32_t scope =
                    sin6->sin6_scope_id ? (uint32_t)sin6->sin6_scope_id : (uint32_t)a->Ipv6IfIndex;
                char text[RS_IPV6_ADDRESS_TEXT_MAX];
                rs_format_ipv6_address(b, scope, text, sizeof text);
                snprintf(out, size, "%s", text);
                found = true;
            }
        }
    }
    free(list);
#else
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) == 0) {
        for (struct ifaddrs *ifa = list; ifa && !found; ifa = ifa->ifa_next) {
            if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET6 ||
                !(ifa->ifa_flags & IFF_UP)) {
                continue;
            }
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ifa->ifa_addr;
            const uint8_t *b = (const uint8_t *)&sin6->sin6_addr;
            if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
                char text[RS_IPV6_ADDRESS_TEXT_MAX];
                rs_format_ipv6_address(b, if_nametoindex(ifa->ifa_name), text, sizeof text);
                snprintf(out, size, "%s", text);
                found = true;
            }
        }
        freeifaddrs(list);
    }
#endif
    return found;
}

static void test_pa2_bind_and_connect_link_local(void **state)
{
    rs_event_loop *loop = *state;
    char address[RS_ADDRESS_MAX_LEN];
    if (!pa2_find_link_local(address, sizeof address)) {
        RS_TEST_SKIP("no interface of this host has a link-local (fe80::/10) address; the "
                     "loopback has none by default, and the suite does not add one");
        return;
    }
    print_message("[          ] link-local address: %s\n", address);
    const char *zone = strchr(address, '%');
    assert_non_null(zone);

    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV6);
    struct pa_listener l;
    pa_listen(&l, loop, &options, address);
    /* The bound address carries its scope. */
    assert_string_equal(l.bound.address, address);
    assert_true(l.bound.port != 0);

    struct sk_peer *client = sk_peer_new(loop, &options);
    rs_socket_endpoint target = endpoint(address, l.bound.port);
    assert_int_equal(sk_peer_connect(client, &target), 0);
    SK_WAIT(&l, l.accepted != NULL, "the link-local connection");

    rs_socket_endpoint ep;
    assert_int_equal(rs_socket_get_remote_address(client->socket, &ep), 0);
    assert_string_equal(ep.address, address);
    assert_int_equal(ep.port, l.bound.port);
    rs_socket_endpoint client_local;
    assert_int_equal(rs_socket_get_bound_address(client->socket, &client_local), 0);
    assert_string_equal(client_local.address, address);
    assert_int_equal(rs_socket_get_remote_address(l.accepted, &ep), 0);
    assert_string_equal(ep.address, address);
    assert_int_equal(ep.port, client_local.port);
    assert_int_equal(rs_socket_get_bound_address(l.accepted, &ep), 0);
    assert_string_equal(ep.address, address);
    assert_int_equal(ep.port, l.bound.port);

    sk_peer_free(client);
    pa_listener_stop(&l);

    /* Without its zone a link-local address names no interface (RFC 4007
     * section 6): refused before any system call, the same on both
     * backends. */
    char bare[RS_ADDRESS_MAX_LEN];
    snprintf(bare, sizeof bare, "%.*s", (int)(zone - address), address);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    rs_socket_endpoint unscoped = endpoint(bare, 0);
    int rc = rs_socket_bind(s, &unscoped);
    int err = rs_last_error();
    rs_socket_destroy(s);
    assert_int_equal(rc, -1);
    assert_string_equal(rs_error_name(err), rs_error_name(RS_ERROR_INVALID_ADDRESS));
}

static void test_pa2_scope_on_loopback(void **state)
{
    (void)state;
    /* A zone on an address that is not link-local: the loopback's own
     * index on ::1 binds, and the reported address has no zone (the scope
     * id of a global or loopback address is 0). */
    char loopback[RS_NETWORK_INTERFACE_NAME_MAX];
    if (!rs_test_loopback_interface(loopback, sizeof loopback)) {
        fail_msg("%s", "the OS reports no loopback interface");
    }
    char text[64];
    snprintf(text, sizeof text, "::1%%%s", loopback);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV6);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    rs_socket_endpoint ep = endpoint(text, 0);
    int rc = rs_socket_bind(s, &ep);
    if (rc != 0) {
        fail_msg("bind to %s: %s", text, rs_error_name(rs_last_error()));
    }
    rs_socket_endpoint bound;
    assert_int_equal(rs_socket_get_bound_address(s, &bound), 0);
    assert_string_equal(bound.address, "::1");
    rs_socket_destroy(s);
}

static void test_pa2_udp_remote_reported_as_formatted(void **state)
{
    rs_event_loop *loop = *state;
    /* A UDP socket's remote address is the one it connected to, reported in
     * the library's own text like every other address. */
    rs_socket_options options = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV6);
    rs_socket *server = rs_socket_new(&options);
    assert_non_null(server);
    rs_socket_endpoint ep = endpoint("::1", 0);
    assert_int_equal(rs_socket_bind(server, &ep), 0);
    rs_socket_endpoint bound;
    assert_int_equal(rs_socket_get_bound_address(server, &bound), 0);

    struct sk_peer *client = sk_peer_new(loop, &options);
    rs_socket_endpoint target = endpoint("0:0:0:0:0:0:0:0001", bound.port);
    assert_int_equal(sk_peer_connect(client, &target), 0);
    rs_socket_endpoint remote;
    assert_int_equal(rs_socket_get_remote_address(client->socket, &remote), 0);
    assert_string_equal(remote.address, "::1");
    assert_int_equal(remote.port, bound.port);
    sk_peer_free(client);
    rs_socket_destroy(server);
}

/* ---- PA3: LOCAL connect errors ---- */

static void pa3_expect_connect_refused(rs_event_loop *loop, const rs_socket_endpoint *ep)
{
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    struct sk_peer *p = sk_peer_new(loop, &options);
    assert_fails_with(rs_socket_connect(p->socket, ep, loop, sk_never_connected, NULL),
                      RS_ERROR_CONNECTION_REFUSED);
    /* Synchronous: no callback, no state change. */
    assert_true(rs_socket_is_open(p->socket));
    assert_null(rs_socket_get_event_loop(p->socket));
    sk_peer_free(p);
}

static void test_pa3_local_connect_missing_path(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_endpoint missing = sk_loopback(RS_SOCKET_LOCAL);
    pa3_expect_connect_refused(loop, &missing);
}

static void test_pa3_local_connect_closed_listener(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    struct pa_listener l;
    rs_socket_endpoint path = sk_loopback(RS_SOCKET_LOCAL);
    pa_listen(&l, loop, &options, path.address);
    pa_listener_stop(&l);
    /* POSIX: the socket file stays, nobody listens on it; Windows: the pipe
     * name went with its last instance. */
    pa3_expect_connect_refused(loop, &path);
    sk_remove_path(RS_SOCKET_LOCAL, &path);
}

static void test_pa3_local_connect_regular_file(void **state)
{
#if RS_TEST_IOCP
    (void)state;
    RS_TEST_SKIP("the named-pipe namespace holds only pipes: no file can stand at a pipe name");
#elif defined(_WIN32)
    rs_event_loop *loop = *state;
    rs_socket_endpoint path = sk_loopback(RS_SOCKET_LOCAL);
    FILE *f = fopen(path.address, "wb");
    assert_non_null(f);
    fclose(f);
    pa3_expect_connect_refused(loop, &path);
    remove(path.address);
#else
    rs_event_loop *loop = *state;
    rs_socket_endpoint path = sk_loopback(RS_SOCKET_LOCAL);
    int fd = open(path.address, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    pa3_expect_connect_refused(loop, &path);
    unlink(path.address);
#endif
}

/* A connect refused at once leaves nothing behind: the same socket still
 * binds, listens and accepts, and the accepted connection names the
 * listener's path for both of its ends. */
static void test_pa3_refused_socket_still_listens(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    rs_socket_endpoint path = sk_loopback(RS_SOCKET_LOCAL);
    struct pa_listener l;
    memset(&l, 0, sizeof l);
    rs_test_counter_init(&l.counter);
    l.socket = rs_socket_new(&options);
    assert_non_null(l.socket);
    assert_fails_with(rs_socket_connect(l.socket, &path, loop, sk_never_connected, NULL),
                      RS_ERROR_CONNECTION_REFUSED);
    assert_int_equal(rs_socket_bind(l.socket, &path), 0);
    assert_int_equal(rs_socket_listen(l.socket, 8), 0);
    assert_int_equal(rs_socket_start_accept(l.socket, loop, pa_on_accept, &l), 0);

    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &path), 0);
    rs_test_counter_await(&l.counter, 1, "the accept callback");
    assert_non_null(l.accepted);
    rs_socket_endpoint local, remote;
    assert_int_equal(rs_socket_get_bound_address(l.accepted, &local), 0);
    assert_int_equal(rs_socket_get_remote_address(l.accepted, &remote), 0);
    assert_string_equal(local.address, path.address);
    assert_string_equal(remote.address, path.address);
    sk_peer_free(client);
    pa_listener_stop(&l);
    sk_remove_path(RS_SOCKET_LOCAL, &path);
}

static void test_pa3_local_address_not_terminated(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_LOCAL);
    size_t used = strlen(ep.address);
    memset(ep.address + used, 'x', sizeof ep.address - used);

    struct sk_peer *p = sk_peer_new(loop, &options);
    assert_fails_with(rs_socket_connect(p->socket, &ep, loop, sk_never_connected, NULL),
                      RS_ERROR_FILE_INVALID_PATH);
    assert_fails_with(rs_socket_bind(p->socket, &ep), RS_ERROR_FILE_INVALID_PATH);
    assert_true(rs_socket_is_open(p->socket));
    sk_peer_free(p);

    /* An IP address that is not terminated stays an invalid address. */
    memset(ep.address, '1', sizeof ep.address);
    assert_fails_with(rs__endpoint_validate(&ep, RS_SOCKET_IPV4, true), RS_ERROR_INVALID_ADDRESS);
    assert_fails_with(rs__endpoint_validate(&ep, RS_SOCKET_IPV6, true), RS_ERROR_INVALID_ADDRESS);
}

/* ---- PA4: OS error tables, row by row ---- */

struct pa4_row {
    unsigned long os;
    int code;
};

/* Captures the log messages (RS_LOG_WARN and worse) through the public
 * callback. */
static char pa4_log[4096];
static rs__mutex pa4_log_lock;

static void pa4_on_log(rs_log_level level, const char *message, void *user_data)
{
    (void)level;
    (void)user_data;
    rs__mutex_lock(&pa4_log_lock);
    size_t used = strlen(pa4_log);
    snprintf(pa4_log + used, sizeof pa4_log - used, "%s\n", message);
    rs__mutex_unlock(&pa4_log_lock);
}

/* True if the log holds number as a whole token (no digit or hex digit on
 * either side). */
static bool pa4_logged(const char *number)
{
    rs__mutex_lock(&pa4_log_lock);
    bool found = false;
    size_t n = strlen(number);
    for (const char *p = strstr(pa4_log, number); p && !found; p = strstr(p + 1, number)) {
        bool before_ok = p == pa4_log || !strchr("0123456789abcdefABCDEFx", p[-1]);
        bool after_ok = p[n] == '\0' || !strchr("0123456789abcdefABCDEF", p[n]);
        found = before_ok && after_ok;
    }
    rs__mutex_unlock(&pa4_log_lock);
    return found;
}

static void pa4_log_start(void)
{
    rs__mutex_init(&pa4_log_lock);
    pa4_log[0] = '\0';
    rs_set_log(pa4_on_log, RS_LOG_WARN, NULL);
}

static void pa4_log_stop(void)
{
    rs_set_log(NULL, RS_LOG_NONE, NULL);
    rs__mutex_clean_up(&pa4_log_lock);
}

/* Every expected row maps as expected, and every row of the backend's table
 * is among the expected ones (a row added without a test fails here). */
#define PA4_CHECK_TABLE(expected, map, table_rows, table_count)                                    \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < RS__ARRAY_LEN(expected); i_++) {                                  \
            int got_ = map(expected[i_].os);                                                       \
            if (got_ != expected[i_].code) {                                                       \
                fail_msg("%s(%lu / 0x%lx): %s, expected %s", #map, expected[i_].os,                \
                         expected[i_].os, rs_error_name(got_), rs_error_name(expected[i_].code));  \
            }                                                                                      \
        }                                                                                          \
        for (size_t r_ = 0; r_ < (table_count); r_++) {                                            \
            bool listed_ = false;                                                                  \
            for (size_t i_ = 0; i_ < RS__ARRAY_LEN(expected); i_++) {                              \
                listed_ = listed_ || ((unsigned long)(table_rows)[r_].os == expected[i_].os &&     \
                                      (table_rows)[r_].code == expected[i_].code);                 \
            }                                                                                      \
            if (!listed_) {                                                                        \
                fail_msg("%s: row %lu -> %s is not tested", #map,                                  \
                         (unsigned long)(table_rows)[r_].os,                                       \
                         rs_error_name((table_rows)[r_].code));                                    \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#if RS_TEST_IOCP

static int pa4_win32(unsigned long os)
{
    return rs__iocp_error_from_win32((DWORD)os);
}
static int pa4_ntstatus(unsigned long os)
{
    return rs__iocp_error_from_ntstatus((uint32_t)os);
}
static int pa4_socket_ntstatus(unsigned long os)
{
    return rs__iocp_error_from_socket_ntstatus((uint32_t)os);
}
static int pa4_pipe_create(unsigned long os)
{
    return rs__iocp_error_from_pipe_create((DWORD)os);
}
static int pa4_pipe_open(unsigned long os)
{
    return rs__iocp_error_from_pipe_open((DWORD)os);
}

#ifndef ERROR_HANDLES_CLOSED
#define ERROR_HANDLES_CLOSED 676L
#endif

static void test_pa4_error_tables_row_by_row(void **state)
{
    (void)state;
    static const struct pa4_row win32[] = {
        {ERROR_SUCCESS, RS_ERROR_SUCCESS},
        {WSAEWOULDBLOCK, RS_ERROR_WOULD_BLOCK},
        {ERROR_NOT_ENOUGH_MEMORY, RS_ERROR_OUT_OF_MEMORY},
        {ERROR_OUTOFMEMORY, RS_ERROR_OUT_OF_MEMORY},
        {ERROR_INVALID_PARAMETER, RS_ERROR_INVALID_ARGUMENT},
        {WSAEINVAL, RS_ERROR_INVALID_ARGUMENT},
        {WSAEFAULT, RS_ERROR_INVALID_ARGUMENT},
        {ERROR_INVALID_HANDLE, RS_ERROR_INVALID_ARGUMENT},
        {WSAENOTSOCK, RS_ERROR_INVALID_ARGUMENT},
        {WSAEBADF, RS_ERROR_INVALID_ARGUMENT},
        {WSAEINTR, RS_ERROR_CANCELED},
        {ERROR_CONNECTION_REFUSED, RS_ERROR_CONNECTION_REFUSED},
        {WSAECONNREFUSED, RS_ERROR_CONNECTION_REFUSED},
        {ERROR_PORT_UNREACHABLE, RS_ERROR_CONNECTION_REFUSED},
        {ERROR_NETNAME_DELETED, RS_ERROR_CONNECTION_RESET},
        {WSAECONNRESET, RS_ERROR_CONNECTION_RESET},
        {ERROR_CONNECTION_ABORTED, RS_ERROR_CONNECTION_ABORTED},
        {WSAECONNABORTED, RS_ERROR_CONNECTION_ABORTED},
        {ERROR_REQUEST_ABORTED, RS_ERROR_CANCELED},
        {WSAENOTCONN, RS_ERROR_NOT_CONNECTED},
        {ERROR_CONNECTION_INVALID, RS_ERROR_NOT_CONNECTED},
        {WSAEDESTADDRREQ, RS_ERROR_NOT_CONNECTED},
        {WSAESHUTDOWN, RS_ERROR_SOCKET_CLOSED},
        {WSAEDISCON, RS_ERROR_SOCKET_CLOSED},
        {ERROR_GRACEFUL_DISCONNECT, RS_ERROR_SOCKET_CLOSED},
        {ERROR_BROKEN_PIPE, RS_ERROR_BROKEN_PIPE},
        {ERROR_NO_DATA, RS_ERROR_BROKEN_PIPE},
        {ERROR_PIPE_NOT_CONNECTED, RS_ERROR_BROKEN_PIPE},
        {WAIT_TIMEOUT, RS_ERROR_TIMEOUT},
        {ERROR_SEM_TIMEOUT, RS_ERROR_TIMEOUT},
        {ERROR_TIMEOUT, RS_ERROR_TIMEOUT},
        {WSAETIMEDOUT, RS_ERROR_TIMEOUT},
        {WSAENETRESET, RS_ERROR_TIMEOUT},
        {ERROR_OPERATION_ABORTED, RS_ERROR_CANCELED},
        {ERROR_HANDLES_CLOSED, RS_ERROR_CANCELED},
        {ERROR_CANCELLED, RS_ERROR_CANCELED},
        {WSAECANCELLED, RS_ERROR_CANCELED},
        {WSA_E_CANCELLED, RS_ERROR_CANCELED},
        {ERROR_ADDRESS_ALREADY_ASSOCIATED, RS_ERROR_ADDRESS_IN_USE},
        {WSAEADDRINUSE, RS_ERROR_ADDRESS_IN_USE},
        {WSAEADDRNOTAVAIL, RS_ERROR_ADDRESS_NOT_AVAILABLE},
        {ERROR_ADDRESS_NOT_ASSOCIATED, RS_ERROR_ADDRESS_NOT_AVAILABLE},
        {WSAEAFNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {WSAEPFNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {WSAEPROTONOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {WSAEPROTOTYPE, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {WSAESOCKTNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {WSAENOPROTOOPT, RS_ERROR_SOCKET_OPTION},
        {WSAEOPNOTSUPP, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {ERROR_NOT_SUPPORTED, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {ERROR_ACCESS_DENIED, RS_ERROR_NO_PERMISSION},
        {ERROR_NETWORK_ACCESS_DENIED, RS_ERROR_NO_PERMISSION},
        {WSAEACCES, RS_ERROR_NO_PERMISSION},
        {ERROR_NETWORK_UNREACHABLE, RS_ERROR_NETWORK_UNREACHABLE},
        {ERROR_PROTOCOL_UNREACHABLE, RS_ERROR_NETWORK_UNREACHABLE},
        {WSAENETUNREACH, RS_ERROR_NETWORK_UNREACHABLE},
        {WSAENETDOWN, RS_ERROR_NETWORK_UNREACHABLE},
        {ERROR_HOST_UNREACHABLE, RS_ERROR_HOST_UNREACHABLE},
        {ERROR_HOST_DOWN, RS_ERROR_HOST_UNREACHABLE},
        {WSAEHOSTUNREACH, RS_ERROR_HOST_UNREACHABLE},
        {WSAEHOSTDOWN, RS_ERROR_HOST_UNREACHABLE},
        {ERROR_MORE_DATA, RS_ERROR_MESSAGE_TOO_LARGE},
        {WSAEMSGSIZE, RS_ERROR_MESSAGE_TOO_LARGE},
        {ERROR_TOO_MANY_OPEN_FILES, RS_ERROR_TOO_MANY_HANDLES},
        {WSAEMFILE, RS_ERROR_TOO_MANY_HANDLES},
        {WSAENOBUFS, RS_ERROR_NO_BUFFER_SPACE},
        {ERROR_NO_SYSTEM_RESOURCES, RS_ERROR_NO_BUFFER_SPACE},
        {ERROR_FILE_NOT_FOUND, RS_ERROR_FILE_INVALID_PATH},
        {ERROR_PATH_NOT_FOUND, RS_ERROR_FILE_INVALID_PATH},
        {ERROR_INVALID_NAME, RS_ERROR_FILE_INVALID_PATH},
        {ERROR_BAD_PATHNAME, RS_ERROR_FILE_INVALID_PATH},
        {WSAELOOP, RS_ERROR_FILE_INVALID_PATH},
        {ERROR_FILENAME_EXCED_RANGE, RS_ERROR_NAME_TOO_LONG},
        {WSAENAMETOOLONG, RS_ERROR_NAME_TOO_LONG},
        {WSAEISCONN, RS_ERROR_INVALID_STATE},
        {WSAEALREADY, RS_ERROR_INVALID_STATE},
        {WSAEINPROGRESS, RS_ERROR_INVALID_STATE},
        {ERROR_CONNECTION_ACTIVE, RS_ERROR_INVALID_STATE},
        {WSASYSNOTREADY, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {WSAVERNOTSUPPORTED, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {WSAEPROVIDERFAILEDINIT, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {WSANOTINITIALISED, RS_ERROR_LIBRARY_NOT_INITIALIZED},
    };
    static const struct pa4_row ntstatus[] = {
        {STATUS_SUCCESS, RS_ERROR_SUCCESS},
        {STATUS_DEVICE_NOT_READY, RS_ERROR_WOULD_BLOCK},
        {STATUS_CANT_WAIT, RS_ERROR_WOULD_BLOCK},
        {STATUS_NO_MEMORY, RS_ERROR_OUT_OF_MEMORY},
        {STATUS_INVALID_PARAMETER, RS_ERROR_INVALID_ARGUMENT},
        {STATUS_ACCESS_VIOLATION, RS_ERROR_INVALID_ARGUMENT},
        {STATUS_BUFFER_TOO_SMALL, RS_ERROR_INVALID_ARGUMENT},
        {STATUS_INVALID_HANDLE, RS_ERROR_INVALID_ARGUMENT},
        {STATUS_OBJECT_TYPE_MISMATCH, RS_ERROR_INVALID_ARGUMENT},
        {STATUS_CONNECTION_REFUSED, RS_ERROR_CONNECTION_REFUSED},
        {STATUS_PORT_UNREACHABLE, RS_ERROR_CONNECTION_REFUSED},
        {STATUS_CONNECTION_RESET, RS_ERROR_CONNECTION_RESET},
        {STATUS_CONNECTION_DISCONNECTED, RS_ERROR_CONNECTION_RESET},
        {STATUS_REMOTE_DISCONNECT, RS_ERROR_CONNECTION_RESET},
        {STATUS_NETWORK_NAME_DELETED, RS_ERROR_CONNECTION_RESET},
        {STATUS_CONNECTION_ABORTED, RS_ERROR_CONNECTION_ABORTED},
        {STATUS_LOCAL_DISCONNECT, RS_ERROR_CONNECTION_ABORTED},
        {STATUS_INVALID_CONNECTION, RS_ERROR_NOT_CONNECTED},
        {STATUS_GRACEFUL_DISCONNECT, RS_ERROR_SOCKET_CLOSED},
        {STATUS_PIPE_BROKEN, RS_ERROR_BROKEN_PIPE},
        {STATUS_PIPE_CLOSING, RS_ERROR_BROKEN_PIPE},
        {STATUS_PIPE_DISCONNECTED, RS_ERROR_BROKEN_PIPE},
        {STATUS_IO_TIMEOUT, RS_ERROR_TIMEOUT},
        {STATUS_LINK_TIMEOUT, RS_ERROR_TIMEOUT},
        {STATUS_CANCELLED, RS_ERROR_CANCELED},
        {STATUS_HANDLES_CLOSED, RS_ERROR_CANCELED},
        {STATUS_REQUEST_ABORTED, RS_ERROR_CANCELED},
        {STATUS_ADDRESS_ALREADY_EXISTS, RS_ERROR_ADDRESS_IN_USE},
        {STATUS_ADDRESS_ALREADY_ASSOCIATED, RS_ERROR_ADDRESS_IN_USE},
        {STATUS_SHARING_VIOLATION, RS_ERROR_ADDRESS_IN_USE},
        {STATUS_INVALID_ADDRESS_COMPONENT, RS_ERROR_ADDRESS_NOT_AVAILABLE},
        {STATUS_TOO_MANY_ADDRESSES, RS_ERROR_ADDRESS_NOT_AVAILABLE},
        {STATUS_CONNECTION_ACTIVE, RS_ERROR_INVALID_STATE},
        {STATUS_NOT_SUPPORTED, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {STATUS_NOT_IMPLEMENTED, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {STATUS_INVALID_DEVICE_REQUEST, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {STATUS_ACCESS_DENIED, RS_ERROR_NO_PERMISSION},
        {STATUS_NETWORK_UNREACHABLE, RS_ERROR_NETWORK_UNREACHABLE},
        {STATUS_PROTOCOL_UNREACHABLE, RS_ERROR_NETWORK_UNREACHABLE},
        {STATUS_NETWORK_BUSY, RS_ERROR_NETWORK_UNREACHABLE},
        {STATUS_INVALID_NETWORK_RESPONSE, RS_ERROR_NETWORK_UNREACHABLE},
        {STATUS_HOST_UNREACHABLE, RS_ERROR_HOST_UNREACHABLE},
        {STATUS_HOST_DOWN, RS_ERROR_HOST_UNREACHABLE},
        {STATUS_BUFFER_OVERFLOW, RS_ERROR_MESSAGE_TOO_LARGE},
        {STATUS_INVALID_BUFFER_SIZE, RS_ERROR_MESSAGE_TOO_LARGE},
        {STATUS_TOO_MANY_OPENED_FILES, RS_ERROR_TOO_MANY_HANDLES},
        {STATUS_INSUFFICIENT_RESOURCES, RS_ERROR_NO_BUFFER_SPACE},
        {STATUS_OBJECT_NAME_NOT_FOUND, RS_ERROR_FILE_INVALID_PATH},
        {STATUS_OBJECT_PATH_NOT_FOUND, RS_ERROR_FILE_INVALID_PATH},
        {STATUS_OBJECT_NAME_INVALID, RS_ERROR_FILE_INVALID_PATH},
    };
    /* On a socket the disconnected "pipe" is a send after shutdown: the same
     * code as WSAESHUTDOWN, reported at once by a synchronous send. */
    static const struct pa4_row socket_ntstatus[] = {
        {STATUS_PIPE_DISCONNECTED, RS_ERROR_SOCKET_CLOSED},
    };
    static const struct pa4_row pipe_create[] = {
        {ERROR_ACCESS_DENIED, RS_ERROR_ADDRESS_IN_USE},
        {ERROR_PIPE_BUSY, RS_ERROR_ADDRESS_IN_USE},
    };
    static const struct pa4_row pipe_open[] = {
        {ERROR_FILE_NOT_FOUND, RS_ERROR_CONNECTION_REFUSED},
        {ERROR_PATH_NOT_FOUND, RS_ERROR_CONNECTION_REFUSED},
    };
    size_t n;
    const struct rs__iocp_error_row *rows = rs__iocp_error_table(RS__IOCP_ERRORS_WIN32, &n);
    PA4_CHECK_TABLE(win32, pa4_win32, rows, n);
    rows = rs__iocp_error_table(RS__IOCP_ERRORS_NTSTATUS, &n);
    PA4_CHECK_TABLE(ntstatus, pa4_ntstatus, rows, n);
    rows = rs__iocp_error_table(RS__IOCP_ERRORS_SOCKET_NTSTATUS, &n);
    PA4_CHECK_TABLE(socket_ntstatus, pa4_socket_ntstatus, rows, n);
    rows = rs__iocp_error_table(RS__IOCP_ERRORS_PIPE_CREATE, &n);
    PA4_CHECK_TABLE(pipe_create, pa4_pipe_create, rows, n);
    rows = rs__iocp_error_table(RS__IOCP_ERRORS_PIPE_OPEN, &n);
    PA4_CHECK_TABLE(pipe_open, pa4_pipe_open, rows, n);

    /* Winsock's own entry point maps like the Win32 one. */
    assert_int_equal(rs__iocp_error_from_wsa(WSAECONNRESET), RS_ERROR_CONNECTION_RESET);
    /* Everything else a socket status, a pipe creation or a pipe open meets
     * maps as in the general tables. */
    assert_int_equal(pa4_socket_ntstatus(STATUS_CONNECTION_RESET), RS_ERROR_CONNECTION_RESET);
    assert_int_equal(pa4_pipe_create(ERROR_BAD_PATHNAME), RS_ERROR_FILE_INVALID_PATH);
    assert_int_equal(pa4_pipe_open(ERROR_ACCESS_DENIED), RS_ERROR_NO_PERMISSION);
    /* A Win32 code wrapped in an NTSTATUS (NTSTATUS_FROM_WIN32) maps as
     * that Win32 code. */
    assert_int_equal(pa4_ntstatus(0xc0070000u | ERROR_ACCESS_DENIED), RS_ERROR_NO_PERMISSION);
    assert_int_equal(pa4_ntstatus(0xc0070000u | WSAECONNRESET), RS_ERROR_CONNECTION_RESET);
}

static void test_pa4_unmapped_code_is_logged(void **state)
{
    (void)state;
    pa4_log_start();
    assert_int_equal(pa4_win32(ERROR_GEN_FAILURE), RS_ERROR_SYS_CALL_FAILURE);
    bool win32_logged = pa4_logged("31");
    assert_int_equal(pa4_ntstatus(0xc0000001u), RS_ERROR_SYS_CALL_FAILURE);
    bool ntstatus_logged = pa4_logged("0xc0000001");
    /* A wrapped Win32 code without a row is logged as that Win32 code. */
    assert_int_equal(pa4_ntstatus(0xc0070000u | 1117u), RS_ERROR_SYS_CALL_FAILURE);
    bool wrapped_logged = pa4_logged("1117");
    pa4_log_stop();
    assert_true(win32_logged);
    assert_true(ntstatus_logged);
    assert_true(wrapped_logged);
}

#else

static int pa4_errno(unsigned long os)
{
    return rs__le_error_from_errno((int)os);
}
static int pa4_local_connect(unsigned long os)
{
    return rs__le_local_connect_error_from_errno((int)os);
}
static int pa4_pipe(unsigned long os)
{
    return rs__le_pipe_error_from_errno((int)os);
}

static void test_pa4_error_tables_row_by_row(void **state)
{
    (void)state;
    static const struct pa4_row errnos[] = {
        {0, RS_ERROR_SUCCESS},
        {EAGAIN, RS_ERROR_WOULD_BLOCK},
        {EWOULDBLOCK, RS_ERROR_WOULD_BLOCK},
        {ENOMEM, RS_ERROR_OUT_OF_MEMORY},
        {EINVAL, RS_ERROR_INVALID_ARGUMENT},
        {EFAULT, RS_ERROR_INVALID_ARGUMENT},
        {EBADF, RS_ERROR_INVALID_ARGUMENT},
        {ENOTSOCK, RS_ERROR_INVALID_ARGUMENT},
        {EINTR, RS_ERROR_CANCELED},
        {ECONNREFUSED, RS_ERROR_CONNECTION_REFUSED},
        {ECONNRESET, RS_ERROR_CONNECTION_RESET},
        {ECONNABORTED, RS_ERROR_CONNECTION_ABORTED},
        {ENOTCONN, RS_ERROR_NOT_CONNECTED},
        {EDESTADDRREQ, RS_ERROR_NOT_CONNECTED},
        {EPIPE, RS_ERROR_SOCKET_CLOSED},
        {ETIMEDOUT, RS_ERROR_TIMEOUT},
        {EADDRINUSE, RS_ERROR_ADDRESS_IN_USE},
        {EADDRNOTAVAIL, RS_ERROR_ADDRESS_NOT_AVAILABLE},
        {EAFNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {EPFNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {EPROTONOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {EPROTOTYPE, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {ESOCKTNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
        {ENOPROTOOPT, RS_ERROR_SOCKET_OPTION},
        {EOPNOTSUPP, RS_ERROR_PLATFORM_NOT_SUPPORTED},
        {EACCES, RS_ERROR_NO_PERMISSION},
        {EPERM, RS_ERROR_NO_PERMISSION},
        {ENETUNREACH, RS_ERROR_NETWORK_UNREACHABLE},
        {ENETDOWN, RS_ERROR_NETWORK_UNREACHABLE},
        {ENETRESET, RS_ERROR_TIMEOUT},
        {EHOSTUNREACH, RS_ERROR_HOST_UNREACHABLE},
        {EHOSTDOWN, RS_ERROR_HOST_UNREACHABLE},
        {EMSGSIZE, RS_ERROR_MESSAGE_TOO_LARGE},
        {EMFILE, RS_ERROR_TOO_MANY_HANDLES},
        {ENFILE, RS_ERROR_TOO_MANY_HANDLES},
        {ENOBUFS, RS_ERROR_NO_BUFFER_SPACE},
        {ENOENT, RS_ERROR_FILE_INVALID_PATH},
        {ENOTDIR, RS_ERROR_FILE_INVALID_PATH},
        {ELOOP, RS_ERROR_FILE_INVALID_PATH},
        {ENAMETOOLONG, RS_ERROR_NAME_TOO_LONG},
        {EISCONN, RS_ERROR_INVALID_STATE},
        {EALREADY, RS_ERROR_INVALID_STATE},
        {EINPROGRESS, RS_ERROR_INVALID_STATE},
        {ECANCELED, RS_ERROR_CANCELED},
    };
    static const struct pa4_row local_connect[] = {
        {ENOENT, RS_ERROR_CONNECTION_REFUSED},
        {ENOTDIR, RS_ERROR_CONNECTION_REFUSED},
        {ECONNREFUSED, RS_ERROR_CONNECTION_REFUSED},
    };
    static const struct pa4_row pipe[] = {
        {EPIPE, RS_ERROR_BROKEN_PIPE},
        {ECONNRESET, RS_ERROR_BROKEN_PIPE},
        {ECONNABORTED, RS_ERROR_BROKEN_PIPE},
    };
    size_t n;
    const struct rs__le_error_row *rows = rs__le_error_table(RS__LE_ERRORS_ERRNO, &n);
    PA4_CHECK_TABLE(errnos, pa4_errno, rows, n);
    rows = rs__le_error_table(RS__LE_ERRORS_LOCAL_CONNECT, &n);
    PA4_CHECK_TABLE(local_connect, pa4_local_connect, rows, n);
    rows = rs__le_error_table(RS__LE_ERRORS_PIPE, &n);
    PA4_CHECK_TABLE(pipe, pa4_pipe, rows, n);

    /* Everything else a LOCAL connect or a pipe meets maps as in the errno
     * table. */
    assert_int_equal(pa4_local_connect(EACCES), RS_ERROR_NO_PERMISSION);
    assert_int_equal(pa4_pipe(ENOTCONN), RS_ERROR_NOT_CONNECTED);
}

static void test_pa4_unmapped_code_is_logged(void **state)
{
    (void)state;
    pa4_log_start();
    assert_int_equal(pa4_errno(EXDEV), RS_ERROR_SYS_CALL_FAILURE);
    char number[16];
    snprintf(number, sizeof number, "%d", EXDEV);
    bool logged = pa4_logged(number);
    assert_int_equal(pa4_local_connect(ESPIPE), RS_ERROR_SYS_CALL_FAILURE);
    snprintf(number, sizeof number, "%d", ESPIPE);
    bool local_logged = pa4_logged(number);
    pa4_log_stop();
    assert_true(logged);
    assert_true(local_logged);
}

#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pa1_v6only_default_refuses_ipv4, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa1_dual_stack_accepts_ipv4_mapped, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa1_dual_stack_fixed_for_the_socket,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_pa2_scoped_text_parses_and_prints_back,
                                        rs_test_setup_library, rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_pa2_bind_and_connect_link_local, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa2_scope_on_loopback, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_pa2_udp_remote_reported_as_formatted,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa3_local_connect_missing_path, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa3_local_connect_closed_listener, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa3_local_connect_regular_file, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa3_refused_socket_still_listens, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa3_local_address_not_terminated, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_pa4_error_tables_row_by_row, rs_test_setup_library,
                                        rs_test_teardown_library),
        cmocka_unit_test_setup_teardown(test_pa4_unmapped_code_is_logged, rs_test_setup_library,
                                        rs_test_teardown_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
