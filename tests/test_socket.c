/*
 * Socket scenarios SK1-SK17 (test-scenarios.md): communication over every domain and
 * type, binding, and the errors of connect and bind. SK5, SK22, SK23 and the
 * validation half of SK33 are in test_socket_validation.c.
 * Same file on every backend; loopback only, port 0 read back, bounded waits.
 */
#include "socket_fixture.h"

#include "../common/atomics.h"
#include "../common/socket_impl.h"
#if RS_TEST_IOCP
#include "../backends/iocp/iocp_backend.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <sys/resource.h>
#include <unistd.h>
#endif

/* ---- SK1 ---- */

static void test_sk1_local_stream_communication(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 16);
    assert_true(server.endpoint.address[0] != '\0');

    struct sk_peer *client = sk_connect_and_exchange(&server, loop, &options);
    struct sk_peer *accepted = server.accepted[0];

    assert_int_equal(rs_socket_close(client->socket), 0);
    assert_int_equal(client->close_calls, 1);
    assert_int_equal(rs_socket_close(client->socket), 0);
    assert_int_equal(client->close_calls, 1);
    assert_false(rs_socket_is_open(client->socket));
    SK_WAIT(accepted, accepted->eof, "end of stream on the accepted side");

    sk_peer_free(client);
    sk_server_stop(&server);
}

/* ---- SK2 ---- */

static void sk2_exchange(rs_event_loop *loop, rs_socket_domain domain)
{
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, domain);
    options.keepalive = true;
    options.keep_alive_idle_s = 30;
    options.keep_alive_interval_s = 5;
    options.keep_alive_probes = 3;
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 16);
    struct sk_peer *client = sk_connect_and_exchange(&server, loop, &options);
    sk_peer_free(client);
    sk_server_stop(&server);
}

static void test_sk2_tcp_ipv4_ipv6_with_keepalive(void **state)
{
    sk2_exchange(*state, RS_SOCKET_IPV4);
    sk2_exchange(*state, RS_SOCKET_IPV6);
}

/* ---- SK3 ---- */

static void test_sk3_tcp_nodelay_reads_back(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options on = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    on.tcp_nodelay = RS_SOCKET_OPTION_ON;
    rs_socket_options off = on;
    off.tcp_nodelay = RS_SOCKET_OPTION_OFF;

    struct sk_server server;
    sk_server_start(&server, loop, &on, false, 16);
    struct sk_peer *client = sk_peer_new(loop, &on);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_server_wait_accepted(&server, 1);
    bool value = false;
    assert_int_equal(rs_socket_get_tcp_nodelay(client->socket, &value), 0);
    assert_true(value);
    assert_int_equal(rs_socket_get_tcp_nodelay(server.accepted[0]->socket, &value), 0);
    assert_true(value);
    sk_peer_free(client);

    client = sk_peer_new(loop, &off);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    assert_int_equal(rs_socket_get_tcp_nodelay(client->socket, &value), 0);
    assert_false(value);
    sk_peer_free(client);
    sk_server_stop(&server);
}

/* ---- SK11 ---- */

static void test_sk11_tcp_connect_to_closed_port_refused(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    /* A port that was free a moment ago and has no listener now. */
    rs_socket *probe = rs_socket_new(&options);
    assert_non_null(probe);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(probe, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(probe, &ep), 0);
    assert_int_equal(rs_socket_destroy(probe), 0);

    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &ep), RS_ERROR_CONNECTION_REFUSED);
    assert_int_equal(client->connect_calls, 1);
    assert_false(rs_socket_is_open(client->socket));
    sk_peer_free(client);
}

/* ---- SK13 ---- */

