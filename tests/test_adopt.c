/*
 * Adopting an OS socket (UD7, test-scenarios.md): sockets the test makes
 * itself with socket() / WSASocket (a connected TCP socket, a listener, a
 * bound UDP socket, a LOCAL stream where the platform has one) become
 * rs_sockets and work like reseau's own; a handle that is invalid, closed,
 * not a socket or of the wrong kind is refused with its own error and left
 * open and unchanged (POSIX: still blocking; Windows: still free to join a
 * completion port of the test's own).
 * Same file on every backend; loopback only, port 0 read back, bounded waits.
 */
#ifndef _WIN32
#define _GNU_SOURCE /* mkstemp, CMSG_* */
#endif
#include "socket_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
typedef SOCKET os_sock;
#define OS_SOCK_BAD INVALID_SOCKET
static void os_close(os_sock s)
{
    closesocket(s);
}
#else
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <spawn.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
typedef int os_sock;
#define OS_SOCK_BAD (-1)
static void os_close(os_sock s)
{
    close(s);
}
#endif

/* ---- OS sockets made by the test ---- */

static os_sock os_socket(int family, int type)
{
#ifdef _WIN32
    os_sock s = WSASocketW(family, type, type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP, NULL, 0,
                           WSA_FLAG_OVERLAPPED);
#else
    os_sock s = socket(family, type, 0);
#endif
    assert_true(s != OS_SOCK_BAD);
    return s;
}

static struct sockaddr_in loopback4(uint16_t port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    return sin;
}

static uint16_t os_port(os_sock s)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

static void os_bind_loopback(os_sock s)
{
    struct sockaddr_in sin = loopback4(0);
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof sin), 0);
}

/* A TCP listener on 127.0.0.1, port chosen by the OS. */
static os_sock os_listener(void)
{
    os_sock s = os_socket(AF_INET, SOCK_STREAM);
    os_bind_loopback(s);
    assert_int_equal(listen(s, 16), 0);
    return s;
}

/* A blocking TCP client connected to 127.0.0.1:port. */
static os_sock os_connected(uint16_t port)
{
    os_sock s = os_socket(AF_INET, SOCK_STREAM);
    struct sockaddr_in sin = loopback4(port);
    assert_int_equal(connect(s, (struct sockaddr *)&sin, sizeof sin), 0);
    return s;
}

/* Bounds the blocking receives of the test's own sockets. */
static void os_recv_timeout(os_sock s)
{
#ifdef _WIN32
    DWORD ms = (DWORD)RS_TEST_TIMEOUT_MS;
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms), 0);
#else
    struct timeval tv = {(time_t)(RS_TEST_TIMEOUT_MS / 1000), 0};
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
#endif
}

/* Reads exactly len bytes (bounded by os_recv_timeout). */
static void os_recv_all(os_sock s, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        int n = (int)recv(s, buf + got, (int)(len - got), 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
}

/* Whether the handle is still an open socket the caller may use. */
static bool os_still_socket(os_sock s)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&type, &len) == 0;
}

/* The handle was left as it was: open, and (POSIX) still blocking and
 * not close-on-exec. */
static void assert_untouched(os_sock s)
{
    assert_true(os_still_socket(s));
#ifndef _WIN32
    int fl = fcntl(s, F_GETFL);
    assert_true(fl >= 0);
    assert_false(fl & O_NONBLOCK);
    int fd = fcntl(s, F_GETFD);
    assert_true(fd >= 0);
    assert_false(fd & FD_CLOEXEC);
#endif
}

/* As assert_untouched, and (Windows) not associated with any completion
 * port: a port of the test's own takes it, which a handle allows once in
 * its life, so this comes last, before the test closes the handle. */
static void assert_untouched_final(os_sock s)
{
    assert_untouched(s);
#ifdef _WIN32
    HANDLE port = CreateIoCompletionPort((HANDLE)s, NULL, 0, 1);
    assert_non_null(port);
    CloseHandle(port);
#endif
}

static rs_socket_options tcp4(void)
{
    return sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
}

static rs_socket_options udp4(void)
{
    return sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
}

