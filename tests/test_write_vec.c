/*
 * UD4: vectored writes (rs_socket_write_vec). A stream write of 1, 2,
 * IOV_MAX and IOV_MAX + 5 buffers (and a few large ones, sent in several
 * calls) completes once with the total and the reader gets the bytes in
 * array order; a UDP write is one datagram gathered from its buffers; bad
 * input fails with its own code and changes nothing.
 *
 * The buffers lie in memory in the reverse of their array order, with a
 * byte of filler between them, so a backend that sent the wrong buffer,
 * the right one from the wrong place, or one buffer's worth past its end,
 * delivers bytes the reader's pattern check rejects.
 */
#include "socket_fixture.h"

#include "../common/compat.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The system's limit where it has one (Linux, macOS, the BSDs: 1024); the
 * same number elsewhere, where the scenario's counts mean the same thing. */
#ifdef IOV_MAX
#define UD4_IOV_MAX ((size_t)IOV_MAX)
#else
#define UD4_IOV_MAX ((size_t)1024)
#endif

#define UD4_FILLER 0xEE

static bool free_owned(void *obj)
{
    free(obj);
    return true;
}

/* A heap block owned by the running test (released after a failure, once
 * the sockets that may still read it are gone: own it before them). */
static void *owned_alloc(size_t size)
{
    void *p = malloc(size);
    assert_non_null(p);
    rs_test_own(p, free_owned, NULL);
    return p;
}

static void owned_free(void *p)
{
    rs_test_disown(p);
    free(p);
}

/* Buffers of the given lengths whose concatenation is the pattern from 0,
 * laid out in reverse order with filler between them. A length of 0 gets a
 * NULL base. Returns the backing block (owned by the test); *total is the
 * sum of the lengths. */
static unsigned char *make_bufs(rs_buf *bufs, const size_t *lens, size_t n, size_t *total)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += lens[i];
    }
    unsigned char *block = owned_alloc(sum + n + 1);
    memset(block, UD4_FILLER, sum + n + 1);
    size_t pos = 1;
    size_t stream_off = sum;
    for (size_t k = n; k-- > 0;) {
        stream_off -= lens[k];
        if (lens[k] == 0) {
            bufs[k].base = NULL;
            bufs[k].len = 0;
            continue;
        }
        sk_fill_pattern(block + pos, lens[k], stream_off);
        bufs[k].base = block + pos;
        bufs[k].len = lens[k];
        pos += lens[k] + 1;
    }
    *total = sum;
    return block;
}

/* ---- the completion and the call on the loop thread ---- */

static void on_vec_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
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
    rs_test_counter_unlock_add(&p->counter, 1);
}

struct vec_call {
    rs_socket *socket;
    const rs_buf *bufs; /* copied into `array` for the call */
    size_t nbufs;
    rs_socket_on_write_completed_fn *on_complete;
    void *user_data;
    int result;
    int error;
    size_t queue_before;
    size_t queue_after;
};

/* Calls rs_socket_write_vec with a copy of the array on the heap, which it
 * scribbles over and frees as soon as the call returns: the library must
 * have copied the array (rs_buf ownership), not kept a pointer to it. */
static void vec_call_on_loop(void *arg)
{
    struct vec_call *c = arg;
    rs_buf *array = NULL;
    if (c->bufs && c->nbufs > 0 && c->nbufs <= RS_SOCKET_WRITE_VEC_MAX) {
        array = malloc(c->nbufs * sizeof *array);
        assert_non_null(array);
        memcpy(array, c->bufs, c->nbufs * sizeof *array);
    } else if (c->bufs) {
        array = (rs_buf *)c->bufs; /* never read: the count is refused first */
    }
    if (rs_socket_get_write_queue_size(c->socket, &c->queue_before) != 0) {
        c->queue_before = SIZE_MAX;
    }
    c->result = rs_socket_write_vec(c->socket, array, c->nbufs, c->on_complete, c->user_data);
    c->error = c->result ? rs_last_error() : 0;
    if (rs_socket_get_write_queue_size(c->socket, &c->queue_after) != 0) {
        c->queue_after = SIZE_MAX;
    }
    if (array && array != c->bufs) {
        memset(array, 0xA5, c->nbufs * sizeof *array);
        free(array);
    }
}

