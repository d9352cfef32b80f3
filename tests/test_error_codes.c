/*
 * Documented error codes of api/reseau/socket.h and api/reseau/pipe.h that no
 * scenario elsewhere produces: one test per function and code, named
 * test_err_FUNCTION_CODE, on every backend. A code the OS of one backend
 * cannot produce, or that needs a condition a test cannot create here, is a
 * reported skip with its reason. docs/conformance-errors.md lists, for every
 * documented code, the test that produces it.
 * Loopback only, port 0 read back, bounded waits.
 */
#include "socket_fixture.h"

#include "../common/atomics.h"
#include "../common/socket_impl.h"

#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

/* ---- rs_socket_new ---- */

static void test_err_rs_socket_new_library_not_initialized(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    assert_null_with(rs_socket_new(&options), RS_ERROR_LIBRARY_NOT_INITIALIZED);
}

static void test_err_rs_socket_new_address_family_not_supported(void **state)
{
    (void)state;
    /* The OS refuses the family only on a host built without IPv6; on any
     * other host the socket is made and there is nothing to check. */
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV6);
    rs_socket *s = rs_socket_new(&options);
    if (s) {
        assert_int_equal(rs_socket_destroy(s), 0);
        RS_TEST_SKIP("this host supports IPv6: the OS refuses the family only where IPv6 is "
                     "absent");
    }
    assert_string_equal(rs_error_name(rs_last_error()),
                        rs_error_name(RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED));
}

/* The OS refusing IPV6_V6ONLY, which every IPv6 socket gets when it is
 * made, through the option-fault hook: no socket, nothing left behind (the
 * fixture's leak check). */
static void test_err_rs_socket_new_socket_option(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV6);
    rs__socket_inject_option_faults(1);
    rs_socket *s = rs_socket_new(&options);
    int error = rs_last_error();
    rs__socket_inject_option_faults(0);
    if (s) {
        assert_int_equal(rs_socket_destroy(s), 0);
        fail_msg("%s", "an IPv6 socket was made although its IPV6_V6ONLY was refused");
    }
    assert_string_equal(rs_error_name(error), rs_error_name(RS_ERROR_SOCKET_OPTION));
}

#ifndef _WIN32
/* Lowers the descriptor limit and uses up every descriptor below it, so
 * that the next one the library asks for fails with EMFILE. */
struct fd_exhaustion {
    struct rlimit saved;
    int fds[256];
    int count;
};

static void fds_exhaust(struct fd_exhaustion *x)
{
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &x->saved), 0);
    struct rlimit low = x->saved;
    int probe = dup(0);
    assert_true(probe >= 0);
    close(probe);
    /* Room for what is open now plus the descriptors taken below. */
    low.rlim_cur = (rlim_t)probe + 128;
    if (low.rlim_cur > x->saved.rlim_cur) {
        low.rlim_cur = x->saved.rlim_cur;
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    x->count = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            assert_int_equal(errno, EMFILE);
            break;
        }
        if (x->count == (int)RS__ARRAY_LEN(x->fds)) {
            close(fd);
            fail_msg("the descriptor limit was not reached");
        }
        x->fds[x->count++] = fd;
    }
}

static void fds_restore(struct fd_exhaustion *x)
{
    for (int i = 0; i < x->count; i++) {
        close(x->fds[i]);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &x->saved), 0);
}
#endif

#ifdef _WIN32
#define NO_HANDLE_LIMIT                                                                            \
    "Windows has no per-process socket or pipe handle limit a test can lower; the code comes "     \
    "from WSAEMFILE / ERROR_TOO_MANY_OPEN_FILES (test_parity's mapping tables)"
#endif