/* ---- connected TCP ---- */

static void test_ud7_adopt_connected_tcp(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options o = tcp4();
    struct sk_server server;
    sk_server_start(&server, loop, &o, true, 16);

    os_sock c = os_connected((uint16_t)server.endpoint.port);
    uint16_t client_port = os_port(c);
    rs_socket *s = rs_socket_adopt(&o, (rs_os_socket)c, RS_SOCKET_ADOPT_CONNECTED, loop);
    assert_non_null(s);
    struct sk_peer *p = sk_peer_wrap(loop, s);
    assert_ptr_equal(rs_socket_get_event_loop(s), loop);
    assert_true(rs_socket_is_open(s));

    rs_socket_endpoint ep;
    assert_int_equal(rs_socket_get_remote_address(s, &ep), 0);
    assert_string_equal(ep.address, "127.0.0.1");
    assert_int_equal(ep.port, server.endpoint.port);
    assert_int_equal(rs_socket_get_bound_address(s, &ep), 0);
    assert_int_equal(ep.port, client_port);
    /* Assigned already: a second loop is refused. */
    assert_fails_with(rs_socket_assign_to_event_loop(s, loop),
                      RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);

    static const char msg[] = "adopted and echoed";
    sk_peer_subscribe(p);
    sk_peer_write(p, msg, sizeof msg);
    sk_peer_wait_bytes(p, sizeof msg);
    rs__mutex_lock(&p->counter.lock);
    assert_memory_equal(p->data, msg, sizeof msg);
    rs__mutex_unlock(&p->counter.lock);

    sk_peer_free(p); /* closes the adopted handle */
    sk_server_stop(&server);
}

/* ---- listening TCP ---- */

static void test_ud7_adopt_listener_tcp(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options o = tcp4();
    os_sock l = os_listener();
    uint16_t port = os_port(l);
    /* A connection that queued before the adoption is accepted too. */
    os_sock early = os_connected(port);

    struct sk_server server;
    memset(&server, 0, sizeof server);
    server.loop = loop;
    server.echo = true;
    server.domain = RS_SOCKET_IPV4;
    rs_test_counter_init(&server.counter);
    server.listener = rs_socket_adopt(&o, (rs_os_socket)l, RS_SOCKET_ADOPT_LISTENING, loop);
    assert_non_null(server.listener);
    assert_int_equal(rs_socket_get_bound_address(server.listener, &server.endpoint), 0);
    assert_string_equal(server.endpoint.address, "127.0.0.1");
    assert_int_equal(server.endpoint.port, port);
    sk_server_restart(&server);

    /* Both connections, the early one and one made now, are echoed. */
    os_sock late = os_connected(port);
    os_sock clients[2] = {early, late};
    for (int i = 0; i < 2; i++) {
        static const char msg[] = "through an adopted listener";
        char back[sizeof msg];
        os_recv_timeout(clients[i]);
        assert_int_equal((int)send(clients[i], msg, (int)sizeof msg, 0), (int)sizeof msg);
        os_recv_all(clients[i], back, sizeof back);
        assert_memory_equal(back, msg, sizeof msg);
        os_close(clients[i]);
    }
    sk_server_wait_accepted(&server, 2);
    sk_server_stop(&server);
}

/* ---- bound UDP ---- */

struct ud7_udp {
    struct rs_test_counter echoed;
    rs_socket *socket;
    unsigned char buf[512];
    rs_socket_endpoint from;
};

static void ud7_udp_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    struct ud7_udp *u = user_data;
    assert_int_equal(error_code, 0);
    rs_test_counter_add(&u->echoed, 1);
}

/* Echoes each datagram to its sender (one datagram in flight at a time:
 * the buffer is reused once its write completed). */
static void ud7_udp_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct ud7_udp *u = user_data;
    assert_int_equal(error_code, 0);
    size_t n = 0;
    if (rs_socket_read_from(socket, u->buf, sizeof u->buf, &n, &u->from) == 0) {
        assert_int_equal(rs_socket_write_to(socket, &u->from, u->buf, n, ud7_udp_written, u), 0);
    }
}