static int write_vec(struct sk_peer *p, const rs_buf *bufs, size_t nbufs)
{
    rs_test_counter_lock(&p->counter);
    p->writes_issued++;
    rs_test_counter_unlock(&p->counter);
    struct vec_call c = {p->socket, bufs, nbufs, on_vec_written, p, 0, 0, 0, 0};
    rs_test_run_on_loop(p->loop, vec_call_on_loop, &c);
    return c.result ? c.error : 0;
}

/* A call that must fail with `expected` and leave the queue as it was. */
static void expect_refused(rs_socket *socket, rs_event_loop *loop, const rs_buf *bufs, size_t nbufs,
                           rs_socket_on_write_completed_fn *on_complete, int expected)
{
    struct vec_call c = {socket, bufs, nbufs, on_complete, NULL, 0, 0, 0, 0};
    rs_test_run_on_loop(loop, vec_call_on_loop, &c);
    assert_int_equal(c.result, -1);
    assert_string_equal(rs_error_name(c.error), rs_error_name(expected));
    assert_true(c.queue_before == c.queue_after);
}

/* ---- streams ---- */

/* One vectored write of n buffers of lens from a fresh client to a fresh
 * accepted peer: one completion with the total, the bytes in order. */
static void stream_case(rs_event_loop *loop, rs_socket_domain domain, const size_t *lens, size_t n)
{
    rs_buf *bufs = owned_alloc(n * sizeof *bufs);
    size_t total = 0;
    unsigned char *block = make_bufs(bufs, lens, n, &total);

    rs_socket_options options = sk_options(RS_SOCKET_STREAM, domain);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_server_wait_accepted(&server, 1);
    struct sk_peer *reader = server.accepted[0];

    assert_int_equal(write_vec(client, bufs, n), 0);
    SK_WAIT(client, client->writes_done == 1, "the vectored write's completion");
    sk_peer_wait_bytes(reader, total);
    /* Anything after the completion would be a second completion or bytes
     * beyond the total: a round trip of the loop lets them show. */
    sk_loop_round_trip(loop);
    rs_test_counter_lock(&client->counter);
    assert_int_equal(client->writes_done, 1);
    assert_int_equal(client->write_errors, 0);
    assert_int_equal(client->bytes_written, total);
    rs_test_counter_unlock(&client->counter);
    rs_test_counter_lock(&reader->counter);
    assert_int_equal(reader->len, total);
    assert_true(sk_check_pattern(reader->data, total, 0));
    rs_test_counter_unlock(&reader->counter);

    sk_peer_free(client);
    sk_server_stop(&server);
    owned_free(block);
    owned_free(bufs);
}

/* 1, 2, IOV_MAX and IOV_MAX + 5 buffers of 1 + (i * 37) % 300 bytes (one
 * of them empty when there are more than 2). */
static void stream_counts(rs_event_loop *loop, rs_socket_domain domain)
{
    const size_t counts[] = {1, 2, UD4_IOV_MAX, UD4_IOV_MAX + 5};
    for (size_t c = 0; c < RS__ARRAY_LEN(counts); c++) {
        size_t n = counts[c];
        size_t *lens = owned_alloc(n * sizeof *lens);
        for (size_t i = 0; i < n; i++) {
            lens[i] = 1 + (i * 37) % 300;
        }
        if (n > 2) {
            lens[7] = 0; /* an empty buffer (NULL base) is allowed and skipped */
        }
        stream_case(loop, domain, lens, n);
        owned_free(lens);
    }
    /* Buffers larger than what one send takes: the writer resumes inside a
     * buffer, between calls. */
    const size_t large[] = {3u << 20, 1, 5u << 20, 4097};
    stream_case(loop, domain, large, RS__ARRAY_LEN(large));
}

