/*
 * Hostile peers: clients that reset (SO_LINGER 0) before their connection
 * is accepted (HO1) and in the middle of reads and writes (HO8). The
 * clients are plain blocking sockets of the test thread, as a real client
 * would be; the server is reseau's. The fixture's teardown checks that
 * nothing leaked.
 */
#include "socket_fixture.h"

#include "../common/atomics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A normal client: connects, is echoed a message, closes normally. */
static void normal_client(const rs_socket_endpoint *ep, int n)
{
    char msg[32] = {0};
    snprintf(msg, sizeof msg, "normal client %d", n);
    sk_raw_socket s = sk_raw_connect(ep);
    sk_raw_send_all(s, msg, sizeof msg);
    char back[sizeof msg];
    sk_raw_recv_all(s, back, sizeof back);
    assert_memory_equal(back, msg, sizeof msg);
    sk_raw_close(s);
}

/* ---- the server ---- */

/* Writes each accepted connection is sent (HO8): more than the socket
 * buffers hold, so that some are still queued when the client resets. */
enum { CONN_WRITES = 16, CONN_WRITE_SIZE = 64 * 1024 };

struct server;

struct conn;

struct conn_write {
    struct conn *conn;
    int index;
};

struct conn {
    struct server *server;
    rs_socket *socket;
    long write_calls[CONN_WRITES]; /* completions per write: each must be 1 */
    struct conn_write writes[CONN_WRITES];
    bool ended;      /* read or write error, or end of stream, seen */
    bool destroyed;  /* destroy callback ran */
    long bad_errors; /* errors other than the ones a reset may give */
    int last_bad_error;
};

struct server {
    rs_event_loop *loop;
    rs_socket *listener;
    rs_socket_endpoint endpoint;
    bool send_on_accept; /* HO8: queue CONN_WRITES writes on each connection */
    struct rs_test_counter counter;
    struct conn **conns;
    long conn_cap;
    long accepted;
    long destroyed;
    long accept_errors;
    int last_accept_error;
};

static unsigned char payload[CONN_WRITE_SIZE];

/* Errors a read or write of a connection reset by its peer may report:
 * the reset itself, or, once the server closed it, SOCKET_CLOSED. */
static bool reset_error(int error_code)
{
    return error_code == RS_ERROR_CONNECTION_RESET || error_code == RS_ERROR_SOCKET_CLOSED;
}

static void record_bad(struct conn *c, int error_code)
{
    c->bad_errors++;
    c->last_bad_error = error_code;
}

static void on_conn_destroyed(void *user_data)
{
    struct conn *c = user_data;
    struct server *sv = c->server;
    rs_test_counter_lock(&sv->counter);
    c->destroyed = true;
    sv->destroyed++;
    rs_test_counter_unlock_add(&sv->counter, 1);
}

/* The connection ended: it is destroyed at once, with writes still queued
 * (their completions come afterwards, each once). Loop thread. */
static void end_conn(struct conn *c)
{
    if (!c->ended) {
        c->ended = true;
        assert_int_equal(rs_socket_destroy(c->socket), 0);
    }
}

static void on_conn_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    struct conn_write *w = user_data;
    struct conn *c = w->conn;
    struct server *sv = c->server;
    rs_test_counter_lock(&sv->counter);
    c->write_calls[w->index]++;
    if (error_code != 0 && !reset_error(error_code)) {
        record_bad(c, error_code);
    }
    rs_test_counter_unlock_add(&sv->counter, 1);
    if (error_code != 0) {
        end_conn(c);
    }
}

/* The echoed copy is the write's own: freed by its completion, whatever it
 * reports (HO1 checks the normal clients at their end). */
static void on_echo_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)error_code;
    (void)bytes;
    free(user_data);
}