static bool ud7_udp_release(void *obj)
{
    struct ud7_udp *u = obj;
    rs_test_counter_clean_up(&u->echoed);
    free(u);
    return true;
}

struct ud7_udp_adopt {
    rs_socket_options options;
    os_sock handle;
    rs_event_loop *loop;
    struct ud7_udp *u;
};

/* On the loop's thread: the adoption runs inline there. */
static void ud7_udp_adopt_on_loop(void *arg)
{
    struct ud7_udp_adopt *a = arg;
    a->u->socket =
        rs_socket_adopt(&a->options, (rs_os_socket)a->handle, RS_SOCKET_ADOPT_BOUND, a->loop);
    if (a->u->socket) {
        assert_int_equal(
            rs_socket_subscribe_to_readable_events(a->u->socket, ud7_udp_readable, a->u), 0);
    }
}

static void test_ud7_adopt_bound_udp(void **state)
{
    rs_event_loop *loop = *state;
    struct ud7_udp *u = calloc(1, sizeof *u);
    assert_non_null(u);
    rs_test_counter_init(&u->echoed);
    rs_test_own(u, ud7_udp_release, NULL);

    os_sock h = os_socket(AF_INET, SOCK_DGRAM);
    os_bind_loopback(h);
    uint16_t port = os_port(h);
    struct ud7_udp_adopt a = {udp4(), h, loop, u};
    rs_test_run_on_loop(loop, ud7_udp_adopt_on_loop, &a);
    assert_non_null(u->socket);
    struct sk_peer *p = sk_peer_wrap(loop, u->socket);
    rs_socket_endpoint ep;
    assert_int_equal(rs_socket_get_bound_address(u->socket, &ep), 0);
    assert_int_equal(ep.port, port);
    assert_fails_with(rs_socket_get_remote_address(u->socket, &ep), RS_ERROR_NOT_CONNECTED);

    /* Two senders the test made: each gets its own datagrams back. */
    os_sock c1 = os_socket(AF_INET, SOCK_DGRAM);
    os_sock c2 = os_socket(AF_INET, SOCK_DGRAM);
    os_recv_timeout(c1);
    os_recv_timeout(c2);
    struct sockaddr_in to = loopback4(port);
    for (int i = 0; i < 3; i++) {
        os_sock c = i % 2 ? c2 : c1;
        char msg[16], back[16];
        snprintf(msg, sizeof msg, "dgram %d", i);
        int len = (int)strlen(msg);
        assert_int_equal(
            (int)sendto(c, msg, len, 0, (const struct sockaddr *)&to, (socklen_t)sizeof to), len);
        assert_int_equal((int)recv(c, back, (int)sizeof back, 0), len);
        assert_memory_equal(back, msg, (size_t)len);
    }
    rs_test_counter_await(&u->echoed, 3, "echoed datagrams");
    os_close(c1);
    os_close(c2);
    sk_peer_free(p);
    rs_test_disown(u);
    ud7_udp_release(u);
}

/* ---- LOCAL (a Unix socket pair on POSIX; named pipes on Windows) ---- */

static void test_ud7_adopt_local_stream(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options o = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
#ifdef _WIN32
    /* The refusal is the scenario's part Windows has: LOCAL sockets are
     * named pipes there, which rs_socket_adopt does not take. */
    os_sock h = os_socket(AF_INET, SOCK_STREAM);
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)h, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_PLATFORM_NOT_SUPPORTED);
    assert_untouched_final(h);
    os_close(h);
    RS_TEST_SKIP("LOCAL sockets are named pipes on Windows: nothing of that kind to adopt");
#else
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    rs_socket *s = rs_socket_adopt(&o, sv[0], RS_SOCKET_ADOPT_CONNECTED, loop);
    assert_non_null(s);
    struct sk_peer *p = sk_peer_wrap(loop, s);
    sk_peer_subscribe(p);
    static const char msg[] = "over a socket pair";
    assert_int_equal((int)write(sv[1], msg, sizeof msg), (int)sizeof msg);
    sk_peer_wait_bytes(p, sizeof msg);
    sk_peer_write(p, msg, sizeof msg);
    char back[sizeof msg];
    os_recv_timeout(sv[1]);
    os_recv_all(sv[1], back, sizeof back);
    assert_memory_equal(back, msg, sizeof msg);
    /* The peer's end of stream reaches the adopted socket. */
    close(sv[1]);
    SK_WAIT(p, p->eof, "end of stream");
    sk_peer_free(p);