static void test_ud4_tcp_vectored_write_counts(void **state)
{
    stream_counts(*state, RS_SOCKET_IPV4);
}

static void test_ud4_local_vectored_write_counts(void **state)
{
    stream_counts(*state, RS_SOCKET_LOCAL);
}

/* Single and vectored writes queued back to back complete in order, one
 * completion each, their bytes not interleaved. */
static void test_ud4_tcp_vectored_writes_keep_fifo_order(void **state)
{
    rs_event_loop *loop = *state;
    const size_t lens[] = {1000, 70000, 3, 200000};
    rs_buf bufs[RS__ARRAY_LEN(lens)];
    size_t total = 0;
    unsigned char *block = make_bufs(bufs, lens, RS__ARRAY_LEN(lens), &total);

    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_server_wait_accepted(&server, 1);
    struct sk_peer *reader = server.accepted[0];

    /* single, vectored (2 buffers), single: the stream is the pattern. */
    sk_peer_write(client, bufs[0].base, bufs[0].len);
    assert_int_equal(write_vec(client, &bufs[1], 2), 0);
    sk_peer_write(client, bufs[3].base, bufs[3].len);
    SK_WAIT(client, client->writes_done == 3, "three completions");
    sk_peer_wait_bytes(reader, total);
    sk_loop_round_trip(loop);
    rs_test_counter_lock(&client->counter);
    assert_int_equal(client->writes_done, 3);
    assert_int_equal(client->write_errors, 0);
    assert_int_equal(client->bytes_written, total);
    rs_test_counter_unlock(&client->counter);
    rs_test_counter_lock(&reader->counter);
    assert_int_equal(reader->len, total);
    assert_true(sk_check_pattern(reader->data, total, 0));
    rs_test_counter_unlock(&reader->counter);

    sk_peer_free(client);
    sk_server_stop(&server);
    owned_free(block);
}

/* ---- UDP ---- */

struct udp_rx {
    struct rs_test_counter counter;
    rs_socket *socket;
    unsigned char buf[65536];
    size_t lens[8];
    bool intact[8]; /* the datagram is the pattern from 0 */
    long count;
};

static void udp_on_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct udp_rx *rx = user_data;
    if (error_code) {
        return;
    }
    for (;;) {
        size_t n = 0;
        if (rs_socket_read(socket, rx->buf, sizeof rx->buf, &n) != 0) {
            return;
        }
        rs_test_counter_lock(&rx->counter);
        if (rx->count < (long)RS__ARRAY_LEN(rx->lens)) {
            rx->lens[rx->count] = n;
            rx->intact[rx->count] = sk_check_pattern(rx->buf, n, 0);
        }
        rx->count++;
        rs_test_counter_unlock_add(&rx->counter, 1);
    }
}

static void udp_subscribe(void *arg)
{
    struct udp_rx *rx = arg;
    assert_int_equal(rs_socket_subscribe_to_readable_events(rx->socket, udp_on_readable, rx), 0);
}

static bool udp_rx_release(void *obj)
{
    struct udp_rx *rx = obj;
    if (rx->socket) {
        rs_socket_destroy(rx->socket);
    }
    /* The loop may still be running a callback into rx: leak it rather than
     * free it under that callback. */
    return false;
}

