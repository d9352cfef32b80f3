/*
 * Life-cycle parity scenarios PA5-PA8 and PA10: read shutdown, destroying a
 * loop that still holds objects, closing on a stopped loop, who may connect
 * to a LOCAL listener or a pipe, the extension functions per address
 * family; and a restarted server rebinding its port despite TIME_WAIT.
 * Same file on every backend; loopback only, port 0, bounded waits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* S_ISSOCK */
#endif
#include "socket_fixture.h"

#include "../common/socket_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if RS_TEST_IOCP
#include "../backends/iocp/iocp_socket.h"

#include <aclapi.h>
#include <sddl.h>
#elif defined(_WIN32)
#include <io.h>
#else
#include <sys/stat.h>
#include <unistd.h>
#endif

/* ---- PA5: shutdown(READ), then the peer writes ---- */

struct pa5_shut {
    struct sk_peer *peer;
    long readable_calls; /* the peer's count when the reading half was shut */
};

static void pa5_shutdown_read(void *arg)
{
    struct pa5_shut *t = arg;
    assert_int_equal(rs_socket_shutdown(t->peer->socket, RS_SOCKET_DIRECTION_READ), 0);
    char byte;
    size_t n = 0;
    assert_fails_with(rs_socket_read(t->peer->socket, &byte, 1, &n), RS_ERROR_INVALID_STATE);
    rs_test_counter_lock(&t->peer->counter);
    t->readable_calls = t->peer->readable_calls;
    rs_test_counter_unlock(&t->peer->counter);
}

static void pa5_shutdown_write(void *arg)
{
    struct sk_peer *p = arg;
    assert_int_equal(rs_socket_shutdown(p->socket, RS_SOCKET_DIRECTION_WRITE), 0);
}

#if RS_TEST_IOCP
static void pa5_shutdown_write_unsupported(void *arg)
{
    struct sk_peer *p = arg;
    assert_fails_with(rs_socket_shutdown(p->socket, RS_SOCKET_DIRECTION_WRITE),
                      RS_ERROR_PLATFORM_NOT_SUPPORTED);
    assert_fails_with(rs_socket_shutdown(p->socket, RS_SOCKET_DIRECTION_BOTH),
                      RS_ERROR_PLATFORM_NOT_SUPPORTED);
}
#endif

static void pa5_run(rs_event_loop *loop, rs_socket_domain domain)
{
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, domain);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_peer_subscribe(client);
    sk_server_wait_accepted(&server, 1);
    struct sk_peer *shut = server.accepted[0];

    struct pa5_shut t = {shut, 0};
    rs_test_run_on_loop(loop, pa5_shutdown_read, &t);

    /* The peer writes after the shutdown: its writes complete, and the
     * connection stays up both ways (Windows' SD_RECEIVE would reset it). */
    static unsigned char payload[16 * 1024];
    sk_fill_pattern(payload, sizeof payload, 5);
    sk_peer_write(client, payload, sizeof payload);
    SK_WAIT(client, client->writes_done == 1, "the peer's write after the read shutdown");
    assert_int_equal(client->write_errors, 0);
    static const char reply[] = "still connected";
    sk_peer_write(shut, reply, sizeof reply);
    sk_peer_wait_bytes(client, sizeof reply);
    assert_memory_equal(client->data, reply, sizeof reply);
    sk_peer_write(client, payload, 1024);
    SK_WAIT(client, client->writes_done == 2, "a second write of the peer");
    assert_int_equal(client->write_errors, 0);
    sk_loop_round_trip(loop);
    sk_loop_round_trip(loop);

    /* Nothing was delivered on the shut side, and nothing failed. */
    rs_test_counter_lock(&shut->counter);
    long readable_calls = shut->readable_calls;
    size_t len = shut->len;
    int read_error = shut->read_error;
    rs_test_counter_unlock(&shut->counter);
    assert_int_equal(readable_calls, t.readable_calls);
    assert_int_equal(len, 0);
    assert_int_equal(read_error, 0);
    assert_int_equal(rs_socket_get_error(shut->socket), 0);
    assert_true(rs_socket_is_open(shut->socket));
    assert_int_equal(client->read_error, 0);
    assert_false(client->eof);

    /* The writing half still ends the stream normally, except on a LOCAL
     * socket on Windows: a named pipe has no half-close. */
