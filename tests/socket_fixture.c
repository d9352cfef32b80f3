#include "socket_fixture.h"

#include "../common/atomics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <io.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#endif

static volatile long path_counter;

void sk_require_local(void)
{
#if !RS_TEST_IOCP && defined(_WIN32)
    /* The libevent backend's LOCAL sockets are AF_UNIX ones, which Windows
     * has from Windows 10 1803 on and Wine 8 does not have at all. */
    static volatile long known; /* 0 unknown, 1 available, 2 not */
    if (rs__atomic_load(&known) == 0) {
        rs_socket_options o;
        memset(&o, 0, sizeof o);
        o.type = RS_SOCKET_STREAM;
        o.domain = RS_SOCKET_LOCAL;
        rs_socket *s = rs_socket_new(&o);
        bool ok = s != NULL || rs_last_error() != RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED;
        if (s) {
            rs_socket_destroy(s);
        }
        rs__atomic_store(&known, ok ? 1 : 2);
    }
    if (rs__atomic_load(&known) == 2) {
        RS_TEST_SKIP("no AF_UNIX sockets on this system (Windows has them from Windows 10 1803; "
                     "Wine 8 has none): LOCAL sockets of the libevent backend need them");
    }
#endif
}

rs_socket_options sk_options(rs_socket_type type, rs_socket_domain domain)
{
    if (domain == RS_SOCKET_LOCAL) {
        sk_require_local();
    }
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = type;
    o.domain = domain;
    o.connect_timeout_ms = 10000;
    return o;
}

rs_socket_endpoint sk_loopback(rs_socket_domain domain)
{
    rs_socket_endpoint ep;
    memset(&ep, 0, sizeof ep);
    long n = rs__atomic_add(&path_counter, 1);
    switch (domain) {
    case RS_SOCKET_IPV4:
        strcpy(ep.address, "127.0.0.1");
        break;
    case RS_SOCKET_IPV6:
        strcpy(ep.address, "::1");
        break;
    case RS_SOCKET_LOCAL:
        sk_require_local();
#if RS_TEST_IOCP
        snprintf(ep.address, sizeof ep.address, "\\\\.\\pipe\\rs-sk-%lu-%ld",
                 (unsigned long)GetCurrentProcessId(), n);
#elif defined(_WIN32)
        {
            char dir[MAX_PATH];
            DWORD len = GetTempPathA(sizeof dir, dir);
            assert_true(len > 0 && len < sizeof dir);
            snprintf(ep.address, sizeof ep.address, "%srs-sk-%lu-%ld.sock", dir,
                     (unsigned long)GetCurrentProcessId(), n);
            _unlink(ep.address);
        }
#else
        snprintf(ep.address, sizeof ep.address, "/tmp/rs-sk-%ld-%ld.sock", (long)getpid(), n);
        unlink(ep.address);
#endif
        break;
    }
    return ep;
}

void sk_remove_path(rs_socket_domain domain, const rs_socket_endpoint *ep)
{
#if !RS_TEST_IOCP && defined(_WIN32)
    if (domain == RS_SOCKET_LOCAL) {
        _unlink(ep->address);
    }
#elif !defined(_WIN32)
    if (domain == RS_SOCKET_LOCAL) {
        unlink(ep->address);
    }
#else
    (void)domain;
    (void)ep;
#endif
}

void sk_fill_pattern(unsigned char *buf, size_t len, size_t seed)
{
    for (size_t i = 0; i < len; i++) {
        size_t x = seed + i;
        buf[i] = (unsigned char)(x ^ (x >> 8) ^ (x >> 16));
    }
}

bool sk_check_pattern(const unsigned char *buf, size_t len, size_t seed)
{
    for (size_t i = 0; i < len; i++) {
        size_t x = seed + i;
        if (buf[i] != (unsigned char)(x ^ (x >> 8) ^ (x >> 16))) {
            return false;
        }
    }
    return true;
}

/* ---- peers ---- */

static void peer_signal(struct sk_peer *p)
{
    rs_test_counter_unlock_add(&p->counter, 1);
}

static void on_close(void *user_data)
{
    struct sk_peer *p = user_data;
    rs_test_counter_lock(&p->counter);
    p->close_calls++;
    peer_signal(p);
}