static void test_ud4_udp_one_datagram_gathered(void **state)
{
    rs_event_loop *loop = *state;
    struct udp_rx *rx = calloc(1, sizeof *rx);
    assert_non_null(rx);
    rs_test_counter_init(&rx->counter);
    rs_test_own(rx, udp_rx_release, NULL);
    rs_socket_options options = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    rx->socket = rs_socket_new(&options);
    assert_non_null(rx->socket);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(rx->socket, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(rx->socket, &ep), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(rx->socket, loop), 0);
    rs_test_run_on_loop(loop, udp_subscribe, rx);

    const size_t few[] = {1, 0, 100, 1000, 7};
    rs_buf few_bufs[RS__ARRAY_LEN(few)];
    size_t few_total = 0;
    unsigned char *few_block = make_bufs(few_bufs, few, RS__ARRAY_LEN(few), &few_total);
    /* The most buffers a datagram takes, 63 bytes each (64512 in all). */
    size_t n_many = RS_SOCKET_WRITE_VEC_DGRAM_MAX;
    size_t *many = owned_alloc(n_many * sizeof *many);
    for (size_t i = 0; i < n_many; i++) {
        many[i] = 63;
    }
    rs_buf *many_bufs = owned_alloc((n_many + 1) * sizeof *many_bufs);
    size_t many_total = 0;
    unsigned char *many_block = make_bufs(many_bufs, many, n_many, &many_total);

    struct sk_peer *tx = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(tx, &ep), 0);

    assert_int_equal(write_vec(tx, few_bufs, RS__ARRAY_LEN(few)), 0);
    SK_WAIT(rx, rx->count >= 1, "the first datagram");
    assert_int_equal(write_vec(tx, many_bufs, n_many), 0);
    SK_WAIT(rx, rx->count >= 2, "the second datagram");
    SK_WAIT(tx, tx->writes_done == 2, "both completions");

    /* Over the limits: one buffer too many, one byte too many. Nothing is
     * sent for either (checked by the datagram that follows them). */
    many_bufs[n_many] = many_bufs[0];
    expect_refused(tx->socket, loop, many_bufs, n_many + 1, on_vec_written,
                   RS_ERROR_INVALID_ARGUMENT);
    unsigned char *big = owned_alloc(65508);
    memset(big, 0, 65508);
    const rs_buf too_large[] = {{big, 65000}, {big + 65000, 508}};
    expect_refused(tx->socket, loop, too_large, 2, on_vec_written, RS_ERROR_MESSAGE_TOO_LARGE);
    assert_int_equal(write_vec(tx, few_bufs, RS__ARRAY_LEN(few)), 0);
    SK_WAIT(rx, rx->count >= 3, "the third datagram");
    SK_WAIT(tx, tx->writes_done == 3, "three completions");
    sk_loop_round_trip(loop);

    rs_test_counter_lock(&rx->counter);
    assert_int_equal(rx->count, 3);
    assert_int_equal(rx->lens[0], few_total);
    assert_true(rx->intact[0]);
    assert_int_equal(rx->lens[1], many_total);
    assert_true(rx->intact[1]);
    assert_int_equal(rx->lens[2], few_total);
    assert_true(rx->intact[2]);
    rs_test_counter_unlock(&rx->counter);
    rs_test_counter_lock(&tx->counter);
    assert_int_equal(tx->write_errors, 0);
    assert_int_equal(tx->bytes_written, 2 * few_total + many_total);
    rs_test_counter_unlock(&tx->counter);

    sk_peer_free(tx);
    rs_test_disown(rx);
    assert_int_equal(rs_socket_destroy(rx->socket), 0);
    rx->socket = NULL;
    /* The destroy runs the socket's callbacks out on the loop: a round trip
     * lets the last one finish before rx goes. */
    sk_loop_round_trip(loop);
    rs_test_counter_clean_up(&rx->counter);
    free(rx);
    owned_free(big);
    owned_free(many_block);
    owned_free(many_bufs);
    owned_free(many);
    owned_free(few_block);
}

/* ---- bad input ---- */

static void shutdown_write_on_loop(void *arg)
{
    assert_int_equal(rs_socket_shutdown(arg, RS_SOCKET_DIRECTION_WRITE), 0);
}

