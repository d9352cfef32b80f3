/*
 * The bytes offered to one system call stay bounded (libevent): a write of
 * many MiB is offered to write(2) at most a pipe's capacity at a time, and
 * to sendmsg(2) at most 4 MiB at a time. The kernel takes no more than that
 * in one call anyway; offering the whole remainder made memcheck check it
 * all on every call, quadratic in the size, and the large pipe and socket
 * scenarios timed out under valgrind (docs/reliability.md). The LD_PRELOAD
 * probe tests/write_probe.c records the largest count offered.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_GETPIPE_SZ */
#endif

#include "pipe_harness.h"
#include "socket_fixture.h"

#include <stdlib.h>

#ifndef _WIN32
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>
#endif

enum { PIPE_LEN = 8u << 20, STREAM_LEN = 16u << 20, STREAM_CAP = 4u << 20 };

struct probe {
    void (*reset)(void);
    size_t (*max_pipe_write)(void);
    size_t (*max_stream_sendmsg)(void);
};

/* The probe, or a skip (before the test made anything) if it is not loaded. */
static struct probe require_probe(void)
{
    struct probe p = {0};
#ifndef _WIN32
    *(void **)&p.reset = dlsym(RTLD_DEFAULT, "rs_write_probe_reset");
    *(void **)&p.max_pipe_write = dlsym(RTLD_DEFAULT, "rs_write_probe_max_pipe_write");
    *(void **)&p.max_stream_sendmsg = dlsym(RTLD_DEFAULT, "rs_write_probe_max_stream_sendmsg");
#endif
    if (!p.reset || !p.max_pipe_write || !p.max_stream_sendmsg) {
        RS_TEST_SKIP("the write(2)/sendmsg(2) probe is an LD_PRELOAD module: libevent backend, "
                     "native builds without sanitizers only");
    }
    return p;
}

/* What a fresh pipe of this process holds. */
static size_t pipe_capacity(void)
{
    size_t capacity = 64 * 1024;
#if defined(F_GETPIPE_SZ)
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int size = fcntl(fds[1], F_GETPIPE_SZ);
    if (size > 0) {
        capacity = (size_t)size;
    }
    close(fds[0]);
    close(fds[1]);
#endif
    return capacity;
}

static void test_write_size_pipe_offers_at_most_its_capacity(void **state)
{
    struct probe probe = require_probe();
    struct pipe_fixture *f = *state;
    unsigned char *data = pt_make_data(PIPE_LEN, 20);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = PIPE_LEN;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    probe.reset();
    pt_write(t, data, PIPE_LEN, 1); /* one request of 8 MiB */
    pt_await(t, t->write_calls == 1 && t->received == PIPE_LEN, "8 MiB through the pipe");
    pt_assert_writes_succeeded(t);
    assert_false(t->mismatch);
    size_t offered = probe.max_pipe_write();
    assert_true(offered > 0);
    assert_true(offered <= pipe_capacity());
    pt_close_all(t);
    free(data);
}

static void test_write_size_stream_sendmsg_offers_at_most_4_mib(void **state)
{
    struct probe probe = require_probe();
    rs_event_loop *loop = *state;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    struct sk_server server;
    sk_server_start(&server, loop, &options, false, 4);
    struct sk_peer *client = sk_peer_new(loop, &options);
    assert_int_equal(sk_peer_connect(client, &server.endpoint), 0);
    sk_server_wait_accepted(&server, 1);
    unsigned char *data = malloc(STREAM_LEN);
    assert_non_null(data);
    sk_fill_pattern(data, STREAM_LEN, 21);
    probe.reset();
    sk_peer_write(client, data, STREAM_LEN); /* one request of 16 MiB */
    sk_peer_wait_bytes(server.accepted[0], STREAM_LEN);
    SK_WAIT(client, client->writes_done == 1, "the write's completion");
    assert_int_equal(client->write_errors, 0);
    assert_true(sk_check_pattern(server.accepted[0]->data, STREAM_LEN, 21));
    size_t offered = probe.max_stream_sendmsg();
    assert_true(offered > 0);
    assert_true(offered <= STREAM_CAP);
    sk_peer_free(client);
    sk_server_stop(&server);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_size_pipe_offers_at_most_its_capacity,
                                        pt_setup_two_loops, pt_teardown_loops),
        cmocka_unit_test_setup_teardown(test_write_size_stream_sendmsg_offers_at_most_4_mib,
                                        rs_test_setup_loop, rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("write_size", tests);
}
