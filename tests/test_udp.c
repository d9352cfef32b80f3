/*
 * Unconnected UDP (UD1, test-scenarios.md): a bound socket that is not
 * connected reads each datagram with its sender (rs_socket_read_from) and
 * answers any of them (rs_socket_write_to), on IPv4 and IPv6; its readable
 * events, its truncation rule, its size limits, a connected socket's
 * read_from (its peer) and the errors.
 * Same file on every backend; loopback only, port 0 read back, bounded waits.
 */
#include "socket_fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UD1_CLIENTS 10
#define UD1_DATAGRAMS 100
/* Datagrams a client keeps in flight: the receive buffers never overflow,
 * so no datagram is lost to speed (UDP may drop what overflows). */
#define UD1_WINDOW 4
#define UD1_MAGIC 0x55443155u /* "UD1U" */

/* One datagram: who sent it and which one it is. */
struct ud1_payload {
    uint32_t magic;
    uint32_t client;
    uint32_t seq;
    uint32_t check;
};

struct ud1;

struct ud1_client {
    struct ud1 *t;
    uint32_t index;
    struct sk_peer *peer;
    rs_socket_endpoint endpoint; /* its bound address */
    long sent;
    long replies;
    unsigned char seen[UD1_DATAGRAMS];
};

/* On the heap, owned by the test (rs_test_own) before the sockets that call
 * back into it, so a failed test releases the sockets first. */
struct ud1 {
    struct rs_test_counter counter;
    struct sk_peer *server;
    rs_socket_endpoint server_endpoint;
    struct ud1_client clients[UD1_CLIENTS];
    long server_reads[UD1_CLIENTS];
    long writes_issued;
    long writes_done;
    long write_errors;
    long clients_done;
    long wrong_sender; /* the server saw a sender other than the payload's client */
    long wrong_reply;  /* a client got a reply not from the server, or not its own */
    long duplicates;   /* a reply came twice */
    long read_errors;  /* a read failed with something other than WOULD_BLOCK */
    int last_read_error;
};

/* A write's own copy of its bytes, freed by its completion. */
struct ud1_write {
    struct ud1 *t;
    struct ud1_payload payload;
};

static bool ud1_release(void *obj)
{
    struct ud1 *t = obj;
    rs_test_counter_clean_up(&t->counter);
    free(t);
    return true;
}

static bool same_endpoint(const rs_socket_endpoint *a, const rs_socket_endpoint *b)
{
    return a->port == b->port && strcmp(a->address, b->address) == 0;
}

static void ud1_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    struct ud1_write *w = user_data;
    struct ud1 *t = w->t;
    rs_test_counter_lock(&t->counter);
    t->writes_done++;
    if (error_code != 0 || bytes != sizeof w->payload) {
        t->write_errors++;
    }
    rs_test_counter_unlock_add(&t->counter, 1);
    free(w);
}

/* Loop thread. */
static void ud1_send(struct ud1 *t, rs_socket *socket, const rs_socket_endpoint *to,
                     const struct ud1_payload *payload)
{
    struct ud1_write *w = malloc(sizeof *w);
    if (!w) {
        rs_test_counter_lock(&t->counter);
        t->write_errors++;
        rs_test_counter_unlock(&t->counter);
        return;
    }
    w->t = t;
    w->payload = *payload;
    rs_test_counter_lock(&t->counter);
    t->writes_issued++;
    rs_test_counter_unlock(&t->counter);
    if (rs_socket_write_to(socket, to, &w->payload, sizeof w->payload, ud1_written, w) != 0) {
        rs_test_counter_lock(&t->counter);
        t->writes_issued--;
        t->write_errors++;
        rs_test_counter_unlock(&t->counter);
        free(w);
    }
}

static void ud1_client_send_next(struct ud1 *t, uint32_t index)
{
    struct ud1_client *c = &t->clients[index];
    struct ud1_payload p = {UD1_MAGIC, index, (uint32_t)c->sent, index * 1000u + (uint32_t)c->sent};
    c->sent++;
    ud1_send(t, c->peer->socket, &t->server_endpoint, &p);
}