#endif
}

/* ---- ownership: reseau closes what it adopted ---- */

static void test_ud7_adopt_close_owns_handle(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options o = udp4();
    os_sock h = os_socket(AF_INET, SOCK_DGRAM);
    os_bind_loopback(h);
    rs_socket *s = rs_socket_adopt(&o, (rs_os_socket)h, RS_SOCKET_ADOPT_BOUND, loop);
    assert_non_null(s);
    assert_int_equal(rs_socket_close(s), 0);
    assert_false(rs_socket_is_open(s));
    /* The handle is gone with the close (no other thread of the test makes
     * handles meanwhile, so its number cannot have been reused). */
    assert_false(os_still_socket(h));
    assert_int_equal(rs_socket_destroy(s), 0);
}

/* ---- IPv6: the dual-stack setting is read from the handle ---- */

static void test_ud7_adopt_ipv6_dual_stack(void **state)
{
    rs_event_loop *loop = *state;
#ifdef _WIN32
    os_sock h = WSASocketW(AF_INET6, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
#else
    os_sock h = socket(AF_INET6, SOCK_DGRAM, 0);
#endif
    if (h == OS_SOCK_BAD) {
        RS_TEST_SKIP("no IPv6 on this host");
    }
    /* On: binding to ::1 turns it on anyway on Linux (a socket bound to
     * an IPv6 address that is not the wildcard serves IPv6 only). */
    int on = 1;
    assert_int_equal(setsockopt(h, IPPROTO_IPV6, IPV6_V6ONLY, (const char *)&on, sizeof on), 0);
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    if (bind(h, (struct sockaddr *)&sin6, sizeof sin6) != 0) {
        os_close(h);
        RS_TEST_SKIP("no IPv6 loopback on this host");
    }
    rs_socket_options o = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV6);
    o.ipv6_dual_stack = true; /* what the handle says wins */
    rs_socket *s = rs_socket_adopt(&o, (rs_os_socket)h, RS_SOCKET_ADOPT_BOUND, loop);
    assert_non_null(s);
    rs_socket_options got;
    assert_int_equal(rs_socket_get_options(s, &got), 0);
    assert_false(got.ipv6_dual_stack);
    rs_socket_endpoint ep;
    assert_int_equal(rs_socket_get_bound_address(s, &ep), 0);
    assert_string_equal(ep.address, "::1");
    assert_int_equal(rs_socket_destroy(s), 0);
}

/* ---- bad input: specific errors, handle untouched ---- */

static void test_ud7_adopt_invalid_arguments(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options o = tcp4();
    os_sock l = os_listener();
    assert_null_with(rs_socket_adopt(NULL, (rs_os_socket)l, RS_SOCKET_ADOPT_LISTENING, loop),
                     RS_ERROR_INVALID_ARGUMENT);
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)l, RS_SOCKET_ADOPT_LISTENING, NULL),
                     RS_ERROR_INVALID_ARGUMENT);
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)l, (rs_socket_adopt_kind)0, loop),
                     RS_ERROR_INVALID_ARGUMENT);
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)l, (rs_socket_adopt_kind)99, loop),
                     RS_ERROR_INVALID_ARGUMENT);
    assert_null_with(rs_socket_adopt(&o, RS_OS_SOCKET_INVALID, RS_SOCKET_ADOPT_LISTENING, loop),
                     RS_ERROR_INVALID_ARGUMENT);
#ifndef _WIN32
    assert_null_with(rs_socket_adopt(&o, -7, RS_SOCKET_ADOPT_LISTENING, loop),
                     RS_ERROR_INVALID_ARGUMENT);