static void test_sk13_duplicate_bind_address_in_use(void **state)
{
    (void)state;
    rs_socket_type types[] = {RS_SOCKET_STREAM, RS_SOCKET_DGRAM};
    for (size_t i = 0; i < RS__ARRAY_LEN(types); i++) {
        rs_socket_options options = sk_options(types[i], RS_SOCKET_IPV4);
        rs_socket *first = rs_socket_new(&options);
        rs_socket *second = rs_socket_new(&options);
        assert_non_null(first);
        assert_non_null(second);
        rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
        assert_int_equal(rs_socket_bind(first, &ep), 0);
        if (types[i] == RS_SOCKET_STREAM) {
            assert_int_equal(rs_socket_listen(first, 4), 0);
        }
        assert_int_equal(rs_socket_get_bound_address(first, &ep), 0);
        assert_fails_with(rs_socket_bind(second, &ep), RS_ERROR_ADDRESS_IN_USE);
        /* No state change: the second socket can still bind elsewhere. */
        rs_socket_endpoint other = sk_loopback(RS_SOCKET_IPV4);
        assert_int_equal(rs_socket_bind(second, &other), 0);
        assert_int_equal(rs_socket_destroy(first), 0);
        assert_int_equal(rs_socket_destroy(second), 0);
    }
}

/* ---- SK14 ---- */

static void test_sk14_bind_port_zero_reports_port(void **state)
{
    (void)state;
    rs_socket_type types[] = {RS_SOCKET_STREAM, RS_SOCKET_DGRAM};
    for (size_t i = 0; i < RS__ARRAY_LEN(types); i++) {
        rs_socket_options options = sk_options(types[i], RS_SOCKET_IPV4);
        rs_socket *s = rs_socket_new(&options);
        assert_non_null(s);
        rs_socket_endpoint ep;
        assert_fails_with(rs_socket_get_bound_address(s, &ep), RS_ERROR_INVALID_STATE);
        rs_socket_endpoint local = sk_loopback(RS_SOCKET_IPV4);
        assert_int_equal(rs_socket_bind(s, &local), 0);
        assert_int_equal(rs_socket_get_bound_address(s, &ep), 0);
        assert_string_equal(ep.address, "127.0.0.1");
        assert_true(ep.port > 0 && ep.port <= 65535);
        rs_socket_endpoint again;
        if (types[i] == RS_SOCKET_STREAM) {
            assert_int_equal(rs_socket_listen(s, 4), 0);
        }
        assert_int_equal(rs_socket_get_bound_address(s, &again), 0);
        assert_int_equal(again.port, ep.port);
        assert_string_equal(again.address, ep.address);
        assert_int_equal(rs_socket_destroy(s), 0);
    }
}

/* ---- SK4 ---- */

static void test_sk4_bind_to_interface(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    strcpy(options.network_interface_name, "rs-no-such-if");
    assert_null_with(rs_socket_new(&options), RS_ERROR_INVALID_OPTIONS);
    memset(options.network_interface_name, 'x', sizeof options.network_interface_name);
    assert_null_with(rs_socket_new(&options), RS_ERROR_INVALID_OPTIONS);

    /* The loopback interface, by the name the OS reports ("lo" on Linux;
     * under Wine "loopback_1"): bound to it (SO_BINDTODEVICE, or
     * IP_UNICAST_IF on Windows), both ends still talk over 127.0.0.1. */
    char name[64];
    if (!rs_test_loopback_interface(name, sizeof name)) {
        fail_msg("%s", "the OS reports no loopback interface");
    }
    assert_true(strlen(name) < sizeof options.network_interface_name);
    memset(options.network_interface_name, 0, sizeof options.network_interface_name);
    strcpy(options.network_interface_name, name);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 16);
    struct sk_peer *client = sk_connect_and_exchange(&server, loop, &options);
    sk_peer_free(client);
    sk_server_stop(&server);
}

/* ---- SK6 ---- */

struct connect_on_loop {
    struct sk_peer *peer;
    const rs_socket_endpoint *remote;
};

static void connect_on_loop(void *arg)
{
    struct connect_on_loop *c = arg;
    sk_peer_connect_async(c->peer, c->remote);
}