static bool read_failed(struct ud1 *t)
{
    int err = rs_last_error();
    if (err == RS_ERROR_WOULD_BLOCK) {
        return false;
    }
    rs_test_counter_lock(&t->counter);
    t->read_errors++;
    t->last_read_error = err;
    rs_test_counter_unlock_add(&t->counter, 1);
    return true;
}

static bool valid(const struct ud1_payload *p, size_t n)
{
    return n == sizeof *p && p->magic == UD1_MAGIC && p->client < UD1_CLIENTS &&
           p->seq < UD1_DATAGRAMS && p->check == p->client * 1000u + p->seq;
}

/* The server answers every datagram to the sender read_from reports. */
static void ud1_server_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct ud1 *t = user_data;
    (void)error_code;
    for (;;) {
        struct ud1_payload p;
        size_t n = 0;
        rs_socket_endpoint from;
        memset(&from, 0, sizeof from);
        if (rs_socket_read_from(socket, &p, sizeof p, &n, &from) != 0) {
            read_failed(t);
            return;
        }
        rs_test_counter_lock(&t->counter);
        if (!valid(&p, n) || !same_endpoint(&from, &t->clients[p.client].endpoint)) {
            t->wrong_sender++;
        } else {
            t->server_reads[p.client]++;
        }
        rs_test_counter_unlock(&t->counter);
        ud1_send(t, socket, &from, &p);
    }
}

static void ud1_client_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)error_code;
    struct ud1_client *c = user_data;
    struct ud1 *t = c->t;
    uint32_t index = c->index;
    for (;;) {
        struct ud1_payload p;
        size_t n = 0;
        rs_socket_endpoint from;
        if (rs_socket_read_from(socket, &p, sizeof p, &n, &from) != 0) {
            read_failed(t);
            return;
        }
        bool more = false;
        rs_test_counter_lock(&t->counter);
        if (!valid(&p, n) || p.client != index || !same_endpoint(&from, &t->server_endpoint)) {
            t->wrong_reply++;
        } else if (c->seen[p.seq]) {
            t->duplicates++;
        } else {
            c->seen[p.seq] = 1;
            c->replies++;
            more = c->sent < UD1_DATAGRAMS;
            if (c->replies == UD1_DATAGRAMS) {
                t->clients_done++;
            }
        }
        rs_test_counter_unlock_add(&t->counter, 1);
        if (more) {
            ud1_client_send_next(t, index);
        }
    }
}