static void on_conn_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct conn *c = user_data;
    struct server *sv = c->server;
    if (c->ended) {
        return;
    }
    if (error_code) {
        rs_test_counter_lock(&sv->counter);
        if (!reset_error(error_code)) {
            record_bad(c, error_code);
        }
        rs_test_counter_unlock(&sv->counter);
        end_conn(c);
        return;
    }
    for (;;) {
        unsigned char buf[4096];
        size_t n = 0;
        if (rs_socket_read(socket, buf, sizeof buf, &n) != 0) {
            int err = rs_last_error();
            if (err == RS_ERROR_WOULD_BLOCK) {
                return;
            }
            rs_test_counter_lock(&sv->counter);
            if (!reset_error(err)) {
                record_bad(c, err);
            }
            rs_test_counter_unlock(&sv->counter);
            end_conn(c);
            return;
        }
        if (n == 0) {
            /* End of stream: a normal client that closed (HO1). */
            end_conn(c);
            return;
        }
        if (!sv->send_on_accept) {
            /* Echo; a reset meanwhile fails the write, which ends the
             * connection like a failed read. */
            unsigned char *copy = malloc(n);
            assert_non_null(copy);
            memcpy(copy, buf, n);
            if (rs_socket_write(socket, copy, n, on_echo_written, copy) != 0) {
                free(copy);
                end_conn(c);
                return;
            }
        }
    }
}