static void test_sk6_udp_bind_connect_communication(void **state)
{
    rs_event_loop *loop = *state;
    struct sk_peer *server = sk_bound_udp_peer(loop);
    rs_socket_endpoint server_ep;
    assert_int_equal(rs_socket_get_bound_address(server->socket, &server_ep), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(server->socket, loop), 0);
    sk_peer_subscribe(server);

    /* The client is bound explicitly before it connects: its address stays. */
    struct sk_peer *client = sk_bound_udp_peer(loop);
    rs_socket_endpoint client_ep;
    assert_int_equal(rs_socket_get_bound_address(client->socket, &client_ep), 0);
    assert_int_equal(sk_peer_connect(client, &server_ep), 0);
    rs_socket_endpoint after;
    assert_int_equal(rs_socket_get_bound_address(client->socket, &after), 0);
    assert_int_equal(after.port, client_ep.port);
    sk_peer_subscribe(client);

    static const char ping[] = "ping";
    static const char pong[] = "pong!";
    sk_peer_write(client, ping, sizeof ping);
    sk_peer_wait_bytes(server, sizeof ping);
    assert_memory_equal(server->data, ping, sizeof ping);

    /* The bound server, already reading on its loop, connects back to the
     * client's address (on the loop thread: elsewhere that is WRONG_THREAD)
     * and answers. */
    assert_fails_with(rs_socket_connect(server->socket, &client_ep, loop, sk_never_connected, NULL),
                      RS_ERROR_WRONG_THREAD);
    struct connect_on_loop back = {server, &client_ep};
    rs_test_run_on_loop(loop, connect_on_loop, &back);
    SK_WAIT(server, server->connect_calls == 1, "the server's connection callback");
    assert_int_equal(server->connect_result, 0);
    sk_peer_write(server, pong, sizeof pong);
    sk_peer_wait_bytes(client, sizeof pong);
    assert_memory_equal(client->data, pong, sizeof pong);
    SK_WAIT(client, client->writes_done == 1, "the client's write completion");
    SK_WAIT(server, server->writes_done == 1, "the server's write completion");
    assert_int_equal(client->bytes_written, sizeof ping);
    sk_peer_free(client);
    sk_peer_free(server);
}

/* ---- SK7 ---- */

struct sk7_rx {
    rs_socket *socket;
    struct rs_test_counter counter;
    unsigned char *buf;
    size_t read_len;     /* buffer size handed to read */
    const size_t *sizes; /* expected datagram sizes, in order */
    size_t seed_base;
    long count;
    long callbacks;
    long mismatches;
};

/* Reads exactly one datagram per callback: the remaining ones must come
 * through further callbacks (a datagram read never proves the socket empty). */
static void sk7_on_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct sk7_rx *rx = user_data;
    assert_int_equal(error_code, 0);
    rs_test_counter_lock(&rx->counter);
    size_t read_len = rx->read_len;
    rs_test_counter_unlock(&rx->counter);
    size_t n = 0;
    int rc = rs_socket_read(socket, rx->buf, read_len, &n);
    rs_test_counter_lock(&rx->counter);
    rx->callbacks++;
    if (rc == 0) {
        size_t want = rx->sizes[rx->count];
        size_t expect = want < read_len ? want : read_len;
        if (n != expect || !sk_check_pattern(rx->buf, n, rx->seed_base + (size_t)rx->count)) {
            rx->mismatches++;
        }
        rx->count++;
    } else if (rs_last_error() != RS_ERROR_WOULD_BLOCK) {
        rx->mismatches++;
    }
    rs_test_counter_unlock_add(&rx->counter, 1);
}

static void sk7_subscribe(void *arg)
{
    struct sk7_rx *rx = arg;
    assert_int_equal(rs_socket_subscribe_to_readable_events(rx->socket, sk7_on_readable, rx), 0);
}

struct sk7_burst {
    rs_socket *socket;
    unsigned char **payloads;
    const size_t *sizes;
    size_t count;
    volatile long done;
};

static void sk7_write_done(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    struct sk7_burst *b = user_data;
    assert_int_equal(error_code, 0);
    rs__atomic_add(&b->done, 1);
}