/* A bound UDP socket of domain on loopback port 0, assigned to loop. */
static struct sk_peer *bound_udp(rs_event_loop *loop, rs_socket_domain domain,
                                 rs_socket_endpoint *bound)
{
    rs_socket_options options = sk_options(RS_SOCKET_DGRAM, domain);
    struct sk_peer *p = sk_peer_new(loop, &options);
    rs_socket_endpoint ep = sk_loopback(domain);
    assert_int_equal(rs_socket_bind(p->socket, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(p->socket, bound), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(p->socket, loop), 0);
    return p;
}

static void ud1_start(void *arg)
{
    struct ud1 *t = arg;
    int rc = rs_socket_subscribe_to_readable_events(t->server->socket, ud1_server_readable, t);
    for (uint32_t i = 0; rc == 0 && i < UD1_CLIENTS; i++) {
        struct ud1_client *c = &t->clients[i];
        rc = rs_socket_subscribe_to_readable_events(c->peer->socket, ud1_client_readable, c);
        for (int w = 0; rc == 0 && w < UD1_WINDOW; w++) {
            ud1_client_send_next(t, i);
        }
    }
    if (rc != 0) {
        rs_test_counter_lock(&t->counter);
        t->write_errors++;
        rs_test_counter_unlock_add(&t->counter, 1);
    }
}

static void ud1_run(rs_event_loop *loop, rs_socket_domain domain)
{
    struct ud1 *t = calloc(1, sizeof *t);
    assert_non_null(t);
    rs_test_counter_init(&t->counter);
    rs_test_own(t, ud1_release, NULL);
    t->server = bound_udp(loop, domain, &t->server_endpoint);
    for (uint32_t i = 0; i < UD1_CLIENTS; i++) {
        struct ud1_client *c = &t->clients[i];
        c->t = t;
        c->index = i;
        c->peer = bound_udp(loop, domain, &c->endpoint);
    }
    rs_test_run_on_loop(loop, ud1_start, t);

    SK_WAIT(t, t->clients_done == UD1_CLIENTS || t->write_errors || t->read_errors,
            "every reply at every client");
    SK_WAIT(t, t->writes_done == t->writes_issued, "every write completion");
    rs_test_counter_lock(&t->counter);
    long clients_done = t->clients_done;
    long writes_done = t->writes_done;
    long write_errors = t->write_errors;
    long read_errors = t->read_errors;
    long wrong_sender = t->wrong_sender;
    long wrong_reply = t->wrong_reply;
    long duplicates = t->duplicates;
    long reads[UD1_CLIENTS];
    memcpy(reads, t->server_reads, sizeof reads);
    rs_test_counter_unlock(&t->counter);

    for (int i = 0; i < UD1_CLIENTS; i++) {
        sk_peer_free(t->clients[i].peer);
    }
    sk_peer_free(t->server);
    rs_test_disown(t);
    ud1_release(t);

    assert_int_equal(read_errors, 0);
    assert_int_equal(write_errors, 0);
    assert_int_equal(wrong_sender, 0);
    assert_int_equal(wrong_reply, 0);
    assert_int_equal(duplicates, 0);
    assert_int_equal(clients_done, UD1_CLIENTS);
    for (int i = 0; i < UD1_CLIENTS; i++) {
        assert_int_equal(reads[i], UD1_DATAGRAMS);
    }
    /* Each client's datagrams and the server's replies. */
    assert_int_equal(writes_done, 2 * UD1_CLIENTS * UD1_DATAGRAMS);
}

static void test_ud1_ipv4_bound_socket_answers_ten_clients(void **state)
{
    ud1_run(*state, RS_SOCKET_IPV4);
}

static void test_ud1_ipv6_bound_socket_answers_ten_clients(void **state)
{
    ud1_run(*state, RS_SOCKET_IPV6);
}

/* ---- UD1: truncation, sizes and the sender of each datagram ---- */

#define UD_RX_MAX 4
#define UD_BIG 65536

struct ud_rx {
    struct rs_test_counter counter;
    size_t plan[UD_RX_MAX]; /* the length each read asks for */
    int count;
    size_t got[UD_RX_MAX];
    rs_socket_endpoint from[UD_RX_MAX];
    bool intact[UD_RX_MAX];
    long read_errors;
    int last_error;
    long writes_done;
    long write_errors;
    int too_large; /* the error of a write one byte over the limit */
    unsigned char buf[UD_BIG];
    unsigned char out[3][UD_BIG];
    size_t out_len[3];
    rs_socket *tx;
    rs_socket *rx;
    rs_socket_endpoint rx_endpoint;
};

static bool ud_rx_release(void *obj)
{
    struct ud_rx *r = obj;
    rs_test_counter_clean_up(&r->counter);
    free(r);
    return true;
}

static void ud_rx_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)error_code;
    struct ud_rx *r = user_data;
    for (;;) {
        rs_test_counter_lock(&r->counter);
        int i = r->count;
        rs_test_counter_unlock(&r->counter);
        size_t len = i < UD_RX_MAX ? r->plan[i] : sizeof r->buf;
        size_t n = 0;
        rs_socket_endpoint from;
        int rc = rs_socket_read_from(socket, r->buf, len, &n, &from);
        int err = rc ? rs_last_error() : 0;
        rs_test_counter_lock(&r->counter);
        if (rc != 0) {
            if (err != RS_ERROR_WOULD_BLOCK) {
                r->read_errors++;
                r->last_error = err;
            }
        } else if (i < UD_RX_MAX) {
            r->got[i] = n;
            r->from[i] = from;
            r->intact[i] = sk_check_pattern(r->buf, n, (size_t)i);
            r->count++;
        } else {
            r->read_errors++;
        }
        rs_test_counter_unlock_add(&r->counter, 1);
        if (rc != 0) {
            return;
        }
    }
}