static void test_err_rs_socket_new_too_many_handles(void **state)
{
    (void)state;
#ifdef _WIN32
    RS_TEST_SKIP(NO_HANDLE_LIMIT);
#else
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct fd_exhaustion x;
    fds_exhaust(&x);
    rs_socket *s = rs_socket_new(&options);
    int error = rs_last_error();
    fds_restore(&x);
    if (s) {
        rs_socket_destroy(s);
        fail_msg("a socket was made with no descriptor left");
    }
    assert_string_equal(rs_error_name(error), rs_error_name(RS_ERROR_TOO_MANY_HANDLES));
    /* Nothing is held: with descriptors back, a socket is made. */
    s = rs_socket_new(&options);
    assert_non_null(s);
    assert_int_equal(rs_socket_destroy(s), 0);
#endif
}

/* ---- rs_socket_close ---- */

/* An allocator that fails on the thread that armed it only, so a loop's
 * own allocations meanwhile are not hit. */
static RS__THREAD_LOCAL bool fail_here;
static volatile long failures_injected;

static void *arming_acquire(rs_allocator *a, size_t size)
{
    (void)a;
    if (fail_here) {
        rs__atomic_add(&failures_injected, 1);
        return NULL;
    }
    return malloc(size);
}

static void arming_release(rs_allocator *a, void *p)
{
    (void)a;
    free(p);
}

static rs_allocator arming = {arming_acquire, arming_release, NULL};

struct other_loop_close {
    rs_socket *socket;
    int rc;
    int error;
};

static void close_from_other_loop(void *arg)
{
    struct other_loop_close *c = arg;
    fail_here = true;
    c->rc = rs_socket_close(c->socket);
    c->error = rs_last_error();
    fail_here = false;
}

static void test_err_rs_socket_close_out_of_memory(void **state)
{
    (void)state;
    assert_int_equal(rs_set_allocator(&arming), 0);
    assert_int_equal(rs_library_init(), 0);
    rs_event_loop *a = rs_event_loop_new(NULL);
    rs_event_loop *b = rs_event_loop_new(NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(rs_event_loop_run(a), 0);
    assert_int_equal(rs_event_loop_run(b), 0);
    struct sk_peer *p = sk_bound_udp_peer(a);
    assert_int_equal(rs_socket_assign_to_event_loop(p->socket, a), 0);

    /* From another loop's thread a close is a task for the socket's loop
     * (it does not wait): the task is what cannot be allocated. */
    long before = rs__atomic_load(&failures_injected);
    struct other_loop_close c = {p->socket, 0, 0};
    rs_test_run_on_loop(b, close_from_other_loop, &c);
    assert_int_equal(c.rc, -1);
    assert_string_equal(rs_error_name(c.error), rs_error_name(RS_ERROR_OUT_OF_MEMORY));
    assert_int_equal(rs__atomic_load(&failures_injected) - before, 1);
    /* Nothing changed: the socket is open, and closes once memory is back. */
    assert_true(rs_socket_is_open(p->socket));
    assert_int_equal(p->close_calls, 0);
    assert_int_equal(rs_socket_close(p->socket), 0);
    assert_false(rs_socket_is_open(p->socket));
    sk_peer_free(p);

    assert_int_equal(rs_event_loop_destroy(a), 0);
    assert_int_equal(rs_event_loop_destroy(b), 0);
    assert_int_equal(rs_library_cleanup(), 0);
    assert_int_equal(rs_live_allocations(), 0);
    assert_int_equal(rs_set_allocator(NULL), 0);
}

/* ---- rs_socket_bind ---- */

static void test_err_rs_socket_bind_invalid_port(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    ep.port = 65536;
    assert_fails_with(rs_socket_bind(s, &ep), RS_ERROR_INVALID_PORT);
    /* The socket is still fresh. */
    ep.port = 0;
    assert_int_equal(rs_socket_bind(s, &ep), 0);
    assert_int_equal(rs_socket_destroy(s), 0);
}

static void test_err_rs_socket_bind_address_not_available(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    /* 192.0.2.1 (TEST-NET-1, RFC 5737) is an address of no host's
     * interface: nothing is sent, the bind is refused at once. */
    rs_socket_endpoint ep = {.port = 0};
    strcpy(ep.address, "192.0.2.1");
    assert_fails_with(rs_socket_bind(s, &ep), RS_ERROR_ADDRESS_NOT_AVAILABLE);
    rs_socket_endpoint lo = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(s, &lo), 0);
    assert_int_equal(rs_socket_destroy(s), 0);
}

