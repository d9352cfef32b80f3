/*
 * Socket scenarios SK18-SK26: clean-up inside callbacks, write completion
 * order, accepted sockets, the LOCAL accept race and end of stream; and
 * writes from a write callback followed by a close or shutdown.
 * Same file on every backend; loopback only, port 0 read back, bounded waits.
 */
#include "socket_fixture.h"

#include "../common/atomics.h"
#include "../common/socket_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SK18 ---- */

struct sk18 {
    struct rs_test_counter counter;
    rs_socket *listener;
    long accepts;
    long destroyed;
};

static void sk18_on_accept(rs_socket *listener, int error_code, rs_socket *new_socket,
                           void *user_data)
{
    struct sk18 *t = user_data;
    assert_int_equal(error_code, 0);
    assert_int_equal(rs_socket_destroy(new_socket), 0);
    assert_int_equal(rs_socket_destroy(listener), 0);
    rs_test_counter_lock(&t->counter);
    t->accepts++;
    rs_test_counter_unlock_add(&t->counter, 1);
}

static void sk18_on_destroy(void *user_data)
{
    struct sk18 *t = user_data;
    rs_test_counter_lock(&t->counter);
    t->destroyed++;
    rs_test_counter_unlock_add(&t->counter, 1);
}

static void test_sk18_listener_destroyed_in_accept_callback(void **state)
{
    rs_event_loop *loop = *state;
    struct sk18 t;
    memset(&t, 0, sizeof t);
    rs_test_counter_init(&t.counter);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    t.listener = rs_socket_new(&options);
    assert_non_null(t.listener);
    assert_int_equal(rs_socket_set_destroy_callback(t.listener, sk18_on_destroy, &t), 0);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(t.listener, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(t.listener, &ep), 0);
    assert_int_equal(rs_socket_listen(t.listener, 16), 0);

    /* Three connections wait in the backlog: the accept loop must stop after
     * the first callback destroyed the listener under it. */
    struct sk_peer *clients[3];
    for (int i = 0; i < 3; i++) {
        clients[i] = sk_peer_new(loop, &options);
        assert_int_equal(sk_peer_connect(clients[i], &ep), 0);
    }
    assert_int_equal(rs_socket_start_accept(t.listener, loop, sk18_on_accept, &t), 0);
    SK_WAIT(&t, t.destroyed == 1, "the listener's destroy callback");
    sk_loop_round_trip(loop);
    assert_int_equal(t.accepts, 1);
    assert_int_equal(t.destroyed, 1);
    for (int i = 0; i < 3; i++) {
        sk_peer_free(clients[i]);
    }
    rs_test_counter_clean_up(&t.counter);
}

/* ---- SK19, SK20 ---- */

struct wr {
    struct rs_test_counter counter;
    rs_socket *socket;
    bool inside_write;
    char order[16];
    int done;
    int called_inside_write;
    int errors[16];
    bool socket_seen[16];
    long destroyed;
};

static void wr_record(struct wr *w, char tag, rs_socket *socket, int error_code)
{
    rs_test_counter_lock(&w->counter);
    if (w->inside_write) {
        w->called_inside_write++;
    }
    w->socket_seen[w->done] = socket != NULL;
    w->errors[w->done] = error_code;
    w->order[w->done++] = tag;
    rs_test_counter_unlock_add(&w->counter, 1);
}

static void wr_on_destroy(void *user_data)
{
    struct wr *w = user_data;
    rs_test_counter_lock(&w->counter);
    w->destroyed++;
    rs_test_counter_unlock_add(&w->counter, 1);
}

static void wr_write(struct wr *w, const char *data, rs_socket_on_write_completed_fn *fn)
{
    w->inside_write = true;
    assert_int_equal(rs_socket_write(w->socket, data, 1, fn, w), 0);
    w->inside_write = false;
}

static void sk19_first_done(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct wr *w = user_data;
    wr_record(w, 'A', socket, error_code);
    assert_non_null(socket);
    assert_int_equal(rs_socket_destroy(socket), 0);
}

static void sk19_second_done(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    wr_record(user_data, 'B', socket, error_code);
}

static void sk19_write_two(void *arg)
{
    struct wr *w = arg;
    wr_write(w, "A", sk19_first_done);
    wr_write(w, "B", sk19_second_done);
}