static void ud_rx_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    struct ud_rx *r = user_data;
    rs_test_counter_lock(&r->counter);
    r->writes_done++;
    if (error_code) {
        r->write_errors++;
    }
    rs_test_counter_unlock_add(&r->counter, 1);
}

static void ud_rx_start(void *arg)
{
    struct ud_rx *r = arg;
    int rc = rs_socket_subscribe_to_readable_events(r->rx, ud_rx_readable, r);
    for (int i = 0; rc == 0 && i < 3; i++) {
        rc = rs_socket_write_to(r->tx, &r->rx_endpoint, r->out[i], r->out_len[i], ud_rx_written, r);
    }
    /* One byte over the limit: refused, nothing queued. */
    int over =
        rs_socket_write_to(r->tx, &r->rx_endpoint, r->out[2], r->out_len[2] + 1, ud_rx_written, r);
    rs_test_counter_lock(&r->counter);
    r->too_large = over == -1 ? rs_last_error() : 0;
    if (rc != 0) {
        r->write_errors++;
    }
    rs_test_counter_unlock_add(&r->counter, 1);
}

static void ud_truncation_and_limits(rs_event_loop *loop, rs_socket_domain domain,
                                     size_t max_datagram)
{
    struct ud_rx *r = calloc(1, sizeof *r);
    assert_non_null(r);
    rs_test_counter_init(&r->counter);
    rs_test_own(r, ud_rx_release, NULL);
    /* A 100-byte datagram read into 10 bytes: the rest is discarded and the
     * next read has the next datagram whole, then the largest datagram the
     * protocol carries. */
    const size_t lens[3] = {100, 5, max_datagram};
    const size_t plan[3] = {10, UD_BIG, UD_BIG};
    for (int i = 0; i < 3; i++) {
        r->out_len[i] = lens[i];
        sk_fill_pattern(r->out[i], lens[i], (size_t)i);
        r->plan[i] = plan[i];
    }
    r->plan[3] = UD_BIG;
    rs_socket_endpoint tx_endpoint;
    struct sk_peer *rx = bound_udp(loop, domain, &r->rx_endpoint);
    struct sk_peer *tx = bound_udp(loop, domain, &tx_endpoint);
    r->rx = rx->socket;
    r->tx = tx->socket;
    rs_test_run_on_loop(loop, ud_rx_start, r);
    SK_WAIT(r, r->count == 3 || r->read_errors || r->write_errors, "three datagrams");
    SK_WAIT(r, r->writes_done == 3, "three write completions");
    sk_peer_free(tx);
    sk_peer_free(rx);

    assert_int_equal(r->read_errors, 0);
    assert_int_equal(r->write_errors, 0);
    assert_string_equal(rs_error_name(r->too_large), rs_error_name(RS_ERROR_MESSAGE_TOO_LARGE));
    assert_int_equal(r->count, 3);
    const size_t want[3] = {10, 5, max_datagram};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r->got[i], want[i]);
        assert_true(r->intact[i]);
        assert_string_equal(r->from[i].address, tx_endpoint.address);
        assert_int_equal(r->from[i].port, tx_endpoint.port);
    }
    rs_test_disown(r);
    ud_rx_release(r);
}

static void test_ud1_ipv4_truncation_limit_and_sender(void **state)
{
    ud_truncation_and_limits(*state, RS_SOCKET_IPV4, 65507);
}

static void test_ud1_ipv6_truncation_limit_and_sender(void **state)
{
    ud_truncation_and_limits(*state, RS_SOCKET_IPV6, 65527);
}

/* ---- UD1: bad input ---- */

#define UD_BAD_MAX 48