static void test_err_rs_socket_bind_socket_option(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    options.tcp_nodelay = RS_SOCKET_OPTION_ON;
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    rs__socket_inject_option_faults(1);
    int rc = rs_socket_bind(s, &ep);
    int error = rs_last_error();
    rs__socket_inject_option_faults(0);
    assert_int_equal(rc, -1);
    assert_string_equal(rs_error_name(error), rs_error_name(RS_ERROR_SOCKET_OPTION));
    assert_fails_with(rs_socket_get_bound_address(s, &ep), RS_ERROR_INVALID_STATE);
    /* Still fresh: the same bind works once the OS agrees. */
    assert_int_equal(rs_socket_bind(s, &ep), 0);
    assert_int_equal(rs_socket_destroy(s), 0);
}

/* ---- rs_socket_connect ---- */

static void test_err_rs_socket_connect_event_loop_already_assigned(void **state)
{
    rs_event_loop *loop = *state;
    rs_event_loop *other = rs_event_loop_new(NULL);
    assert_non_null(other);
    assert_int_equal(rs_event_loop_run(other), 0);
    struct sk_peer *p = sk_bound_udp_peer(loop);
    assert_int_equal(rs_socket_assign_to_event_loop(p->socket, loop), 0);
    rs_socket_endpoint remote = sk_loopback(RS_SOCKET_IPV4);
    remote.port = 9;
    assert_fails_with(rs_socket_connect(p->socket, &remote, other, sk_never_connected, NULL),
                      RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
    assert_ptr_equal(rs_socket_get_event_loop(p->socket), loop);
    assert_true(rs_socket_is_open(p->socket));
    sk_peer_free(p);
    assert_int_equal(rs_event_loop_destroy(other), 0);
}

static void test_err_rs_socket_connect_invalid_port(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    rs_socket_endpoint remote = sk_loopback(RS_SOCKET_IPV4);
    remote.port = 0;
    assert_fails_with(rs_socket_connect(s, &remote, loop, sk_never_connected, NULL),
                      RS_ERROR_INVALID_PORT);
    remote.port = 65536;
    assert_fails_with(rs_socket_connect(s, &remote, loop, sk_never_connected, NULL),
                      RS_ERROR_INVALID_PORT);
    assert_null(rs_socket_get_event_loop(s));
    assert_true(rs_socket_is_open(s));
    assert_int_equal(rs_socket_destroy(s), 0);
}

static void test_err_rs_socket_connect_invalid_address(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    static const char *const bad[] = {"not-an-address", "127.0.0.256", "::1", ""};
    for (size_t i = 0; i < RS__ARRAY_LEN(bad); i++) {
        rs_socket_endpoint remote = {.port = 80};
        strcpy(remote.address, bad[i]);
        assert_fails_with(rs_socket_connect(s, &remote, loop, sk_never_connected, NULL),
                          RS_ERROR_INVALID_ADDRESS);
    }
    assert_null(rs_socket_get_event_loop(s));
    assert_true(rs_socket_is_open(s));
    assert_int_equal(rs_socket_destroy(s), 0);
}

static void test_err_rs_socket_connect_no_permission(void **state)
{
#if RS_TEST_IOCP
    (void)state;
    RS_TEST_SKIP("a pipe this process creates admits its own user (its DACL names the creating "
                 "user): refusing it needs another user's pipe");
#elif defined(_WIN32)
    (void)state;
    sk_require_local();
    RS_TEST_SKIP("an AF_UNIX socket file on Windows is guarded by its directory's ACL, which this "
                 "process's own user may always use: refusing it needs another user's socket");
#else
    rs_event_loop *loop = *state;
    if (geteuid() == 0) {
        RS_TEST_SKIP("running as root, which the file permissions of a socket path do not stop");
    }
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    /* The path exists and is listened at, but may not be opened. */
    assert_int_equal(chmod(server.endpoint.address, 0), 0);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    assert_fails_with(rs_socket_connect(s, &server.endpoint, loop, sk_never_connected, NULL),
                      RS_ERROR_NO_PERMISSION);
    assert_null(rs_socket_get_event_loop(s));
    assert_true(rs_socket_is_open(s));
    assert_int_equal(rs_socket_destroy(s), 0);
    sk_server_stop(&server);
#endif
}

/* ---- rs_socket_read ---- */

struct reset_server {
    struct rs_test_counter counter;
    rs_event_loop *loop;
    struct sk_peer *accepted;
    bool data_arrived;
};

/* Notes that data arrived, and leaves it unread. */
static void note_data_arrived(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct reset_server *r = user_data;
    rs_test_counter_lock(&r->counter);
    r->data_arrived = r->data_arrived || error_code == 0;
    rs_test_counter_unlock_add(&r->counter, 1);
}

static void accept_one_unread(rs_socket *listener, int error_code, rs_socket *new_socket,
                              void *user_data)
{
    (void)listener;
    struct reset_server *r = user_data;
    assert_int_equal(error_code, 0);
    rs_test_counter_lock(&r->counter);
    if (r->accepted) {
        rs_test_counter_unlock(&r->counter);
        rs_socket_destroy(new_socket);
        return;
    }
    r->accepted = sk_peer_wrap(r->loop, new_socket);
    rs_test_counter_unlock(&r->counter);
    assert_int_equal(rs_socket_assign_to_event_loop(new_socket, r->loop), 0);
    assert_int_equal(rs_socket_subscribe_to_readable_events(new_socket, note_data_arrived, r), 0);
    rs_test_counter_lock(&r->counter);
    rs_test_counter_unlock_add(&r->counter, 1);
}

static void test_err_rs_socket_read_connection_reset(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct reset_server r = {.loop = loop};
    rs_test_counter_init(&r.counter);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    struct sk_peer *listener = sk_peer_wrap(loop, s);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(s, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(s, &ep), 0);
    assert_int_equal(rs_socket_listen(s, 4), 0);
    assert_int_equal(rs_socket_start_accept(s, loop, accept_one_unread, &r), 0);

    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &ep), 0);
    sk_peer_subscribe(client);
    /* The accepted side never reads: closing it with the client's bytes
     * unread resets the connection (RFC 2525 2.17, on Linux and Windows). */
    static const char unread[] = "never read";
    sk_peer_write(client, unread, sizeof unread);
    SK_WAIT(&r, r.data_arrived, "the bytes on the accepted side");
    sk_peer_free(r.accepted);
    SK_WAIT(client, client->read_error != 0 || client->eof, "the reset");