static void test_sk19_destroy_in_own_write_callback(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct wr w;
    memset(&w, 0, sizeof w);
    rs_test_counter_init(&w.counter);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    w.socket = client->socket;
    rs_test_run_on_loop(loop, sk19_write_two, &w);
    SK_WAIT(client, client->destroy_calls == 1, "the destroy callback");
    SK_WAIT(&w, w.done == 2, "both write completions");
    assert_memory_equal(w.order, "AB", 2);
    assert_true(w.socket_seen[0]);
    assert_false(w.socket_seen[1]); /* destroyed before its completion ran */
    assert_int_equal(w.errors[0], 0);
    assert_int_equal(w.called_inside_write, 0);
    sk_loop_round_trip(loop);
    assert_int_equal(w.done, 2);
    client->socket = NULL;
    sk_peer_free(client);
    sk_server_stop(&server);
    rs_test_counter_clean_up(&w.counter);
}

static void sk20_done_d(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct wr *w = user_data;
    wr_record(w, 'D', socket, error_code);
    assert_int_equal(rs_socket_set_destroy_callback(socket, wr_on_destroy, w), 0);
    assert_int_equal(rs_socket_destroy(socket), 0);
}

static void sk20_done_a(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct wr *w = user_data;
    wr_record(w, 'A', socket, error_code);
    wr_write(w, "D", sk20_done_d);
}

/* Records the next letter: completions that run in order record A, B, C... */
static void wr_done_in_order(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct wr *w = user_data;
    rs_test_counter_lock(&w->counter);
    char tag = (char)('A' + w->done);
    rs_test_counter_unlock(&w->counter);
    wr_record(w, tag, socket, error_code);
}

static void sk20_write_three(void *arg)
{
    struct wr *w = arg;
    wr_write(w, "A", sk20_done_a);
    wr_write(w, "B", wr_done_in_order);
    wr_write(w, "C", wr_done_in_order);
    assert_int_equal(w->done, 0);
}

static void test_sk20_write_callbacks_async_fifo(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct wr w;
    memset(&w, 0, sizeof w);
    rs_test_counter_init(&w.counter);
    rs_socket *client = rs_socket_new(&options);
    assert_non_null(client);
    struct sk_peer *cp = sk_peer_wrap(loop, client);
    assert_int_equal(sk_peer_connect(cp, &server.endpoint), 0);
    w.socket = client;
    rs_test_run_on_loop(loop, sk20_write_three, &w);
    SK_WAIT(&w, w.destroyed == 1, "the socket destroyed in its write callback");
    assert_int_equal(w.done, 4);
    assert_memory_equal(w.order, "ABCD", 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w.errors[i], 0);
        assert_true(w.socket_seen[i]);
    }
    assert_int_equal(w.called_inside_write, 0);
    sk_server_wait_accepted(&server, 1);
    sk_peer_wait_bytes(server.accepted[0], 4);
    assert_memory_equal(server.accepted[0]->data, "ABCD", 4);
    cp->socket = NULL; /* destroyed in its last write callback */
    sk_peer_free(cp);
    sk_server_stop(&server);
    rs_test_counter_clean_up(&w.counter);
}

/* ---- writes from a write callback, then close or shutdown ---- */

/*
 * A write callback that writes again and then at once closes the socket, or
 * shuts down its sending side: what the kernel had room for is sent and
 * reported as written, the peer reads all of it, then the end of the stream.
 * (The libevent backend holds writes issued by write callbacks to gather
 * them into one system call; a close or shutdown must send them first.)
 */
struct wclose {
    struct wr w;
    bool shutdown; /* shutdown(WRITE) instead of close */
    int end_result;
};

static void wclose_first_done(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct wclose *t = user_data;
    wr_record(&t->w, 'A', socket, error_code);
    wr_write(&t->w, "B", wr_done_in_order);
    wr_write(&t->w, "C", wr_done_in_order);
    t->end_result = t->shutdown ? rs_socket_shutdown(socket, RS_SOCKET_DIRECTION_WRITE)
                                : rs_socket_close(socket);
}

static void wclose_write_first(void *arg)
{
    struct wclose *t = arg;
    t->w.inside_write = true;
    assert_int_equal(rs_socket_write(t->w.socket, "A", 1, wclose_first_done, t), 0);
    t->w.inside_write = false;
}