struct ud_bad {
    int n;
    int got[UD_BAD_MAX];
    int want[UD_BAD_MAX];
    const char *what[UD_BAD_MAX];
    rs_socket *v4;
    rs_socket *v6;
    rs_socket *connected;
    rs_socket_endpoint v4_endpoint;
    rs_socket_endpoint v6_endpoint;
    size_t queued_after;
    int drained;
};

static void ud_expect(struct ud_bad *b, int rc, int code, const char *what)
{
    if (b->n < UD_BAD_MAX) {
        b->got[b->n] = rc == -1 ? rs_last_error() : (rc == 0 ? 0 : -2);
        b->want[b->n] = code;
        b->what[b->n] = what;
        b->n++;
    }
}

#define UD_EXPECT(b, call, code) ud_expect((b), (call), (code), #call)

static void ud_bad_assert(const struct ud_bad *b)
{
    for (int i = 0; i < b->n; i++) {
        if (b->got[i] != b->want[i]) {
            fail_msg("%s: %s, expected %s", b->what[i], rs_error_name(b->got[i]),
                     rs_error_name(b->want[i]));
        }
    }
}

static char big[65536];

static void ud_bad_on_loop(void *arg)
{
    struct ud_bad *b = arg;
    char buf[16];
    size_t n = 0;
    rs_socket_endpoint from;
    rs_socket_endpoint to = b->v4_endpoint;
    rs_socket_on_write_completed_fn *cb = sk_never_written;

    UD_EXPECT(b, rs_socket_read_from(NULL, buf, sizeof buf, &n, &from), RS_ERROR_INVALID_ARGUMENT);
    UD_EXPECT(b, rs_socket_read_from(b->v4, NULL, sizeof buf, &n, &from),
              RS_ERROR_INVALID_ARGUMENT);
    UD_EXPECT(b, rs_socket_read_from(b->v4, buf, 0, &n, &from), RS_ERROR_INVALID_ARGUMENT);
    UD_EXPECT(b, rs_socket_read_from(b->v4, buf, sizeof buf, NULL, &from),
              RS_ERROR_INVALID_ARGUMENT);
    UD_EXPECT(b, rs_socket_read_from(b->v4, buf, sizeof buf, &n, NULL), RS_ERROR_INVALID_ARGUMENT);

    UD_EXPECT(b, rs_socket_write_to(NULL, &to, buf, 1, cb, NULL), RS_ERROR_INVALID_ARGUMENT);
    UD_EXPECT(b, rs_socket_write_to(b->v4, NULL, buf, 1, cb, NULL), RS_ERROR_INVALID_ARGUMENT);
    UD_EXPECT(b, rs_socket_write_to(b->v4, &to, NULL, 1, cb, NULL), RS_ERROR_INVALID_ARGUMENT);
    /* No empty datagram, as rs_socket_write refuses len 0. */
    UD_EXPECT(b, rs_socket_write_to(b->v4, &to, buf, 0, cb, NULL), RS_ERROR_INVALID_ARGUMENT);
    UD_EXPECT(b, rs_socket_write_to(b->v4, &to, buf, 1, NULL, NULL), RS_ERROR_INVALID_ARGUMENT);

    /* Another family, and ports out of range. */
    UD_EXPECT(b, rs_socket_write_to(b->v4, &b->v6_endpoint, buf, 1, cb, NULL),
              RS_ERROR_INVALID_ADDRESS);
    UD_EXPECT(b, rs_socket_write_to(b->v6, &b->v4_endpoint, buf, 1, cb, NULL),
              RS_ERROR_INVALID_ADDRESS);
    rs_socket_endpoint bad = to;
    snprintf(bad.address, sizeof bad.address, "%s", "localhost");
    UD_EXPECT(b, rs_socket_write_to(b->v4, &bad, buf, 1, cb, NULL), RS_ERROR_INVALID_ADDRESS);
    bad = to;
    bad.port = 0;
    UD_EXPECT(b, rs_socket_write_to(b->v4, &bad, buf, 1, cb, NULL), RS_ERROR_INVALID_PORT);
    bad.port = 65536;
    UD_EXPECT(b, rs_socket_write_to(b->v4, &bad, buf, 1, cb, NULL), RS_ERROR_INVALID_PORT);

    /* Over the protocol's limits: IPv4 (and an IPv4-mapped destination of
     * an IPv6 socket) 65507, IPv6 65527. */
    UD_EXPECT(b, rs_socket_write_to(b->v4, &to, big, 65508, cb, NULL), RS_ERROR_MESSAGE_TOO_LARGE);
    UD_EXPECT(b, rs_socket_write_to(b->v6, &b->v6_endpoint, big, 65528, cb, NULL),
              RS_ERROR_MESSAGE_TOO_LARGE);
    rs_socket_endpoint mapped = b->v6_endpoint;
    snprintf(mapped.address, sizeof mapped.address, "%s", "::ffff:127.0.0.1");
    UD_EXPECT(b, rs_socket_write_to(b->v6, &mapped, big, 65508, cb, NULL),
              RS_ERROR_MESSAGE_TOO_LARGE);

    /* A connected UDP socket: write_to is refused, whatever the address. */
    UD_EXPECT(b, rs_socket_write_to(b->connected, &to, buf, 1, cb, NULL), RS_ERROR_INVALID_STATE);

    /* Nothing was queued or read by the refused calls. */
    rs_socket_get_write_queue_size(b->v4, &b->queued_after);
    UD_EXPECT(b, rs_socket_read_from(b->v4, buf, sizeof buf, &n, &from), RS_ERROR_WOULD_BLOCK);

    /* Closed: no I/O. */
    rs_socket_close(b->v6);
    UD_EXPECT(b, rs_socket_read_from(b->v6, buf, sizeof buf, &n, &from), RS_ERROR_INVALID_STATE);
    UD_EXPECT(b, rs_socket_write_to(b->v6, &b->v6_endpoint, buf, 1, cb, NULL),
              RS_ERROR_INVALID_STATE);
}