static void on_destroy(void *user_data)
{
    struct sk_peer *p = user_data;
    rs_test_counter_lock(&p->counter);
    p->destroy_calls++;
    peer_signal(p);
}

/*
 * The test failed or timed out with the peer still open (test thread, in the
 * harness's teardown, loops running): destroys its socket unless the test
 * already did, waits for the destroy callback, the last one the socket
 * makes, then frees the peer. If the callback does not come, the peer is
 * left allocated rather than freed under a callback.
 */
static bool peer_release(void *obj)
{
    struct sk_peer *p = obj;
    rs_test_counter_lock(&p->counter);
    bool destroy = p->socket && p->destroy_calls == 0 && !p->destroy_issued;
    bool wait = destroy || (p->destroy_issued && p->destroy_calls == 0);
    rs_test_counter_unlock(&p->counter);
    if (destroy && rs_socket_destroy(p->socket) != 0) {
        return false;
    }
    if (wait) {
        uint64_t deadline = rs__clock_now_ns() + RS_TEST_TIMEOUT_MS * 1000000ull;
        rs_test_counter_lock(&p->counter);
        while (p->destroy_calls == 0) {
            uint64_t now = rs__clock_now_ns();
            if (now >= deadline) {
                rs_test_counter_unlock(&p->counter);
                print_error("harness: a socket of the failed test was not destroyed\n");
                return false;
            }
            (void)rs_test_counter_wait_change(&p->counter, deadline);
        }
        rs_test_counter_unlock(&p->counter);
    }
    rs_test_counter_clean_up(&p->counter);
    free(p->data);
    free(p);
    return true;
}

struct sk_peer *sk_peer_wrap(rs_event_loop *loop, rs_socket *socket)
{
    struct sk_peer *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->loop = loop;
    p->socket = socket;
    rs_test_counter_init(&p->counter);
    rs_test_own(p, peer_release, NULL);
    assert_int_equal(rs_socket_set_close_callback(socket, on_close, p), 0);
    assert_int_equal(rs_socket_set_destroy_callback(socket, on_destroy, p), 0);
    return p;
}

struct sk_peer *sk_peer_new(rs_event_loop *loop, const rs_socket_options *options)
{
    rs_socket *s = rs_socket_new(options);
    assert_non_null(s);
    return sk_peer_wrap(loop, s);
}

static void on_connect(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct sk_peer *p = user_data;
    rs_test_counter_lock(&p->counter);
    p->connect_calls++;
    p->connect_result = error_code;
    peer_signal(p);
}

void sk_peer_connect_async(struct sk_peer *p, const rs_socket_endpoint *remote)
{
    assert_int_equal(rs_socket_connect(p->socket, remote, p->loop, on_connect, p), 0);
}

int sk_peer_connect(struct sk_peer *p, const rs_socket_endpoint *remote)
{
    long before = p->connect_calls;
    sk_peer_connect_async(p, remote);
    SK_WAIT(p, p->connect_calls > before, "the connection callback");
    return p->connect_result;
}

static void on_write_done(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    struct sk_peer *p = user_data;
    rs_test_counter_lock(&p->counter);
    p->writes_done++;
    p->bytes_written += bytes;
    if (error_code) {
        p->write_errors++;
        p->last_write_error = error_code;
    }
    peer_signal(p);
}

struct echo_chunk {
    struct sk_peer *peer;
    size_t len;
    unsigned char bytes[];
};

static void drain(struct sk_peer *p);

static void on_echo_done(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct echo_chunk *c = user_data;
    struct sk_peer *p = c->peer;
    p->echo_pending -= c->len;
    free(c);
    rs_test_counter_lock(&p->counter);
    p->writes_done++;
    if (error_code) {
        p->write_errors++;
        p->last_write_error = error_code;
    }
    peer_signal(p);
    /* Resume reading once the backlog of echoes has shrunk: no readable
     * callback comes for data that already arrived. */
    if (socket && p->echo_paused && p->echo_pending < SK_ECHO_LOW) {
        p->echo_paused = false;
        drain(p);
    }
}