static void sk7_write_burst(void *arg)
{
    struct sk7_burst *b = arg;
    for (size_t i = 0; i < b->count; i++) {
        assert_int_equal(rs_socket_write(b->socket, b->payloads[i], b->sizes[i], sk7_write_done, b),
                         0);
    }
}

/* Sends the datagrams sizes[0..count) (payload i seeded seed_base + i); one
 * at a time (waiting for each) when sequential, else in one burst. */
static void sk7_send(rs_event_loop *loop, rs_socket *tx, struct sk7_rx *rx, const size_t *sizes,
                     size_t count, size_t seed_base, bool sequential)
{
    unsigned char **payloads = calloc(count, sizeof *payloads);
    assert_non_null(payloads);
    for (size_t i = 0; i < count; i++) {
        payloads[i] = malloc(sizes[i]);
        assert_non_null(payloads[i]);
        sk_fill_pattern(payloads[i], sizes[i], seed_base + i);
    }
    rs_test_counter_lock(&rx->counter);
    rx->sizes = sizes;
    rx->seed_base = seed_base;
    rx->count = 0;
    rs_test_counter_unlock(&rx->counter);
    struct sk7_burst burst = {tx, payloads, sizes, count, 0};
    if (sequential) {
        for (size_t i = 0; i < count; i++) {
            struct sk7_burst one = {tx, &payloads[i], &sizes[i], 1, 0};
            rs_test_run_on_loop(loop, sk7_write_burst, &one);
            SK_WAIT(rx, rx->count == (long)i + 1, "one datagram");
            while (rs__atomic_load(&one.done) != 1) {
                sk_loop_round_trip(loop);
            }
        }
    } else {
        rs_test_run_on_loop(loop, sk7_write_burst, &burst);
        SK_WAIT(rx, rx->count == (long)count, "a burst of datagrams");
        while (rs__atomic_load(&burst.done) != (long)count) {
            sk_loop_round_trip(loop);
        }
    }
    for (size_t i = 0; i < count; i++) {
        free(payloads[i]);
    }
    free(payloads);
}

static void test_sk7_udp_many_datagrams_varied_sizes(void **state)
{
    rs_event_loop *loop = *state;
    struct sk7_rx rx;
    memset(&rx, 0, sizeof rx);
    rs_test_counter_init(&rx.counter);
    rx.buf = malloc(65536);
    assert_non_null(rx.buf);
    rx.read_len = 65536;
    rs_socket_options options = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    rx.socket = rs_socket_new(&options);
    assert_non_null(rx.socket);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(rx.socket, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(rx.socket, &ep), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(rx.socket, loop), 0);
    rs_test_run_on_loop(loop, sk7_subscribe, &rx);

    struct sk_peer *tx = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(tx, &ep), 0);

    static const size_t big[] = {1,    2,    3,    7,    64,    100,   512,   1000,  1472,
                                 1473, 4096, 8192, 9000, 16384, 32768, 50000, 65000, 65507};
    sk7_send(loop, tx->socket, &rx, big, RS__ARRAY_LEN(big), 0, true);

    size_t small[64];
    for (size_t i = 0; i < RS__ARRAY_LEN(small); i++) {
        small[i] = 1 + (i * 37) % 900;
    }
    sk7_send(loop, tx->socket, &rx, small, RS__ARRAY_LEN(small), 1000, false);
    assert_int_equal(rx.mismatches, 0);

    /* Larger than the buffer: truncated to it, the rest of the datagram is
     * gone, the next read returns the next datagram whole. */
    rs_test_counter_lock(&rx.counter);
    rx.read_len = 10;
    rs_test_counter_unlock(&rx.counter);
    static const size_t truncated[] = {100, 5, 4000, 10};
    sk7_send(loop, tx->socket, &rx, truncated, RS__ARRAY_LEN(truncated), 2000, true);
    assert_int_equal(rx.mismatches, 0);

    sk_peer_free(tx);
    assert_int_equal(rs_socket_destroy(rx.socket), 0);
    free(rx.buf);
    rs_test_counter_clean_up(&rx.counter);
}