static void test_ud1_bad_input(void **state)
{
    rs_event_loop *loop = *state;
    struct ud_bad b;
    memset(&b, 0, sizeof b);
    struct sk_peer *v4 = bound_udp(loop, RS_SOCKET_IPV4, &b.v4_endpoint);
    struct sk_peer *v6 = bound_udp(loop, RS_SOCKET_IPV6, &b.v6_endpoint);
    rs_socket_options udp = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    struct sk_peer *connected = sk_peer_new(loop, &udp);
    assert_int_equal(sk_peer_connect(connected, &b.v4_endpoint), 0);
    b.v4 = v4->socket;
    b.v6 = v6->socket;
    b.connected = connected->socket;

    /* Off the loop thread. */
    char buf[16];
    size_t n = 0;
    rs_socket_endpoint from;
    assert_fails_with(rs_socket_read_from(b.v4, buf, sizeof buf, &n, &from), RS_ERROR_WRONG_THREAD);
    assert_fails_with(rs_socket_write_to(b.v4, &b.v4_endpoint, buf, 1, sk_never_written, NULL),
                      RS_ERROR_WRONG_THREAD);

    /* Not UDP, or without a loop (not bound). */
    rs_socket_options tcp_options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    rs_socket *tcp = rs_socket_new(&tcp_options);
    assert_non_null(tcp);
    rs_socket *fresh = rs_socket_new(&udp);
    assert_non_null(fresh);
    assert_fails_with(rs_socket_read_from(tcp, buf, sizeof buf, &n, &from), RS_ERROR_INVALID_STATE);
    assert_fails_with(rs_socket_write_to(tcp, &b.v4_endpoint, buf, 1, sk_never_written, NULL),
                      RS_ERROR_INVALID_STATE);
    assert_fails_with(rs_socket_read_from(fresh, buf, sizeof buf, &n, &from),
                      RS_ERROR_INVALID_STATE);
    assert_fails_with(rs_socket_write_to(fresh, &b.v4_endpoint, buf, 1, sk_never_written, NULL),
                      RS_ERROR_INVALID_STATE);
    assert_int_equal(rs_socket_destroy(tcp), 0);
    assert_int_equal(rs_socket_destroy(fresh), 0);

    rs_test_run_on_loop(loop, ud_bad_on_loop, &b);
    sk_peer_free(connected);
    sk_peer_free(v6);
    sk_peer_free(v4);
    ud_bad_assert(&b);
    assert_int_equal(b.queued_after, 0);
}