#if RS_TEST_IOCP
    if (domain == RS_SOCKET_LOCAL) {
        rs_test_run_on_loop(loop, pa5_shutdown_write_unsupported, shut);
        assert_true(rs_socket_is_open(shut->socket));
        sk_peer_free(client);
        sk_server_stop(&server);
        return;
    }
#endif
    rs_test_run_on_loop(loop, pa5_shutdown_write, shut);
    SK_WAIT(client, client->eof, "end of stream after the write shutdown");
    assert_int_equal(client->read_error, 0);
    sk_peer_free(client);
    sk_server_stop(&server);
}

static void test_pa5_read_shutdown_then_peer_writes_tcp(void **state)
{
    pa5_run(*state, RS_SOCKET_IPV4);
}

static void test_pa5_read_shutdown_then_peer_writes_local(void **state)
{
    pa5_run(*state, RS_SOCKET_LOCAL);
}

/* ---- PA6: destroying a loop that still holds objects ---- */

struct pa6 {
    struct rs_test_counter counter;
    long resolved;
    int resolve_error;
    long pipe_writes;
    int pipe_write_error;
    long clean_ups;
};

static void pa6_signal(struct pa6 *t)
{
    rs_test_counter_unlock_add(&t->counter, 1);
}

static void pa6_on_resolved(const char *host, int error_code, const rs_host_address *addresses,
                            size_t count, void *user_data)
{
    (void)host;
    (void)addresses;
    (void)count;
    struct pa6 *t = user_data;
    rs_test_counter_lock(&t->counter);
    t->resolved++;
    t->resolve_error = error_code;
    pa6_signal(t);
}

static void pa6_on_pipe_write(rs_pipe_write_end *w, int error_code, size_t bytes, void *user_data)
{
    (void)w;
    (void)bytes;
    struct pa6 *t = user_data;
    rs_test_counter_lock(&t->counter);
    t->pipe_writes++;
    t->pipe_write_error = error_code;
    pa6_signal(t);
}

static void pa6_on_clean_up(void *user_data)
{
    struct pa6 *t = user_data;
    rs_test_counter_lock(&t->counter);
    t->clean_ups++;
    pa6_signal(t);
}

struct pa6_pipe_write {
    rs_pipe_write_end *w;
    struct pa6 *t;
};

static void pa6_write_pipe(void *arg)
{
    struct pa6_pipe_write *p = arg;
    static const char byte = 'x';
    assert_int_equal(rs_pipe_write(p->w, &byte, 1, pa6_on_pipe_write, p->t), 0);
}