/* ---- SK8, SK9, SK17: a connect that stays pending ---- */

/*
 * A listener with a backlog of 1 that never accepts: once its queue is full
 * Linux and Wine drop further SYNs, so a new connect stays pending until its
 * timeout. Connects clients until one times out (the queue is then full).
 * Windows refuses them instead; there (or when asked, to test that path
 * under Wine too) the IOCP backend's fault hook keeps the next connect to
 * the listener pending.
 */
struct backlog_full {
    rs_socket *listener;
    rs_socket_endpoint endpoint;
    struct sk_peer *fillers[32];
    int count;
    bool stalled;
};

#if RS_TEST_IOCP
static void stall_next_connect(struct backlog_full *b)
{
    rs__iocp_test_inject_fault(RS__IOCP_FAULT_CONNECT, RS__IOCP_FAULT_STALL, 1,
                               (uint16_t)b->endpoint.port);
    b->stalled = true;
}
#endif

static void fill_backlog(rs_event_loop *loop, struct backlog_full *b, bool use_hook)
{
    memset(b, 0, sizeof *b);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    b->listener = rs_socket_new(&options);
    assert_non_null(b->listener);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(b->listener, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(b->listener, &b->endpoint), 0);
    assert_int_equal(rs_socket_listen(b->listener, 1), 0);
#if RS_TEST_IOCP
    if (use_hook) {
        stall_next_connect(b);
        return;
    }
#else
    assert_false(use_hook);
#endif
    options.connect_timeout_ms = 200;
    for (int i = 0; i < (int)RS__ARRAY_LEN(b->fillers); i++) {
        struct sk_peer *p = sk_peer_new(loop, &options);
        int rc = sk_peer_connect(p, &b->endpoint);
        if (rc == RS_ERROR_TIMEOUT) {
            sk_peer_free(p);
            return;
        }
#if RS_TEST_IOCP
        if (rc == RS_ERROR_CONNECTION_REFUSED) {
            sk_peer_free(p);
            stall_next_connect(b);
            return;
        }
#endif
        assert_int_equal(rc, 0);
        b->fillers[b->count++] = p;
    }
    fail_msg("%s", "the listener's backlog never filled up");
}

static void empty_backlog(struct backlog_full *b)
{
#if RS_TEST_IOCP
    if (b->stalled) {
        rs__iocp_test_clear_faults();
    }
#endif
    for (int i = 0; i < b->count; i++) {
        sk_peer_free(b->fillers[i]);
    }
    assert_int_equal(rs_socket_destroy(b->listener), 0);
}

static void sk8_body(rs_event_loop *loop, bool use_hook)
{
    struct backlog_full b;
    fill_backlog(loop, &b, use_hook);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    options.connect_timeout_ms = 300;
    struct sk_peer *p = sk_peer_new(loop, &options);
    uint64_t start = rs__clock_now_ns();
    assert_int_equal(sk_peer_connect(p, &b.endpoint), RS_ERROR_TIMEOUT);
    uint64_t elapsed_ms = (rs__clock_now_ns() - start) / 1000000u;
    assert_true(elapsed_ms >= 300);
    assert_false(rs_socket_is_open(p->socket));
    sk_loop_wait_until(loop, 50);
    assert_int_equal(p->connect_calls, 1);
    sk_peer_free(p);
    empty_backlog(&b);
}

static void sk9_body(rs_event_loop *loop, bool use_hook)
{
    struct backlog_full b;
    fill_backlog(loop, &b, use_hook);
    rs_event_loop *doomed = rs_event_loop_new(NULL);
    assert_non_null(doomed);
    assert_int_equal(rs_event_loop_run(doomed), 0);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_peer *p = sk_peer_new(doomed, &options);
    sk_peer_connect_async(p, &b.endpoint);
    sk_loop_round_trip(doomed); /* the connect is now pending on the loop */
    assert_int_equal(p->connect_calls, 0);

    assert_int_equal(rs_event_loop_destroy(doomed), 0);
    assert_int_equal(p->connect_calls, 1);
    assert_int_equal(p->connect_result, RS_ERROR_EVENT_LOOP_SHUTDOWN);
    assert_false(rs_socket_is_open(p->socket));
    assert_null(rs_socket_get_event_loop(p->socket));
    sk_peer_free(p);
    empty_backlog(&b);
}