#if !RS_TEST_IOCP && defined(_WIN32)
    if (client->eof && rs_test_under_wine()) {
        sk_peer_free(client);
        sk_peer_free(listener);
        rs_test_counter_clean_up(&r.counter);
        RS_TEST_SKIP("Wine limitation: after the peer's reset, a recv that select() reported "
                     "readable returns 0 (end of stream) instead of WSAECONNRESET (the check runs "
                     "on Windows)");
    }
#endif
    assert_false(client->eof);
    assert_string_equal(rs_error_name(client->read_error),
                        rs_error_name(RS_ERROR_CONNECTION_RESET));
    sk_peer_free(client);
    sk_peer_free(listener);
    rs_test_counter_clean_up(&r.counter);
}

/* ---- rs_socket_set_options ---- */

static void test_err_rs_socket_set_options_wrong_thread(void **state)
{
    rs_event_loop *loop = *state;
    struct sk_peer *p = sk_bound_udp_peer(loop);
    assert_int_equal(rs_socket_assign_to_event_loop(p->socket, loop), 0);
    rs_socket_options options;
    assert_int_equal(rs_socket_get_options(p->socket, &options), 0);
    assert_fails_with(rs_socket_set_options(p->socket, &options), RS_ERROR_WRONG_THREAD);
    sk_peer_free(p);
}