static void test_pa6_loop_destroy_refused_while_objects_live(void **state)
{
    (void)state;
    assert_int_equal(rs_library_init(), 0);
    int inits = rs_library_init_count();
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_run(loop), 0);
    struct pa6 t;
    memset(&t, 0, sizeof t);
    rs_test_counter_init(&t.counter);

    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_server_wait_accepted(&server, 1);
    rs_pipe_read_end *r = NULL;
    rs_pipe_write_end *w = NULL;
    assert_int_equal(rs_pipe_new(loop, &r, loop, &w), 0);
    assert_int_equal(rs_resolve(loop, "localhost", pa6_on_resolved, &t), 0);

    /* Refused: the listener, both connected sockets and the pipe ends are
     * still open. The loop runs on, and everything still works. */
    assert_fails_with(rs_event_loop_destroy(loop), RS_ERROR_INVALID_STATE);
    static const char hello[] = "hello after a refused destroy";
    sk_peer_write(client, hello, sizeof hello);
    sk_peer_wait_bytes(server.accepted[0], sizeof hello);
    assert_memory_equal(server.accepted[0]->data, hello, sizeof hello);
    struct pa6_pipe_write pw = {w, &t};
    rs_test_run_on_loop(loop, pa6_write_pipe, &pw);
    SK_WAIT(&t, t.pipe_writes == 1, "the pipe write after a refused destroy");
    assert_int_equal(t.pipe_write_error, 0);

    /* The last library cleanup refuses too, and leaves the library up. */
    if (inits == 1) {
        assert_fails_with(rs_library_cleanup(), RS_ERROR_INVALID_STATE);
        assert_int_equal(rs_library_init_count(), 1);
    }

    /* Closed (not destroyed) sockets do not hold the loop: destroying the
     * socket after the loop is gone must not touch the loop. */
    assert_int_equal(rs_socket_close(client->socket), 0);
    sk_server_stop(&server);
    assert_fails_with(rs_event_loop_destroy(loop), RS_ERROR_INVALID_STATE); /* the pipe */
    assert_int_equal(rs_pipe_clean_up_read_end(r, pa6_on_clean_up, &t), 0);
    assert_int_equal(rs_pipe_clean_up_write_end(w, pa6_on_clean_up, &t), 0);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    assert_int_equal(t.clean_ups, 2);
    sk_peer_free(client);
    /* The resolution was answered once: with its result, or with
     * RS_ERROR_EVENT_LOOP_SHUTDOWN if the destroy came first. */
    assert_int_equal(t.resolved, 1);
    assert_true(t.resolve_error == 0 || t.resolve_error == RS_ERROR_EVENT_LOOP_SHUTDOWN);

    /* A loop that never ran: refused with a socket on it, and the socket's
     * destroy from this thread works on the loop that does not run. */
    rs_event_loop *idle = rs_event_loop_new(NULL);
    assert_non_null(idle);
    rs_socket_options udp = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&udp);
    assert_non_null(s);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(s, &ep), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(s, idle), 0);
    assert_fails_with(rs_event_loop_destroy(idle), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(s), 0);
    assert_int_equal(rs_event_loop_destroy(idle), 0);

    rs_test_counter_clean_up(&t.counter);
    assert_int_equal(rs_test_teardown_library(state), 0);
}

/* Closed from another loop's thread: the close is a task queued on the
 * socket's (or pipe end's) loop. A destroy of that loop before the task ran
 * is not refused: the application gave the objects up, and the destroy
 * finishes them, with their callbacks. */
struct pa6_hop {
    rs_socket *socket;
    rs_pipe_read_end *r;
    rs_pipe_write_end *w;
    struct pa6 *t;
};

static void pa6_on_socket_destroyed(void *user_data)
{
    pa6_on_clean_up(user_data);
}

static void pa6_give_up_from_other_loop(void *arg)
{
    struct pa6_hop *h = arg;
    assert_int_equal(rs_socket_destroy(h->socket), 0);
    assert_int_equal(rs_pipe_clean_up_read_end(h->r, pa6_on_clean_up, h->t), 0);
    assert_int_equal(rs_pipe_clean_up_write_end(h->w, pa6_on_clean_up, h->t), 0);
}

static void test_pa6_closed_from_another_loop_then_destroyed(void **state)
{
    rs_event_loop *other = *state;
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    struct pa6 t;
    memset(&t, 0, sizeof t);
    rs_test_counter_init(&t.counter);
    rs_socket_options udp = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    rs_socket *s = rs_socket_new(&udp);
    assert_non_null(s);
    assert_int_equal(rs_socket_set_destroy_callback(s, pa6_on_socket_destroyed, &t), 0);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(s, &ep), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(s, loop), 0);
    struct pa6_hop h = {s, NULL, NULL, &t};
    assert_int_equal(rs_pipe_new(loop, &h.r, loop, &h.w), 0);
    /* The loop does not run: the calls from the other loop's thread stay
     * queued on it. */
    rs_test_run_on_loop(other, pa6_give_up_from_other_loop, &h);
    assert_int_equal(t.clean_ups, 0);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    assert_int_equal(t.clean_ups, 3);
    rs_test_counter_clean_up(&t.counter);
}