static void sk17_body(rs_event_loop *loop, bool use_hook)
{
    struct backlog_full b;
    fill_backlog(loop, &b, use_hook);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    options.connect_timeout_ms = 200;
    struct sk_peer *p = sk_peer_new(loop, &options);
    sk_peer_connect_async(p, &b.endpoint);
    sk_loop_round_trip(loop);
    assert_int_equal(rs_socket_destroy(p->socket), 0);
    p->socket = NULL;
    SK_WAIT(p, p->destroy_calls == 1, "the destroy callback");
    /* Well past the connect timeout: still no connection callback. */
    sk_loop_wait_until(loop, 500);
    assert_int_equal(p->connect_calls, 0);
    assert_int_equal(p->close_calls, 1);
    sk_peer_free(p);
    empty_backlog(&b);
}

static void test_sk8_connect_timeout(void **state)
{
    sk8_body(*state, false);
}

static void test_sk9_loop_destroyed_while_connect_pending(void **state)
{
    sk9_body(*state, false);
}

static void test_sk17_destroy_while_connect_pending(void **state)
{
    sk17_body(*state, false);
}

#if RS_TEST_IOCP
/* The same three with the connect kept pending by the fault hook, the path
 * real Windows takes (it refuses a connect to a full backlog). */
static void test_sk8_connect_timeout_stalled_by_hook(void **state)
{
    sk8_body(*state, true);
}

static void test_sk9_loop_destroyed_while_connect_stalled_by_hook(void **state)
{
    sk9_body(*state, true);
}

static void test_sk17_destroy_while_connect_stalled_by_hook(void **state)
{
    sk17_body(*state, true);
}
#endif

/* ---- SK10 ---- */

static void test_sk10_local_connect_to_missing_path(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    struct sk_peer *p = sk_peer_new(loop, &options);

    rs_socket_endpoint missing = sk_loopback(RS_SOCKET_LOCAL);
    int rc = rs_socket_connect(p->socket, &missing, loop, NULL, NULL);
    assert_int_equal(rc, -1);
    assert_int_equal(rs_last_error(), RS_ERROR_INVALID_ARGUMENT);
    rc = rs_socket_connect(p->socket, &missing, loop, sk_never_connected, NULL);
    assert_int_equal(rc, -1);
    int err = rs_last_error();
    assert_string_equal(rs_error_name(err), rs_error_name(RS_ERROR_CONNECTION_REFUSED));

    rs_socket_endpoint empty;
    memset(&empty, 0, sizeof empty);
    assert_fails_with(rs_socket_connect(p->socket, &empty, loop, sk_never_connected, NULL),
                      RS_ERROR_FILE_INVALID_PATH);

    /* No state change: the same socket then connects to a real listener. */
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    assert_int_equal(sk_peer_connect(p, &server.endpoint), 0);
    assert_int_equal(p->connect_calls, 1);
    sk_peer_free(p);
    sk_server_stop(&server);
}

/* ---- SK12 ---- */

static void test_sk12_privileged_port_needs_permission(void **state)
{
    (void)state;
#ifdef _WIN32
    RS_TEST_SKIP("Windows has no privileged ports");
#else
    if (geteuid() == 0) {
        RS_TEST_SKIP("running as root: binding a privileged port is allowed");
    } else {
        rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
        rs_socket *s = rs_socket_new(&options);
        assert_non_null(s);
        rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
        ep.port = 1;
        assert_fails_with(rs_socket_bind(s, &ep), RS_ERROR_NO_PERMISSION);
        assert_int_equal(rs_socket_destroy(s), 0);
    }
#endif
}

/* ---- SK15 ---- */