static void test_err_rs_socket_set_options_invalid_state(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    assert_int_equal(rs_socket_close(s), 0);
    assert_fails_with(rs_socket_set_options(s, &options), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(s), 0);
}

static void test_err_rs_socket_set_options_socket_option(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(s, &ep), 0);
    rs_socket_options wanted = options;
    wanted.tcp_nodelay = RS_SOCKET_OPTION_ON;
    rs__socket_inject_option_faults(1);
    int rc = rs_socket_set_options(s, &wanted);
    int error = rs_last_error();
    rs__socket_inject_option_faults(0);
    assert_int_equal(rc, -1);
    assert_string_equal(rs_error_name(error), rs_error_name(RS_ERROR_SOCKET_OPTION));
    /* The socket keeps the options it had. */
    rs_socket_options now;
    assert_int_equal(rs_socket_get_options(s, &now), 0);
    assert_int_equal(now.tcp_nodelay, options.tcp_nodelay);
    assert_int_equal(rs_socket_set_options(s, &wanted), 0);
    bool on = false;
    assert_int_equal(rs_socket_get_tcp_nodelay(s, &on), 0);
    assert_true(on);
    assert_int_equal(rs_socket_destroy(s), 0);
}

/* ---- rs_socket_get_tcp_nodelay, rs_socket_get_error ---- */

static void test_err_rs_socket_get_tcp_nodelay_invalid_state(void **state)
{
    (void)state;
    bool on = true;
    rs_socket_options udp = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    rs_socket *u = rs_socket_new(&udp);
    assert_non_null(u);
    assert_fails_with(rs_socket_get_tcp_nodelay(u, &on), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(u), 0);

    rs_socket_options local = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    rs_socket *l = rs_socket_new(&local);
    assert_non_null(l);
    assert_fails_with(rs_socket_get_tcp_nodelay(l, &on), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(l), 0);

    rs_socket_options tcp = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *t = rs_socket_new(&tcp);
    assert_non_null(t);
    assert_int_equal(rs_socket_get_tcp_nodelay(t, &on), 0);
    assert_int_equal(rs_socket_close(t), 0);
    assert_fails_with(rs_socket_get_tcp_nodelay(t, &on), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(t), 0);
}

static void test_err_rs_socket_get_error_socket_closed(void **state)
{
    (void)state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&options);
    assert_non_null(s);
    assert_int_equal(rs_socket_get_error(s), 0);
    assert_int_equal(rs_socket_close(s), 0);
    assert_string_equal(rs_error_name(rs_socket_get_error(s)),
                        rs_error_name(RS_ERROR_SOCKET_CLOSED));
    assert_int_equal(rs_socket_destroy(s), 0);
}

/* ---- rs_pipe_new ---- */

static void test_err_rs_pipe_new_too_many_handles(void **state)
{
#ifdef _WIN32
    (void)state;
    RS_TEST_SKIP(NO_HANDLE_LIMIT);
#else
    rs_event_loop *loop = *state;
    rs_pipe_read_end *r = NULL;
    rs_pipe_write_end *w = NULL;
    struct fd_exhaustion x;
    fds_exhaust(&x);
    int rc = rs_pipe_new(loop, &r, loop, &w);
    int error = rs_last_error();
    fds_restore(&x);
    if (rc == 0) {
        rs_pipe_clean_up_read_end(r, NULL, NULL);
        rs_pipe_clean_up_write_end(w, NULL, NULL);
        fail_msg("a pipe was made with no descriptor left");
    }
    assert_int_equal(rc, -1);
    assert_string_equal(rs_error_name(error), rs_error_name(RS_ERROR_TOO_MANY_HANDLES));
    assert_null(r);
    assert_null(w);
#endif
}