/* ---- UD1: a connected socket's read_from, and a bound socket answering it ---- */

struct ud_pair {
    struct rs_test_counter counter;
    rs_socket *server;
    rs_socket *client;
    rs_socket_endpoint server_endpoint;
    rs_socket_endpoint client_endpoint;
    char got[2][16];
    rs_socket_endpoint from[2]; /* 0: at the server, 1: at the client */
    int count[2];
    long errors;
    long writes_done;
};

static bool ud_pair_release(void *obj)
{
    struct ud_pair *p = obj;
    rs_test_counter_clean_up(&p->counter);
    free(p);
    return true;
}

static void ud_pair_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)error_code;
    struct ud_pair *p = user_data;
    int side = socket == p->server ? 0 : 1;
    for (;;) {
        char buf[16];
        size_t n = 0;
        rs_socket_endpoint from;
        int rc = rs_socket_read_from(socket, buf, sizeof buf - 1, &n, &from);
        int err = rc ? rs_last_error() : 0;
        rs_test_counter_lock(&p->counter);
        if (rc == 0) {
            buf[n] = '\0';
            memcpy(p->got[side], buf, n + 1);
            p->from[side] = from;
            p->count[side]++;
        } else if (err != RS_ERROR_WOULD_BLOCK) {
            p->errors++;
        }
        rs_test_counter_unlock_add(&p->counter, 1);
        if (rc != 0) {
            return;
        }
    }
}

static void ud_pair_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    struct ud_pair *p = user_data;
    rs_test_counter_lock(&p->counter);
    p->writes_done++;
    if (error_code) {
        p->errors++;
    }
    rs_test_counter_unlock_add(&p->counter, 1);
}

static void ud_pair_start(void *arg)
{
    struct ud_pair *p = arg;
    static const char ping[] = "ping";
    static const char pong[] = "pong";
    int rc = rs_socket_subscribe_to_readable_events(p->server, ud_pair_readable, p);
    if (rc == 0) {
        rc = rs_socket_subscribe_to_readable_events(p->client, ud_pair_readable, p);
    }
    if (rc == 0) {
        rc = rs_socket_write_to(p->server, &p->client_endpoint, ping, 4, ud_pair_written, p);
    }
    if (rc == 0) {
        rc = rs_socket_write(p->client, pong, 4, ud_pair_written, p);
    }
    if (rc != 0) {
        rs_test_counter_lock(&p->counter);
        p->errors++;
        rs_test_counter_unlock(&p->counter);
    }
}

static void test_ud1_connected_peer_and_bound_socket(void **state)
{
    rs_event_loop *loop = *state;
    struct ud_pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    rs_test_counter_init(&p->counter);
    rs_test_own(p, ud_pair_release, NULL);
    struct sk_peer *server = bound_udp(loop, RS_SOCKET_IPV4, &p->server_endpoint);
    rs_socket_options udp = sk_options(RS_SOCKET_DGRAM, RS_SOCKET_IPV4);
    struct sk_peer *client = sk_peer_new(loop, &udp);
    assert_int_equal(sk_peer_connect(client, &p->server_endpoint), 0);
    assert_int_equal(rs_socket_get_bound_address(client->socket, &p->client_endpoint), 0);
    p->server = server->socket;
    p->client = client->socket;
    rs_test_run_on_loop(loop, ud_pair_start, p);
    SK_WAIT(p, (p->count[0] == 1 && p->count[1] == 1) || p->errors, "a datagram each way");
    SK_WAIT(p, p->writes_done == 2 || p->errors, "both write completions");
    sk_peer_free(client);
    sk_peer_free(server);

    assert_int_equal(p->errors, 0);
    /* The server read the connected client's datagram with its sender... */
    assert_string_equal(p->got[0], "pong");
    assert_string_equal(p->from[0].address, p->client_endpoint.address);
    assert_int_equal(p->from[0].port, p->client_endpoint.port);
    /* ...and the connected client read the server's with its peer. */
    assert_string_equal(p->got[1], "ping");
    assert_string_equal(p->from[1].address, p->server_endpoint.address);
    assert_int_equal(p->from[1].port, p->server_endpoint.port);
    rs_test_disown(p);
    ud_pair_release(p);
}