static void test_sk15_udp_bind_malformed_address(void **state)
{
    (void)state;
    static const char *const v4[] = {"127.0.0.256", "1.2.3", "127.0.0.1x",
                                     "256.1.1.1",   "::1",   "localhost"};
    static const char *const v6[] = {"::gg", "1:2:3:4:5:6:7:8:9", "127.0.0.1", "1::2::3"};
    struct {
        rs_socket_domain domain;
        const char *const *bad;
        size_t count;
    } cases[] = {{RS_SOCKET_IPV4, v4, RS__ARRAY_LEN(v4)}, {RS_SOCKET_IPV6, v6, RS__ARRAY_LEN(v6)}};
    for (size_t c = 0; c < RS__ARRAY_LEN(cases); c++) {
        rs_socket_options options = sk_options(RS_SOCKET_DGRAM, cases[c].domain);
        rs_socket *s = rs_socket_new(&options);
        assert_non_null(s);
        for (size_t i = 0; i < cases[c].count; i++) {
            rs_socket_endpoint ep;
            memset(&ep, 0, sizeof ep);
            strcpy(ep.address, cases[c].bad[i]);
            assert_fails_with(rs_socket_bind(s, &ep), RS_ERROR_INVALID_ADDRESS);
        }
        rs_socket_endpoint good = sk_loopback(cases[c].domain);
        assert_int_equal(rs_socket_bind(s, &good), 0);
        assert_int_equal(rs_socket_destroy(s), 0);
    }
}

/* ---- SK16 ---- */

static void test_sk16_io_off_the_loop_thread_fails(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);

    char buf[16];
    size_t n = 0;
    assert_fails_with(rs_socket_read(client->socket, buf, sizeof buf, &n), RS_ERROR_WRONG_THREAD);
    assert_fails_with(rs_socket_write(client->socket, "x", 1, sk_never_written, NULL),
                      RS_ERROR_WRONG_THREAD);
    assert_fails_with(
        rs_socket_subscribe_to_readable_events(client->socket, sk_never_readable, NULL),
        RS_ERROR_WRONG_THREAD);
    assert_fails_with(rs_socket_shutdown(client->socket, RS_SOCKET_DIRECTION_WRITE),
                      RS_ERROR_WRONG_THREAD);
    /* Nothing changed: the socket still works from its loop. */
    sk_peer_subscribe(client);
    sk_server_wait_accepted(&server, 1);
    sk_peer_write(server.accepted[0], "ok", 2);
    sk_peer_wait_bytes(client, 2);
    sk_peer_free(client);
    sk_server_stop(&server);
}

#define SK_TEST(fn) cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SK_TEST(test_sk1_local_stream_communication),
        SK_TEST(test_sk2_tcp_ipv4_ipv6_with_keepalive),
        SK_TEST(test_sk3_tcp_nodelay_reads_back),
        SK_TEST(test_sk4_bind_to_interface),
        SK_TEST(test_sk6_udp_bind_connect_communication),
        SK_TEST(test_sk7_udp_many_datagrams_varied_sizes),
        SK_TEST(test_sk8_connect_timeout),
        SK_TEST(test_sk9_loop_destroyed_while_connect_pending),
        SK_TEST(test_sk10_local_connect_to_missing_path),
        SK_TEST(test_sk11_tcp_connect_to_closed_port_refused),
        SK_TEST(test_sk12_privileged_port_needs_permission),
        SK_TEST(test_sk13_duplicate_bind_address_in_use),
        SK_TEST(test_sk14_bind_port_zero_reports_port),
        SK_TEST(test_sk15_udp_bind_malformed_address),
        SK_TEST(test_sk16_io_off_the_loop_thread_fails),
        SK_TEST(test_sk17_destroy_while_connect_pending),
#if RS_TEST_IOCP
        SK_TEST(test_sk8_connect_timeout_stalled_by_hook),
        SK_TEST(test_sk9_loop_destroyed_while_connect_stalled_by_hook),
        SK_TEST(test_sk17_destroy_while_connect_stalled_by_hook),
#endif
    };
    return RS_TEST_MAIN("socket", tests);
}