static void on_accept(rs_socket *listener, int error_code, rs_socket *new_socket, void *user_data)
{
    (void)listener;
    struct server *sv = user_data;
    if (error_code) {
        rs_test_counter_lock(&sv->counter);
        sv->accept_errors++;
        sv->last_accept_error = error_code;
        rs_test_counter_unlock_add(&sv->counter, 1);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->server = sv;
    c->socket = new_socket;
    assert_int_equal(rs_socket_set_destroy_callback(new_socket, on_conn_destroyed, c), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(new_socket, sv->loop), 0);
    assert_int_equal(rs_socket_subscribe_to_readable_events(new_socket, on_conn_readable, c), 0);
    rs_test_counter_lock(&sv->counter);
    if (sv->accepted == sv->conn_cap) {
        sv->conn_cap = sv->conn_cap ? 2 * sv->conn_cap : 256;
        sv->conns = realloc(sv->conns, (size_t)sv->conn_cap * sizeof *sv->conns);
        assert_non_null(sv->conns);
    }
    sv->conns[sv->accepted++] = c;
    rs_test_counter_unlock_add(&sv->counter, 1);
    if (sv->send_on_accept) {
        for (int i = 0; i < CONN_WRITES && !c->ended; i++) {
            c->writes[i].conn = c;
            c->writes[i].index = i;
            if (rs_socket_write(new_socket, payload, sizeof payload, on_conn_written,
                                &c->writes[i]) != 0) {
                /* Refused (the connection already failed): never completes. */
                rs_test_counter_lock(&sv->counter);
                c->write_calls[i] = 1;
                if (!reset_error(rs_last_error())) {
                    record_bad(c, rs_last_error());
                }
                rs_test_counter_unlock(&sv->counter);
                end_conn(c);
            }
        }
    }
}

static void server_start(struct server *sv, rs_event_loop *loop, bool send_on_accept)
{
    memset(sv, 0, sizeof *sv);
    sv->loop = loop;
    sv->send_on_accept = send_on_accept;
    rs_test_counter_init(&sv->counter);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    sv->listener = rs_socket_new(&options);
    assert_non_null(sv->listener);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(sv->listener, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(sv->listener, &sv->endpoint), 0);
    /* Room for a whole burst of resets while accepting is stopped. */
    assert_int_equal(rs_socket_listen(sv->listener, 1024), 0);
    assert_int_equal(rs_socket_start_accept(sv->listener, loop, on_accept, sv), 0);
}

/* Waits, bounded, until every accepted connection is destroyed. */
static void server_wait_all_destroyed(struct server *sv)
{
    SK_WAIT(sv, sv->destroyed == sv->accepted, "every accepted connection's destroy");
}

static void server_stop(struct server *sv)
{
    assert_int_equal(rs_socket_destroy(sv->listener), 0);
    server_wait_all_destroyed(sv);
    for (long i = 0; i < sv->accepted; i++) {
        free(sv->conns[i]);
    }
    free(sv->conns);
    rs_test_counter_clean_up(&sv->counter);
}

struct accept_switch {
    rs_socket *listener;
    bool on;
    struct server *server;
};

static void switch_accepting(void *arg)
{
    struct accept_switch *a = arg;
    if (a->on) {
        assert_int_equal(rs_socket_start_accept(a->listener, a->server->loop, on_accept, a->server),
                         0);
    } else {
        assert_int_equal(rs_socket_stop_accept(a->listener), 0);
    }
}

static void set_accepting(struct server *sv, bool on)
{
    struct accept_switch a = {sv->listener, on, sv};
    rs_test_run_on_loop(sv->loop, switch_accepting, &a);
}

/* ---- HO1 ---- */

/*
 * 1,000 clients connect and reset before the server accepts them, in bursts
 * made while accepting is stopped, each burst followed by normal clients.
 * Under Wine, AcceptEx then fails for each reset connection with
 * WSAENOTCONN (real Windows: ERROR_NETNAME_DELETED and others), which used
 * to end accepting for good; Linux hands the dead connections to accept(2),
 * whose reads then fail. Either way the listener goes on and every normal
 * client is served.
 */
static void test_ho1_resets_before_accept(void **state)
{
    rs_event_loop *loop = *state;
    struct server sv;
    server_start(&sv, loop, false);
    enum { BURSTS = 5, RESETS_PER_BURST = 200, NORMAL_PER_BURST = 3 };
    int normal = 0;
    for (int b = 0; b < BURSTS; b++) {
        set_accepting(&sv, false);
        for (int i = 0; i < RESETS_PER_BURST; i++) {
            sk_raw_reset(sk_raw_connect(&sv.endpoint));
        }
        set_accepting(&sv, true);
        for (int i = 0; i < NORMAL_PER_BURST; i++) {
            normal_client(&sv.endpoint, normal++);
        }
    }
    rs_test_counter_lock(&sv.counter);
    assert_int_equal(sv.accept_errors, 0);
    assert_true(sv.accepted >= normal);
    for (long i = 0; i < sv.accepted; i++) {
        assert_int_equal(sv.conns[i]->bad_errors, 0);
    }
    rs_test_counter_unlock(&sv.counter);
    server_wait_all_destroyed(&sv);
    print_message("HO1: %d resets, %d normal clients served, %ld connections accepted\n",
                  BURSTS * RESETS_PER_BURST, normal, sv.accepted);
    server_stop(&sv);
}

/* ---- HO8 ---- */

/*
 * 1,000 connections reset by their clients while the server reads what
 * they sent and has 1 MiB of writes queued to them: every write completes
 * exactly once (written, or CONNECTION_RESET / SOCKET_CLOSED), every read
 * error is one of those two, and every connection is destroyed.
 */
static void test_ho8_resets_during_reads_and_writes(void **state)
{
    rs_event_loop *loop = *state;
    sk_fill_pattern(payload, sizeof payload, 3);
    struct server sv;
    server_start(&sv, loop, true);
    enum { CONNECTIONS = 1000 };
    static const char request[1024];
    for (int i = 0; i < CONNECTIONS; i++) {
        sk_raw_socket s = sk_raw_connect(&sv.endpoint);
        sk_raw_send_all(s, request, sizeof request);
        /* The server's writes have started: some bytes are here, the rest
         * is queued behind a buffer the client no longer reads. */
        unsigned char some[512];
        sk_raw_recv_all(s, some, sizeof some);
        assert_true(sk_check_pattern(some, sizeof some, 3));
        sk_raw_reset(s);
    }
    SK_WAIT(&sv, sv.accepted == CONNECTIONS, "every connection accepted");
    server_wait_all_destroyed(&sv);
    rs_test_counter_lock(&sv.counter);
    for (long i = 0; i < sv.accepted; i++) {
        struct conn *c = sv.conns[i];
        for (int w = 0; w < CONN_WRITES; w++) {
            if (c->write_calls[w] != 1) {
                rs_test_counter_unlock(&sv.counter);
                fail_msg("connection %ld: write %d completed %ld times", i, w, c->write_calls[w]);
            }
        }
        if (c->bad_errors) {
            rs_test_counter_unlock(&sv.counter);
            fail_msg("connection %ld: %ld unexpected errors, the last %s", i, c->bad_errors,
                     rs_error_name(c->last_bad_error));
        }
        assert_true(c->ended);
    }
    rs_test_counter_unlock(&sv.counter);
    server_stop(&sv);
}

#define HOSTILE_TEST(fn)                                                                           \
    cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        HOSTILE_TEST(test_ho1_resets_before_accept),
        HOSTILE_TEST(test_ho8_resets_during_reads_and_writes),
    };
    return RS_TEST_MAIN("hostile", tests);
}