static void drain(struct sk_peer *p)
{
    static RS__THREAD_LOCAL unsigned char buf[65536];
    for (;;) {
        if (p->echo && p->echo_pending > SK_ECHO_HIGH) {
            p->echo_paused = true;
            return;
        }
        size_t n = 0;
        if (rs_socket_read(p->socket, buf, sizeof buf, &n) != 0) {
            int err = rs_last_error();
            rs_test_counter_lock(&p->counter);
            if (err == RS_ERROR_SOCKET_CLOSED) {
                p->eof = true;
            } else if (err != RS_ERROR_WOULD_BLOCK) {
                p->read_error = err;
            }
            peer_signal(p);
            return;
        }
        if (p->echo) {
            struct echo_chunk *c = malloc(sizeof *c + n);
            assert_non_null(c);
            c->peer = p;
            c->len = n;
            memcpy(c->bytes, buf, n);
            p->echo_pending += n;
            rs_test_counter_lock(&p->counter);
            p->writes_issued++;
            rs_test_counter_unlock(&p->counter);
            if (rs_socket_write(p->socket, c->bytes, n, on_echo_done, c) != 0) {
                p->echo_pending -= n;
                free(c);
                return;
            }
            continue;
        }
        rs_test_counter_lock(&p->counter);
        if (p->len + n > p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 65536;
            while (cap < p->len + n) {
                cap *= 2;
            }
            p->data = realloc(p->data, cap);
            assert_non_null(p->data);
            p->cap = cap;
        }
        memcpy(p->data + p->len, buf, n);
        p->len += n;
        peer_signal(p);
    }
}

static void on_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct sk_peer *p = user_data;
    rs_test_counter_lock(&p->counter);
    p->readable_calls++;
    if (error_code) {
        p->read_error = error_code;
    }
    peer_signal(p);
    if (!p->echo_paused) {
        drain(p);
    }
}

static void subscribe_on_loop(void *arg)
{
    struct sk_peer *p = arg;
    assert_int_equal(rs_socket_subscribe_to_readable_events(p->socket, on_readable, p), 0);
}

void sk_peer_subscribe(struct sk_peer *p)
{
    rs_test_run_on_loop(p->loop, subscribe_on_loop, p);
}

void sk_peer_write_on_loop(struct sk_peer *p, const void *data, size_t len)
{
    rs_test_counter_lock(&p->counter);
    p->writes_issued++;
    rs_test_counter_unlock(&p->counter);
    assert_int_equal(rs_socket_write(p->socket, data, len, on_write_done, p), 0);
}

struct write_call {
    struct sk_peer *peer;
    const void *data;
    size_t len;
};

static void write_on_loop(void *arg)
{
    struct write_call *w = arg;
    sk_peer_write_on_loop(w->peer, w->data, w->len);
}

void sk_peer_write(struct sk_peer *p, const void *data, size_t len)
{
    struct write_call w = {p, data, len};
    rs_test_run_on_loop(p->loop, write_on_loop, &w);
}

void sk_peer_wait_bytes(struct sk_peer *p, size_t n)
{
    SK_WAIT(p, p->len >= n, "bytes to arrive");
}

void sk_peer_free(struct sk_peer *p)
{
    if (!p) {
        return;
    }
    if (p->socket) {
        rs_test_counter_lock(&p->counter);
        p->destroy_issued = true;
        rs_test_counter_unlock(&p->counter);
        assert_int_equal(rs_socket_destroy(p->socket), 0);
        SK_WAIT(p, p->destroy_calls == 1, "the destroy callback");
        assert_int_equal(p->close_calls, 1);
        assert_int_equal(p->destroy_calls, 1);
    }
    rs_test_disown(p);
    rs_test_counter_clean_up(&p->counter);
    free(p->data);
    free(p);
}

/* ---- server ---- */

struct sk_server_guard {
    rs__mutex lock;
    struct sk_server *server; /* NULL once cut from the test's frame */
    rs_socket *listener;      /* the one to destroy if the test failed */
    rs_event_loop *loop;
    bool echo;
};

/* Loop thread. The guard's lock is held for the whole callback, so a test
 * thread that cut the guard knows no callback is still inside the server. */