#endif
    rs_socket_options bad = o;
    bad.type = (rs_socket_type)42;
    assert_null_with(rs_socket_adopt(&bad, (rs_os_socket)l, RS_SOCKET_ADOPT_LISTENING, loop),
                     RS_ERROR_INVALID_OPTIONS);
    /* A listening datagram socket, a bound stream: contradictions. */
    rs_socket_options u = udp4();
    assert_null_with(rs_socket_adopt(&u, (rs_os_socket)l, RS_SOCKET_ADOPT_LISTENING, loop),
                     RS_ERROR_INVALID_OPTIONS);
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)l, RS_SOCKET_ADOPT_BOUND, loop),
                     RS_ERROR_INVALID_OPTIONS);
    assert_untouched_final(l);
    os_close(l);
}

/* Before rs_library_init: refused first, whatever the arguments. */
static void test_ud7_adopt_library_not_initialized(void **state)
{
    (void)state;
    rs_socket_options o = tcp4();
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)0, RS_SOCKET_ADOPT_CONNECTED, NULL),
                     RS_ERROR_LIBRARY_NOT_INITIALIZED);
}

static void test_ud7_adopt_closed_handle(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options o = tcp4();
    os_sock h = os_socket(AF_INET, SOCK_STREAM);
    os_close(h);
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)h, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_INVALID_ARGUMENT);
}