/* ---- UD1: a destination nobody listens at does not fail the server ---- */

static void ud_dead_send(void *arg)
{
    struct ud_pair *p = arg;
    static const char lost[] = "lost";
    /* p->client_endpoint is a port nobody holds any more: the datagram
     * draws an ICMP port unreachable. */
    int rc = rs_socket_subscribe_to_readable_events(p->server, ud_pair_readable, p);
    if (rc == 0) {
        rc = rs_socket_write_to(p->server, &p->client_endpoint, lost, 4, ud_pair_written, p);
    }
    if (rc != 0) {
        rs_test_counter_lock(&p->counter);
        p->errors++;
        rs_test_counter_unlock(&p->counter);
    }
}

static void ud_live_send(void *arg)
{
    struct ud_pair *p = arg;
    static const char pong[] = "pong";
    if (rs_socket_write_to(p->client, &p->server_endpoint, pong, 4, ud_pair_written, p) != 0) {
        rs_test_counter_lock(&p->counter);
        p->errors++;
        rs_test_counter_unlock(&p->counter);
    }
}

static void test_ud1_unreachable_destination_does_not_fail_server(void **state)
{
    rs_event_loop *loop = *state;
    struct ud_pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    rs_test_counter_init(&p->counter);
    rs_test_own(p, ud_pair_release, NULL);
    struct sk_peer *server = bound_udp(loop, RS_SOCKET_IPV4, &p->server_endpoint);
    /* A port that was just free: bound, read back, released. */
    struct sk_peer *gone = bound_udp(loop, RS_SOCKET_IPV4, &p->client_endpoint);
    sk_peer_free(gone);
    rs_socket_endpoint client_endpoint;
    struct sk_peer *client = bound_udp(loop, RS_SOCKET_IPV4, &client_endpoint);
    p->server = server->socket;
    p->client = client->socket;
    rs_test_run_on_loop(loop, ud_dead_send, p);
    SK_WAIT(p, p->writes_done == 1 || p->errors, "the write to nobody");
    /* Windows would fail the server's next receive with WSAECONNRESET for
     * the unreachable port if SIO_UDP_CONNRESET were on (it is off until a
     * connect); Linux reports nothing to an unconnected socket. */
    rs_test_run_on_loop(loop, ud_live_send, p);
    SK_WAIT(p, p->count[0] == 1 || p->errors, "the datagram after it");
    SK_WAIT(p, p->writes_done == 2 || p->errors, "both write completions");
    sk_peer_free(client);
    sk_peer_free(server);

    assert_int_equal(p->errors, 0);
    assert_string_equal(p->got[0], "pong");
    assert_string_equal(p->from[0].address, client_endpoint.address);
    assert_int_equal(p->from[0].port, client_endpoint.port);
    rs_test_disown(p);
    ud_pair_release(p);
}

#define UD_TEST(fn) cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        UD_TEST(test_ud1_ipv4_bound_socket_answers_ten_clients),
        UD_TEST(test_ud1_ipv6_bound_socket_answers_ten_clients),
        UD_TEST(test_ud1_ipv4_truncation_limit_and_sender),
        UD_TEST(test_ud1_ipv6_truncation_limit_and_sender),
        UD_TEST(test_ud1_connected_peer_and_bound_socket),
        UD_TEST(test_ud1_unreachable_destination_does_not_fail_server),
        UD_TEST(test_ud1_bad_input),
    };
    return RS_TEST_MAIN("udp", tests);
}