static void wclose_check(rs_event_loop *loop, bool shutdown)
{
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct wclose t;
    memset(&t, 0, sizeof t);
    t.shutdown = shutdown;
    t.end_result = -2;
    rs_test_counter_init(&t.w.counter);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    t.w.socket = client->socket;
    rs_test_run_on_loop(loop, wclose_write_first, &t);
    SK_WAIT(&t.w, t.w.done == 3, "three write completions");
    assert_int_equal(t.end_result, 0);
    assert_memory_equal(t.w.order, "ABC", 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t.w.errors[i], 0);
    }
    assert_int_equal(t.w.called_inside_write, 0);
    sk_server_wait_accepted(&server, 1);
    struct sk_peer *accepted = server.accepted[0];
    SK_WAIT(accepted, accepted->eof, "the end of the stream");
    assert_int_equal(accepted->len, 3);
    assert_memory_equal(accepted->data, "ABC", 3);
    sk_peer_free(client);
    sk_server_stop(&server);
    rs_test_counter_clean_up(&t.w.counter);
}

static void test_writes_from_write_callback_then_close(void **state)
{
    wclose_check(*state, false);
}

static void test_writes_from_write_callback_then_shutdown(void **state)
{
    wclose_check(*state, true);
}

/* ---- SK21 ---- */

static void test_sk21_local_connect_before_start_accept(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_LOCAL);
    rs_socket *listener = rs_socket_new(&options);
    assert_non_null(listener);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_LOCAL);
    assert_int_equal(rs_socket_bind(listener, &ep), 0);
    assert_int_equal(rs_socket_listen(listener, 4), 0);

    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &ep), 0);
    static const char early[] = "sent before accept started";
    sk_peer_write(client, early, sizeof early);

    /* Take the listener over with the fixture's accepting server. */
    struct sk_server server;
    memset(&server, 0, sizeof server);
    server.listener = listener;
    server.endpoint = ep;
    server.loop = loop;
    server.domain = RS_SOCKET_LOCAL;
    rs_test_counter_init(&server.counter);
    sk_server_restart(&server);
    sk_server_wait_accepted(&server, 1);
    sk_peer_wait_bytes(server.accepted[0], sizeof early);
    assert_memory_equal(server.accepted[0]->data, early, sizeof early);
    sk_peer_free(client);
    sk_server_stop(&server);
}

/* ---- SK24 ---- */

static void sk24_check(rs_event_loop *loop, rs_socket_domain domain, const char *address)
{
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, domain);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_server_wait_accepted(&server, 1);
    rs_socket *accepted = server.accepted[0]->socket;

    rs_socket_endpoint client_local, client_remote, remote, local;
    assert_int_equal(rs_socket_get_bound_address(client->socket, &client_local), 0);
    assert_int_equal(rs_socket_get_remote_address(client->socket, &client_remote), 0);
    assert_int_equal(rs_socket_get_remote_address(accepted, &remote), 0);
    assert_int_equal(rs_socket_get_bound_address(accepted, &local), 0);
    assert_string_equal(remote.address, address);
    assert_string_equal(remote.address, client_local.address);
    assert_int_equal(remote.port, client_local.port);
    assert_true(remote.port != 0);
    assert_string_equal(local.address, server.endpoint.address);
    assert_int_equal(local.port, server.endpoint.port);
    assert_string_equal(client_remote.address, server.endpoint.address);
    assert_int_equal(client_remote.port, server.endpoint.port);
    rs_socket_options accepted_options;
    assert_int_equal(rs_socket_get_options(accepted, &accepted_options), 0);
    assert_int_equal(accepted_options.domain, domain);
    sk_peer_free(client);
    sk_server_stop(&server);
}

static void test_sk24_accepted_remote_endpoint(void **state)
{
    sk24_check(*state, RS_SOCKET_IPV4, "127.0.0.1");
    sk24_check(*state, RS_SOCKET_IPV6, "::1");
}

/* ---- SK25 ---- */

struct sk25 {
    struct rs_test_counter counter;
    rs_socket_endpoint listener_ep;
    rs_socket_endpoint local;
    rs_socket_endpoint remote;
    int results[4];
    bool nodelay;
    rs_socket *accepted;
};

static const char sk25_payload[] = "every byte before the end of stream";

static void sk25_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    assert_int_equal(error_code, 0);
    struct sk25 *t = user_data;
    /* Shut the sending side once the bytes are out: the peer sees EOF after them. */
    rs_test_counter_lock(&t->counter);
    t->results[3] = rs_socket_shutdown(socket, RS_SOCKET_DIRECTION_WRITE);
    rs_test_counter_unlock_add(&t->counter, 1);
}