static void on_accept(rs_socket *listener, int error_code, rs_socket *new_socket, void *user_data)
{
    (void)listener;
    struct sk_server_guard *g = user_data;
    rs__mutex_lock(&g->lock);
    struct sk_server *s = g->server;
    if (error_code) {
        if (s) {
            rs_test_counter_lock(&s->counter);
            s->accept_errors++;
            s->last_accept_error = error_code;
            rs_test_counter_unlock_add(&s->counter, 1);
        }
        rs__mutex_unlock(&g->lock);
        return;
    }
    /* A connection that arrives after the test failed still becomes an
     * owned peer, which the teardown destroys. */
    struct sk_peer *p = sk_peer_wrap(g->loop, new_socket);
    p->echo = g->echo;
    assert_int_equal(rs_socket_assign_to_event_loop(new_socket, g->loop), 0);
    assert_int_equal(rs_socket_subscribe_to_readable_events(new_socket, on_readable, p), 0);
    if (s) {
        rs_test_counter_lock(&s->counter);
        assert_true(s->accepted_count < SK_MAX_ACCEPTED);
        s->accepted[s->accepted_count++] = p;
        rs_test_counter_unlock_add(&s->counter, 1);
    }
    rs__mutex_unlock(&g->lock);
}

/* A wait timed out: the server's frame is about to go. */
static void guard_abandon(void *obj)
{
    struct sk_server_guard *g = obj;
    rs__mutex_lock(&g->lock);
    g->server = NULL;
    rs__mutex_unlock(&g->lock);
}

static void guard_free(struct sk_server_guard *g)
{
    rs__mutex_clean_up(&g->lock);
    free(g);
}

/* The test failed with the server running: destroys the listener (no
 * accept callback starts after that) and frees the guard; the peers it
 * accepted are owned and released on their own. */
static bool guard_release(void *obj)
{
    struct sk_server_guard *g = obj;
    guard_abandon(g);
    if (g->listener && rs_socket_destroy(g->listener) != 0) {
        return false;
    }
    /* A callback that started before the destroy holds the lock. */
    rs__mutex_lock(&g->lock);
    rs__mutex_unlock(&g->lock);
    guard_free(g);
    return true;
}

static struct sk_server_guard *server_guard(struct sk_server *s)
{
    if (!s->guard) {
        struct sk_server_guard *g = calloc(1, sizeof *g);
        assert_non_null(g);
        rs__mutex_init(&g->lock);
        g->server = s;
        g->listener = s->listener;
        g->loop = s->loop;
        g->echo = s->echo;
        rs_test_own(g, guard_release, guard_abandon);
        s->guard = g;
    }
    return s->guard;
}

void sk_server_start(struct sk_server *s, rs_event_loop *loop, const rs_socket_options *options,
                     bool echo, int backlog)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->echo = echo;
    s->domain = options->domain;
    rs_test_counter_init(&s->counter);
    s->listener = rs_socket_new(options);
    assert_non_null(s->listener);
    struct sk_server_guard *g = server_guard(s);
    rs_socket_endpoint ep = sk_loopback(options->domain);
    assert_int_equal(rs_socket_bind(s->listener, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(s->listener, &s->endpoint), 0);
    assert_string_equal(s->endpoint.address, ep.address);
    if (options->domain != RS_SOCKET_LOCAL) {
        assert_true(s->endpoint.port > 0 && s->endpoint.port <= 65535);
    }
    assert_int_equal(rs_socket_listen(s->listener, backlog), 0);
    assert_int_equal(rs_socket_start_accept(s->listener, loop, on_accept, g), 0);
}

void sk_server_restart(struct sk_server *s)
{
    struct sk_server_guard *g = server_guard(s);
    assert_int_equal(rs_socket_start_accept(s->listener, s->loop, on_accept, g), 0);
}

void sk_server_wait_accepted(struct sk_server *s, long count)
{
    SK_WAIT(s, s->accepted_count >= count, "accepted connections");
}

void sk_server_stop(struct sk_server *s)
{
    if (s->listener) {
        assert_int_equal(rs_socket_destroy(s->listener), 0);
        s->listener = NULL;
    }
    if (s->guard) {
        rs_test_disown(s->guard);
        rs__mutex_lock(&s->guard->lock); /* an accept callback still inside */
        rs__mutex_unlock(&s->guard->lock);
        guard_free(s->guard);
        s->guard = NULL;
    }
    for (long i = 0; i < s->accepted_count; i++) {
        sk_peer_free(s->accepted[i]);
    }
    sk_remove_path(s->domain, &s->endpoint);
    rs_test_counter_clean_up(&s->counter);
}