static void test_ud4_bad_input_refused_without_effect(void **state)
{
    rs_event_loop *loop = *state;
    const size_t lens[] = {10, 20, 30};
    rs_buf bufs[RS__ARRAY_LEN(lens)];
    size_t total = 0;
    unsigned char *block = make_bufs(bufs, lens, RS__ARRAY_LEN(lens), &total);

    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_server_wait_accepted(&server, 1);
    struct sk_peer *reader = server.accepted[0];
    rs_socket *s = client->socket;

    assert_int_equal(rs_socket_write_vec(NULL, bufs, 3, on_vec_written, client), -1);
    assert_int_equal(rs_last_error(), RS_ERROR_INVALID_ARGUMENT);
    expect_refused(s, loop, NULL, 3, on_vec_written, RS_ERROR_INVALID_ARGUMENT);
    expect_refused(s, loop, bufs, 0, on_vec_written, RS_ERROR_INVALID_ARGUMENT);
    expect_refused(s, loop, bufs, (size_t)RS_SOCKET_WRITE_VEC_MAX + 1, on_vec_written,
                   RS_ERROR_INVALID_ARGUMENT);
    expect_refused(s, loop, bufs, 3, NULL, RS_ERROR_INVALID_ARGUMENT);
    const rs_buf null_base[] = {bufs[0], {NULL, 5}};
    expect_refused(s, loop, null_base, 2, on_vec_written, RS_ERROR_INVALID_ARGUMENT);
    const rs_buf overflow[] = {bufs[0], {bufs[1].base, SIZE_MAX - 5}};
    expect_refused(s, loop, overflow, 2, on_vec_written, RS_ERROR_INVALID_ARGUMENT);
    const rs_buf empty[] = {{NULL, 0}, {bufs[0].base, 0}};
    expect_refused(s, loop, empty, 2, on_vec_written, RS_ERROR_INVALID_ARGUMENT);

    /* Not the loop's thread. */
    assert_int_equal(rs_socket_write_vec(s, bufs, 3, on_vec_written, client), -1);
    assert_int_equal(rs_last_error(), RS_ERROR_WRONG_THREAD);

    /* Not connected: a stream socket with no loop yet, and a UDP socket
     * bound and on the loop but not connected. */
    rs_socket *idle = rs_socket_new(&options);
    assert_non_null(idle);
    assert_int_equal(rs_socket_write_vec(idle, bufs, 3, on_vec_written, client), -1);
    assert_int_equal(rs_last_error(), RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(idle), 0);
    rs_socket_options udp = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    rs_socket *bound = rs_socket_new(&udp);
    assert_non_null(bound);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(bound, &ep), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(bound, loop), 0);
    expect_refused(bound, loop, bufs, 3, on_vec_written, RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(bound), 0);

    /* Nothing of the refused calls was queued or sent: the next write's
     * bytes are the first the reader sees, and its completion the only one. */
    assert_int_equal(write_vec(client, bufs, 3), 0);
    SK_WAIT(client, client->writes_done == 1, "the completion");
    sk_peer_wait_bytes(reader, total);
    sk_loop_round_trip(loop);
    rs_test_counter_lock(&client->counter);
    assert_int_equal(client->writes_done, 1);
    assert_int_equal(client->bytes_written, total);
    rs_test_counter_unlock(&client->counter);
    rs_test_counter_lock(&reader->counter);
    assert_int_equal(reader->len, total);
    assert_true(sk_check_pattern(reader->data, total, 0));
    rs_test_counter_unlock(&reader->counter);

    /* Shut down for writing: refused like rs_socket_write. */
    rs_test_run_on_loop(loop, shutdown_write_on_loop, s);
    expect_refused(s, loop, bufs, 3, on_vec_written, RS_ERROR_INVALID_STATE);

    sk_peer_free(client);
    sk_server_stop(&server);
    owned_free(block);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ud4_tcp_vectored_write_counts, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud4_local_vectored_write_counts, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud4_tcp_vectored_writes_keep_fifo_order,
                                        rs_test_setup_loop, rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud4_udp_one_datagram_gathered, rs_test_setup_loop,
                                        rs_test_teardown_loop),
        cmocka_unit_test_setup_teardown(test_ud4_bad_input_refused_without_effect,
                                        rs_test_setup_loop, rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("write_vec", tests);
}