/* ---- PA7: close, stop_accept and pipe clean-up on a stopped loop ---- */

struct pa7 {
    struct rs_test_latch returned;
    struct rs_test_latch cleaned;
    rs_socket *listener;
    rs_socket *client;
    struct sk_peer *client_peer;
    rs_socket *accepted;
    rs_pipe_read_end *r;
    rs_pipe_write_end *w;
    int rc[5];
    long close_calls; /* the client's, when its close returned */
};

static void pa7_on_clean_up(void *user_data)
{
    struct pa7 *t = user_data;
    rs_test_latch_signal(&t->cleaned);
}

static void pa7_calls(void *arg)
{
    struct pa7 *t = arg;
    t->rc[0] = rs_socket_stop_accept(t->listener);
    t->rc[1] = rs_socket_close(t->client);
    rs_test_counter_lock(&t->client_peer->counter);
    t->close_calls = t->client_peer->close_calls;
    rs_test_counter_unlock(&t->client_peer->counter);
    t->rc[2] = rs_socket_close(t->accepted);
    t->rc[3] = rs_pipe_clean_up_read_end(t->r, pa7_on_clean_up, t);
    t->rc[4] = rs_pipe_clean_up_write_end(t->w, pa7_on_clean_up, t);
    rs_test_latch_signal(&t->returned);
}

static void test_pa7_calls_from_foreign_thread_on_stopped_loop(void **state)
{
    rs_event_loop *loop = *state;
    struct pa7 t;
    memset(&t, 0, sizeof t);
    rs_test_latch_init(&t.returned, 1);
    rs_test_latch_init(&t.cleaned, 2);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_peer_subscribe(client);
    sk_server_wait_accepted(&server, 1);
    assert_int_equal(rs_pipe_new(loop, &t.r, loop, &t.w), 0);
    t.listener = server.listener;
    t.client = client->socket;
    t.client_peer = client;
    t.accepted = server.accepted[0]->socket;

    assert_int_equal(rs_event_loop_stop(loop), 0);
    assert_int_equal(rs_event_loop_wait_for_stop(loop), 0);

    rs__thread worker;
    assert_int_equal(rs__thread_start(&worker, pa7_calls, &t, "pa7 foreign thread"), 0);
    bool returned = rs_test_latch_wait(&t.returned, RS_TEST_TIMEOUT_MS);
    /* Run the loop again either way: a call stuck waiting for it then
     * finishes, so that the worker can be joined and nothing is left. */
    assert_int_equal(rs_event_loop_run(loop), 0);
    rs__thread_join(&worker);
    if (!returned) {
        fail_msg("%s", "calls from a foreign thread on a stopped loop did not return");
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(t.rc[i], 0);
    }
    /* The close was done (its callback ran) before the call returned. */
    assert_int_equal(t.close_calls, 1);
    assert_false(rs_socket_is_open(t.client));
    assert_false(rs_socket_is_open(t.accepted));
    assert_fails_with(rs_socket_stop_accept(t.listener), RS_ERROR_INVALID_STATE);
    rs_test_latch_await(&t.cleaned, "both pipe clean-ups");

    sk_peer_free(client);
    sk_server_stop(&server);
    rs_test_latch_clean_up(&t.returned);
    rs_test_latch_clean_up(&t.cleaned);
}

/* ---- PA8: who may connect to a LOCAL listener or a pipe ---- */