static void nothing(void *arg)
{
    (void)arg;
}

void sk_loop_wait_until(rs_event_loop *loop, uint64_t ms)
{
    rs_test_run_on_loop_after(loop, ms, nothing, NULL);
}

void sk_loop_round_trip(rs_event_loop *loop)
{
    rs_test_run_on_loop(loop, nothing, NULL);
}

/* ---- callbacks that must not run ---- */

void sk_never_connected(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    (void)user_data;
    fail_msg("unexpected connection callback (%s)", rs_error_name(error_code));
}

void sk_never_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    (void)user_data;
    fail_msg("unexpected write completion (%s)", rs_error_name(error_code));
}

void sk_never_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    (void)user_data;
    fail_msg("unexpected readable callback (%s)", rs_error_name(error_code));
}

void sk_never_accepted(rs_socket *listener, int error_code, rs_socket *new_socket, void *user_data)
{
    (void)listener;
    (void)new_socket;
    (void)user_data;
    fail_msg("unexpected accept callback (%s)", rs_error_name(error_code));
}

/* ---- shared scenario bodies ---- */

/* Connects a client to server, then sends `to_server` one way and
 * `to_client` back, and checks both arrive intact. */
struct sk_peer *sk_connect_and_exchange(struct sk_server *server, rs_event_loop *loop,
                                        const rs_socket_options *options)
{
    struct sk_peer *client = sk_peer_new(loop, options);
    assert_int_equal(sk_peer_connect(client, &server->endpoint), 0);
    sk_peer_subscribe(client);
    sk_server_wait_accepted(server, 1);
    struct sk_peer *accepted = server->accepted[server->accepted_count - 1];

    static const char hello[] = "hello from the client";
    static const char reply[] = "and hello back from the server";
    sk_peer_write(client, hello, sizeof hello);
    sk_peer_wait_bytes(accepted, sizeof hello);
    assert_memory_equal(accepted->data, hello, sizeof hello);
    sk_peer_write(accepted, reply, sizeof reply);
    sk_peer_wait_bytes(client, sizeof reply);
    assert_memory_equal(client->data, reply, sizeof reply);
    SK_WAIT(client, client->writes_done == 1, "the client's write completion");
    SK_WAIT(accepted, accepted->writes_done == 1, "the server's write completion");
    assert_int_equal(client->write_errors, 0);
    assert_int_equal(client->bytes_written, sizeof hello);
    assert_int_equal(accepted->bytes_written, sizeof reply);
    return client;
}

struct sk_peer *sk_bound_udp_peer(rs_event_loop *loop)
{
    rs_socket_options options = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    struct sk_peer *p = sk_peer_new(loop, &options);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(p->socket, &ep), 0);
    return p;
}

/* ---- raw clients ---- */

sk_raw_socket sk_raw_connect(const rs_socket_endpoint *ep)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)ep->port);
    assert_int_equal(inet_pton(AF_INET, ep->address, &sa.sin_addr), 1);
#ifdef _WIN32
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    assert_true(s != INVALID_SOCKET);
    DWORD timeout = RS_TEST_TIMEOUT_MS;
#else
    int s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    assert_true(s >= 0);
    struct timeval timeout = {RS_TEST_TIMEOUT_MS / 1000, 0};
#endif
    /* Bounded: a reply that never comes fails the test instead of hanging. */
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&timeout, sizeof timeout),
                     0);
    assert_int_equal(connect(s, (const struct sockaddr *)&sa, sizeof sa), 0);
    return (sk_raw_socket)s;
}

void sk_raw_close(sk_raw_socket s)
{
#ifdef _WIN32
    closesocket((SOCKET)s);
#else
    close(s);
#endif
}

void sk_raw_reset(sk_raw_socket s)
{
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof lg), 0);
    sk_raw_close(s);
}

void sk_raw_send_all(sk_raw_socket s, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        int n = (int)send(s, p, (int)len, 0);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

void sk_raw_recv_all(sk_raw_socket s, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        int n = (int)recv(s, p, (int)len, 0);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}