/* ---- rs_pipe_on_write_completed_fn ---- */

struct owed_write {
    rs_pipe_write_end *w;
    unsigned char *data;
    size_t len;
    long calls;
    int error;
    bool end_was_null;
    long clean_ups;
};

static void on_owed_write(rs_pipe_write_end *write_end, int error_code, size_t bytes,
                          void *user_data)
{
    (void)bytes;
    struct owed_write *o = user_data;
    o->calls++;
    o->error = error_code;
    o->end_was_null = write_end == NULL;
}

static void on_owed_clean_up(void *user_data)
{
    struct owed_write *o = user_data;
    o->clean_ups++;
}

static void write_more_than_the_pipe_holds(void *arg)
{
    struct owed_write *o = arg;
    assert_int_equal(rs_pipe_write(o->w, o->data, o->len, on_owed_write, o), 0);
}

static void test_err_rs_pipe_on_write_completed_event_loop_shutdown(void **state)
{
    (void)state;
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_run(loop), 0);
    rs_pipe_read_end *r = NULL;
    struct owed_write o = {.len = 4u << 20};
    assert_int_equal(rs_pipe_new(loop, &r, loop, &o.w), 0);
    o.data = calloc(1, o.len);
    assert_non_null(o.data);
    /* Nobody reads: the write stays pending. */
    rs_test_run_on_loop(loop, write_more_than_the_pipe_holds, &o);
    assert_int_equal(rs_event_loop_stop(loop), 0);
    assert_int_equal(rs_event_loop_wait_for_stop(loop), 0);

    /* The loop does not run: the clean-ups run here, and the completion
     * they owe waits for a loop iteration that never comes. */
    assert_int_equal(rs_pipe_clean_up_write_end(o.w, on_owed_clean_up, &o), 0);
    assert_int_equal(rs_pipe_clean_up_read_end(r, on_owed_clean_up, &o), 0);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    assert_int_equal(o.calls, 1);
    assert_true(o.end_was_null);
    assert_string_equal(rs_error_name(o.error), rs_error_name(RS_ERROR_EVENT_LOOP_SHUTDOWN));
    assert_int_equal(o.clean_ups, 2);
    free(o.data);
}

#define LOOP_TEST(fn) cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)
#define LIB_TEST(fn)                                                                               \
    cmocka_unit_test_setup_teardown(fn, rs_test_setup_library, rs_test_teardown_library)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_rs_socket_new_library_not_initialized),
        LIB_TEST(test_err_rs_socket_new_address_family_not_supported),
        LIB_TEST(test_err_rs_socket_new_socket_option),
        LIB_TEST(test_err_rs_socket_new_too_many_handles),
        cmocka_unit_test(test_err_rs_socket_close_out_of_memory),
        LIB_TEST(test_err_rs_socket_bind_invalid_port),
        LIB_TEST(test_err_rs_socket_bind_address_not_available),
        LIB_TEST(test_err_rs_socket_bind_socket_option),
        LOOP_TEST(test_err_rs_socket_connect_event_loop_already_assigned),
        LOOP_TEST(test_err_rs_socket_connect_invalid_port),
        LOOP_TEST(test_err_rs_socket_connect_invalid_address),
        LOOP_TEST(test_err_rs_socket_connect_no_permission),
        LOOP_TEST(test_err_rs_socket_read_connection_reset),
        LOOP_TEST(test_err_rs_socket_set_options_wrong_thread),
        LIB_TEST(test_err_rs_socket_set_options_invalid_state),
        LIB_TEST(test_err_rs_socket_set_options_socket_option),
        LIB_TEST(test_err_rs_socket_get_tcp_nodelay_invalid_state),
        LIB_TEST(test_err_rs_socket_get_error_socket_closed),
        LOOP_TEST(test_err_rs_pipe_new_too_many_handles),
        LIB_TEST(test_err_rs_pipe_on_write_completed_event_loop_shutdown),
    };
    return RS_TEST_MAIN("error_codes", tests);
}