#if RS_TEST_IOCP
static bool running_under_wine(void)
{
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

/* Checks a named pipe's DACL: the process's user, LocalSystem and
 * Administrators, and no Everyone or Anonymous entry. Returns false (with
 * *why set) when the OS cannot report it. */
static bool pa8_check_dacl(HANDLE pipe, const char **why)
{
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD rc = GetSecurityInfo(pipe, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl,
                               NULL, &sd);
    if (rc != ERROR_SUCCESS) {
        *why = "GetSecurityInfo failed on a named pipe";
        return false;
    }
    if (!dacl) {
        LocalFree(sd);
        *why = "GetSecurityInfo reported no DACL for a named pipe";
        return false;
    }
    unsigned char world[SECURITY_MAX_SID_SIZE], anonymous[SECURITY_MAX_SID_SIZE];
    unsigned char system[SECURITY_MAX_SID_SIZE], admins[SECURITY_MAX_SID_SIZE];
    DWORD len = sizeof world;
    assert_true(CreateWellKnownSid(WinWorldSid, NULL, world, &len));
    len = sizeof anonymous;
    assert_true(CreateWellKnownSid(WinAnonymousSid, NULL, anonymous, &len));
    len = sizeof system;
    assert_true(CreateWellKnownSid(WinLocalSystemSid, NULL, system, &len));
    len = sizeof admins;
    assert_true(CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, admins, &len));
    HANDLE token;
    assert_true(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token));
    union {
        TOKEN_USER user;
        unsigned char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } me;
    len = sizeof me;
    assert_true(GetTokenInformation(token, TokenUser, &me, len, &len));
    CloseHandle(token);

    int found_user = 0, found_system = 0, found_admins = 0;
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACCESS_ALLOWED_ACE *ace = NULL;
        assert_true(GetAce(dacl, i, (void **)&ace));
        PSID sid = (PSID)&ace->SidStart;
        assert_false(EqualSid(sid, world));
        assert_false(EqualSid(sid, anonymous));
        if (ace->Header.AceType == ACCESS_ALLOWED_ACE_TYPE) {
            found_user += EqualSid(sid, me.user.User.Sid) != 0;
            found_system += EqualSid(sid, system) != 0;
            found_admins += EqualSid(sid, admins) != 0;
        }
    }
    assert_int_equal(dacl->AceCount, 3);
    assert_int_equal(found_user, 1);
    assert_int_equal(found_system, 1);
    assert_int_equal(found_admins, 1);
    LocalFree(sd);
    return true;
}
#endif

static void test_pa8_local_listener_and_pipe_access(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    rs_socket *listener = rs_socket_new(&options);
    assert_non_null(listener);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_LOCAL);
    assert_int_equal(rs_socket_bind(listener, &ep), 0);
    assert_int_equal(rs_socket_listen(listener, 4), 0);
#if RS_TEST_IOCP
    const char *why = NULL;
    struct rs__iocp_socket *im = listener->impl;
    assert_non_null(im->idle_instances);
    bool reported = pa8_check_dacl(im->idle_instances->pipe, &why);
    rs_pipe_read_end *r = NULL;
    rs_pipe_write_end *w = NULL;
    if (reported) {
        assert_int_equal(rs_pipe_new(loop, &r, loop, &w), 0);
        reported = pa8_check_dacl(rs__iocp_pipe_test_read_handle(r), &why);
        assert_true(reported);
        assert_int_equal(rs_pipe_clean_up_read_end(r, NULL, NULL), 0);
        assert_int_equal(rs_pipe_clean_up_write_end(w, NULL, NULL), 0);
    }
    assert_int_equal(rs_socket_destroy(listener), 0);
    if (!reported) {
        assert_true(running_under_wine()); /* real Windows always reports it */
        char reason[160];
        snprintf(reason, sizeof reason, "Wine limitation: %s (the check runs on Windows)", why);
        RS_TEST_SKIP(reason);
    }
#elif defined(_WIN32)
    (void)loop;
    assert_int_equal(rs_socket_destroy(listener), 0);
    sk_remove_path(RS_SOCKET_LOCAL, &ep);
    RS_TEST_SKIP("an AF_UNIX socket file on Windows is guarded by its directory's ACL, not by a "
                 "mode the libevent backend sets: nothing of its own to check");