static void test_ud7_adopt_not_a_socket(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options o = tcp4();
#ifdef _WIN32
    /* A pipe's handle and a file's: open handles that are no sockets. */
    HANDLE r = NULL, w = NULL;
    assert_true(CreatePipe(&r, &w, NULL, 0));
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)r, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_NOT_A_SOCKET);
    DWORD flags = 0;
    assert_true(GetHandleInformation(r, &flags)); /* still open */
    DWORD wrote = 0;
    assert_true(WriteFile(w, "x", 1, &wrote, NULL)); /* and working */
    CloseHandle(r);
    CloseHandle(w);
    char path[MAX_PATH], dir[MAX_PATH];
    assert_true(GetTempPathA(sizeof dir, dir) > 0);
    assert_true(GetTempFileNameA(dir, "rs7", 0, path) != 0);
    HANDLE f = CreateFileA(
        path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
        FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE | FILE_FLAG_OVERLAPPED, NULL);
    assert_true(f != INVALID_HANDLE_VALUE);
    assert_null_with(rs_socket_adopt(&o, (rs_os_socket)f, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_NOT_A_SOCKET);
    /* Not associated with the loop's port: a port of the test's own takes
     * it (an overlapped handle: Wine refuses to associate any other). */
    HANDLE port = CreateIoCompletionPort(f, NULL, 0, 1);
    assert_non_null(port);
    CloseHandle(port);
    CloseHandle(f);
#else
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_null_with(rs_socket_adopt(&o, fds[0], RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_NOT_A_SOCKET);
    int fl = fcntl(fds[0], F_GETFL);
    assert_true(fl >= 0);
    assert_false(fl & O_NONBLOCK);
    assert_int_equal((int)write(fds[1], "x", 1), 1);
    char c = 0;
    assert_int_equal((int)read(fds[0], &c, 1), 1);
    close(fds[0]);
    close(fds[1]);
    char path[] = "/tmp/rs_ud7_XXXXXX";
    int f = mkstemp(path);
    assert_true(f >= 0);
    unlink(path);
    assert_null_with(rs_socket_adopt(&o, f, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_NOT_A_SOCKET);
    assert_int_equal((int)write(f, "x", 1), 1); /* still open */
    close(f);
#endif
}

static void test_ud7_adopt_wrong_kind(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options t = tcp4();
    rs_socket_options u = udp4();
    rs_socket_options t6 = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV6);

    /* A fresh TCP socket: neither connected nor listening. */
    os_sock fresh = os_socket(AF_INET, SOCK_STREAM);
    assert_null_with(rs_socket_adopt(&t, (rs_os_socket)fresh, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_NOT_CONNECTED);
    assert_null_with(rs_socket_adopt(&t, (rs_os_socket)fresh, RS_SOCKET_ADOPT_LISTENING, loop),
                     RS_ERROR_INVALID_STATE);
    /* Type and family must be the options'. */
    assert_null_with(rs_socket_adopt(&u, (rs_os_socket)fresh, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_INVALID_OPTIONS);
    assert_null_with(rs_socket_adopt(&t6, (rs_os_socket)fresh, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_INVALID_OPTIONS);
    assert_untouched_final(fresh);
    os_close(fresh);

    /* A listener asked for as a connection. */
    os_sock l = os_listener();
    assert_null_with(rs_socket_adopt(&t, (rs_os_socket)l, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_NOT_CONNECTED);
    /* A connection asked for as a listener. */
    os_sock c = os_connected(os_port(l));
    assert_null_with(rs_socket_adopt(&t, (rs_os_socket)c, RS_SOCKET_ADOPT_LISTENING, loop),
                     RS_ERROR_INVALID_STATE);
    assert_untouched_final(c);
    os_close(c);
    assert_untouched_final(l);
    os_close(l);

    /* UDP: not bound; connected where bound and unconnected is asked for. */
    os_sock d = os_socket(AF_INET, SOCK_DGRAM);
    assert_null_with(rs_socket_adopt(&u, (rs_os_socket)d, RS_SOCKET_ADOPT_BOUND, loop),
                     RS_ERROR_INVALID_STATE);
    assert_null_with(rs_socket_adopt(&u, (rs_os_socket)d, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_NOT_CONNECTED);
    assert_null_with(rs_socket_adopt(&t, (rs_os_socket)d, RS_SOCKET_ADOPT_CONNECTED, loop),
                     RS_ERROR_INVALID_OPTIONS);
    assert_untouched(d);
    os_bind_loopback(d);
    struct sockaddr_in to = loopback4(9);
    assert_int_equal(connect(d, (struct sockaddr *)&to, sizeof to), 0);
    assert_null_with(rs_socket_adopt(&u, (rs_os_socket)d, RS_SOCKET_ADOPT_BOUND, loop),
                     RS_ERROR_INVALID_STATE);
    assert_untouched(d);
    /* ... and as what it is, a connected UDP socket, it is taken. */
    rs_socket *s = rs_socket_adopt(&u, (rs_os_socket)d, RS_SOCKET_ADOPT_CONNECTED, loop);
    assert_non_null(s);
    rs_socket_endpoint ep;
    assert_int_equal(rs_socket_get_remote_address(s, &ep), 0);
    assert_int_equal(ep.port, 9);
    assert_int_equal(rs_socket_destroy(s), 0);
}

/* Another loop's thread may not adopt for this loop: it cannot wait. */
struct ud7_other {
    rs_event_loop *loop;
    os_sock handle;
    rs_socket *result;
    int error;
};

static void ud7_adopt_from_other(void *arg)
{
    struct ud7_other *o = arg;
    rs_socket_options u = udp4();
    o->result = rs_socket_adopt(&u, (rs_os_socket)o->handle, RS_SOCKET_ADOPT_BOUND, o->loop);
    o->error = rs_last_error();
}

static void test_ud7_adopt_wrong_thread(void **state)
{
    rs_event_loop *loop = *state;
    rs_event_loop *other = rs_event_loop_new(NULL);
    assert_non_null(other);
    assert_int_equal(rs_event_loop_run(other), 0);
    os_sock d = os_socket(AF_INET, SOCK_DGRAM);
    os_bind_loopback(d);
    struct ud7_other o = {loop, d, NULL, 0};
    rs_test_run_on_loop(other, ud7_adopt_from_other, &o);
    assert_null(o.result);
    assert_string_equal(rs_error_name(o.error), rs_error_name(RS_ERROR_WRONG_THREAD));
    assert_untouched_final(d);
    os_close(d);
    assert_int_equal(rs_event_loop_destroy(other), 0);
}

/* IOCP: a handle has one completion port for its life. */
static void test_ud7_adopt_associated_elsewhere(void **state)
{
    rs_event_loop *loop = *state;
#if RS_TEST_IOCP
    rs_socket_options u = udp4();
    os_sock d = os_socket(AF_INET, SOCK_DGRAM);
    os_bind_loopback(d);
    HANDLE port = CreateIoCompletionPort((HANDLE)d, NULL, 0, 1);
    assert_non_null(port);
    assert_null_with(rs_socket_adopt(&u, (rs_os_socket)d, RS_SOCKET_ADOPT_BOUND, loop),
                     RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
    /* Left as it was: open, bound, and still working with its own port. */
    assert_true(os_still_socket(d));
    assert_true(os_port(d) > 0);
    CloseHandle(port);
    os_close(d);
#elif defined(_WIN32)
    (void)loop;
    RS_TEST_SKIP("the libevent backend on Windows waits with select and associates no "
                 "completion port: a port of the application's is no conflict there");
#else
    (void)loop;
    RS_TEST_SKIP("POSIX descriptors have no completion port to be associated with");
#endif
}

/* ---- a socket made by another program: Python, passed over SCM_RIGHTS ---- */

#ifndef _WIN32
/* The Python side: a TCP listener on 127.0.0.1 port 0, handed to the test
 * over the Unix socket at descriptor 3, as a parent process or a service
 * manager would; it then waits for the test to close its end. */
static const char python_listener[] = "import socket\n"
                                      "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                                      "s.bind(('127.0.0.1', 0))\n"
                                      "s.listen(16)\n"
                                      "u = socket.socket(fileno=3)\n"
                                      "socket.send_fds(u, [b'L'], [s.fileno()])\n"
                                      "u.recv(1)\n";

/* Receives one descriptor sent with SCM_RIGHTS. */
static int receive_fd(int unix_fd)
{
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    if (recvmsg(unix_fd, &msg, 0) != 1) {
        return -1;
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
        return -1;
    }
    int fd = -1;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}
#endif

static void test_ud7_adopt_python_listener(void **state)
{
    rs_event_loop *loop = *state;
#ifdef _WIN32
    (void)loop;
    RS_TEST_SKIP("no Windows Python under Wine to make the socket (the test's own WSASocket "
                 "listener is test_ud7_adopt_listener_tcp)");
#else
    /* Close-on-exec: Python gets only its end, as descriptor 3 (dup2
     * clears the flag on the copy), so closing ours ends its wait. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, sv[1], 3), 0);
    char *argv[] = {"python3", "-c", (char *)python_listener, NULL};
    extern char **environ;
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        RS_TEST_SKIP("python3 is not installed");
    }
    os_recv_timeout(sv[0]);
    int l = receive_fd(sv[0]);
    assert_true(l >= 0);

    rs_socket_options o = tcp4();
    struct sk_server server;
    memset(&server, 0, sizeof server);
    server.loop = loop;
    server.echo = true;
    server.domain = RS_SOCKET_IPV4;
    rs_test_counter_init(&server.counter);
    server.listener = rs_socket_adopt(&o, l, RS_SOCKET_ADOPT_LISTENING, loop);
    assert_non_null(server.listener);
    assert_int_equal(rs_socket_get_bound_address(server.listener, &server.endpoint), 0);
    sk_server_restart(&server);
    os_sock c = os_connected((uint16_t)server.endpoint.port);
    static const char msg[] = "to a listener Python made";
    char back[sizeof msg];
    os_recv_timeout(c);
    assert_int_equal((int)send(c, msg, sizeof msg, 0), (int)sizeof msg);
    os_recv_all(c, back, sizeof back);
    assert_memory_equal(back, msg, sizeof msg);
    os_close(c);
    sk_server_stop(&server);

    close(sv[0]); /* Python's recv returns: it exits */
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ud7_adopt_connected_tcp, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_listener_tcp, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_bound_udp, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_local_stream, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_close_owns_handle, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_ipv6_dual_stack, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_invalid_arguments, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test(test_ud7_adopt_library_not_initialized),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_closed_handle, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_not_a_socket, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_wrong_kind, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_wrong_thread, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_associated_elsewhere, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud7_adopt_python_listener, rs_test_setup_loop,
                                        rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("adopt", tests);
}