static void sk25_on_accept(rs_socket *listener, int error_code, rs_socket *s, void *user_data)
{
    (void)listener;
    assert_int_equal(error_code, 0);
    struct sk25 *t = user_data;
    /* Immediately after accept, before the socket has a loop. */
    t->results[0] = rs_socket_get_bound_address(s, &t->local);
    t->results[1] = rs_socket_get_remote_address(s, &t->remote);
    t->results[2] = rs_socket_get_tcp_nodelay(s, &t->nodelay);
    assert_int_equal(rs_socket_assign_to_event_loop(s, rs_socket_get_event_loop(listener)), 0);
    assert_int_equal(rs_socket_write(s, sk25_payload, sizeof sk25_payload, sk25_written, t), 0);
    rs_test_counter_lock(&t->counter);
    t->accepted = s;
    rs_test_counter_unlock_add(&t->counter, 1);
}

static void test_sk25_accepted_socket_queries_and_shutdown(void **state)
{
    rs_event_loop *loop = *state;
    struct sk25 t;
    memset(&t, 0, sizeof t);
    t.results[3] = 1;
    rs_test_counter_init(&t.counter);
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    options.tcp_nodelay = RS_SOCKET_OPTION_ON;
    rs_socket *listener = rs_socket_new(&options);
    assert_non_null(listener);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(listener, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(listener, &t.listener_ep), 0);
    assert_int_equal(rs_socket_listen(listener, 4), 0);
    assert_int_equal(rs_socket_start_accept(listener, loop, sk25_on_accept, &t), 0);

    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &t.listener_ep), 0);
    sk_peer_subscribe(client);
    SK_WAIT(&t, t.results[3] != 1, "the accepted socket's shutdown");
    assert_int_equal(t.results[0], 0);
    assert_int_equal(t.results[1], 0);
    assert_int_equal(t.results[2], 0);
    assert_int_equal(t.results[3], 0);
    assert_true(t.nodelay);
    assert_string_equal(t.local.address, "127.0.0.1");
    assert_int_equal(t.local.port, t.listener_ep.port);
    rs_socket_endpoint client_local;
    assert_int_equal(rs_socket_get_bound_address(client->socket, &client_local), 0);
    assert_int_equal(t.remote.port, client_local.port);

    SK_WAIT(client, client->eof, "end of stream after the shut-down");
    assert_int_equal(client->len, sizeof sk25_payload);
    assert_memory_equal(client->data, sk25_payload, sizeof sk25_payload);
    assert_int_equal(client->read_error, 0);

    assert_int_equal(rs_socket_destroy(t.accepted), 0);
    assert_int_equal(rs_socket_destroy(listener), 0);
    sk_peer_free(client);
    rs_test_counter_clean_up(&t.counter);
}

/* ---- SK26 ---- */

static void test_sk26_read_to_eof_after_peer_writes_and_closes(void **state)
{
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_peer_subscribe(client);
    sk_server_wait_accepted(&server, 1);
    struct sk_peer *sender = server.accepted[0];

    size_t size = 1u << 20;
    unsigned char *payload = malloc(size);
    assert_non_null(payload);
    sk_fill_pattern(payload, size, 26);
    sk_peer_write(sender, payload, size);
    SK_WAIT(sender, sender->writes_done == 1, "the write completion");
    assert_int_equal(sender->write_errors, 0);
    assert_int_equal(rs_socket_close(sender->socket), 0);

    SK_WAIT(client, client->eof, "end of stream");
    assert_int_equal(client->len, size);
    assert_true(sk_check_pattern(client->data, size, 26));
    assert_int_equal(client->read_error, 0);
    sk_peer_free(client);
    sk_server_stop(&server);
    free(payload);
}

#define SK_TEST(fn) cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SK_TEST(test_sk18_listener_destroyed_in_accept_callback),
        SK_TEST(test_sk19_destroy_in_own_write_callback),
        SK_TEST(test_sk20_write_callbacks_async_fifo),
        SK_TEST(test_writes_from_write_callback_then_close),
        SK_TEST(test_writes_from_write_callback_then_shutdown),
        SK_TEST(test_sk21_local_connect_before_start_accept),
        SK_TEST(test_sk24_accepted_remote_endpoint),
        SK_TEST(test_sk25_accepted_socket_queries_and_shutdown),
        SK_TEST(test_sk26_read_to_eof_after_peer_writes_and_closes),
    };
    return RS_TEST_MAIN("socket_callbacks", tests);
}