#else
    (void)loop;
    /* POSIX: the socket file is the owner's only (0600): connecting needs
     * write permission on it. rs_pipe_new's pipes have no name at all. */
    struct stat st;
    assert_int_equal(stat(ep.address, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, getuid());
    assert_int_equal(rs_socket_destroy(listener), 0);
    sk_remove_path(RS_SOCKET_LOCAL, &ep);
#endif
}

/* ---- PA10: extension functions per address family ---- */

static void test_pa10_extension_functions_per_family(void **state)
{
#if RS_TEST_IOCP
    rs_event_loop *loop = *state;
    const struct rs__winsock_ext *v4 = rs__winsock_ext_for(RS_SOCKET_IPV4);
    const struct rs__winsock_ext *v6 = rs__winsock_ext_for(RS_SOCKET_IPV6);
    assert_int_equal(v4->family, AF_INET);
    assert_int_equal(v6->family, AF_INET6);
    assert_non_null(v4->accept_ex);
    assert_non_null(v4->connect_ex);
    assert_non_null(v4->get_accept_ex_sockaddrs);
    assert_non_null(v6->accept_ex);
    assert_non_null(v6->connect_ex);
    assert_non_null(v6->get_accept_ex_sockaddrs);
    rs_socket_domain domains[] = {RS_SOCKET_IPV4, RS_SOCKET_IPV6};
    for (size_t i = 0; i < 2; i++) {
        rs_socket_options options = sk_options(RS_SOCKET_STREAM, domains[i]);
        struct sk_server server;
        sk_server_start(&server, loop, &options, false, 4);
        struct sk_peer *client = sk_connect_and_exchange(&server, loop, &options);
        rs_socket_endpoint remote;
        assert_int_equal(rs_socket_get_remote_address(server.accepted[0]->socket, &remote), 0);
        assert_string_equal(remote.address, domains[i] == RS_SOCKET_IPV4 ? "127.0.0.1" : "::1");
        sk_peer_free(client);
        sk_server_stop(&server);
    }
#else
    (void)state;
    RS_TEST_SKIP("AcceptEx, ConnectEx and GetAcceptExSockaddrs exist only on the iocp backend");
#endif
}

/* ---- a restarted server rebinds its port despite TIME_WAIT ---- */

static void test_sk_restarted_server_rebinds_despite_time_wait(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    rs_socket_endpoint endpoint = server.endpoint;
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_peer_subscribe(client);
    sk_server_wait_accepted(&server, 1);
    /* The server closes first: its side of the connection, on the
     * listener's port, goes to TIME_WAIT. */
    assert_int_equal(rs_socket_close(server.accepted[0]->socket), 0);
    SK_WAIT(client, client->eof, "the client's end of stream");
    sk_peer_free(client);
    sk_server_stop(&server);

    rs_socket *again = rs_socket_new(&options);
    assert_non_null(again);
    assert_int_equal(rs_socket_bind(again, &endpoint), 0);
    assert_int_equal(rs_socket_listen(again, 4), 0);
    assert_int_equal(rs_socket_destroy(again), 0);
}

#define LC_TEST(fn) cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LC_TEST(test_pa5_read_shutdown_then_peer_writes_tcp),
        LC_TEST(test_pa5_read_shutdown_then_peer_writes_local),
        cmocka_unit_test(test_pa6_loop_destroy_refused_while_objects_live),
        LC_TEST(test_pa6_closed_from_another_loop_then_destroyed),
        LC_TEST(test_pa7_calls_from_foreign_thread_on_stopped_loop),
        LC_TEST(test_pa8_local_listener_and_pipe_access),
        LC_TEST(test_pa10_extension_functions_per_family),
        LC_TEST(test_sk_restarted_server_rebinds_despite_time_wait),
    };
    return RS_TEST_MAIN("lifecycle", tests);
}
