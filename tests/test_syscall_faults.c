/*
 * System-call faults: accept out of handles, sends failing with EPIPE,
 * ECONNRESET or bursts of EAGAIN, and connects that start and then fail.
 * On libevent the LD_PRELOAD shim tests/faults/syscall_shim.c (meson
 * preloads it) makes the kernel calls fail; on IOCP the backend's own hook
 * does (tests/faults/fault_control.h hides which). Each test checks that the
 * documented RS_ERROR_* reaches the user, that the loop keeps serving an
 * unaffected connection, and (in the fixture's teardown) that nothing
 * leaked.
 */
#include "faults/fault_control.h"
#include "socket_fixture.h"

#include <string.h>

/* Skips the test (before it has made anything) if err cannot be injected
 * into call here. */
static void require(const char *call, const char *err)
{
    const char *reason = NULL;
    if (!fault_control_available(&reason) || !fault_control_supports(call, err, &reason)) {
        RS_TEST_SKIP(reason);
    }
}

/* An echo server and a bystander connection that must keep working
 * whatever happens to the connection under test. */
struct fault_env {
    rs_event_loop *loop;
    rs_socket_options options;
    struct sk_server server;
    struct sk_peer *bystander;
};

static void env_start(struct fault_env *env, rs_event_loop *loop)
{
    fault_control_disarm();
    env->loop = loop;
    env->options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    sk_server_start(&env->server, loop, &env->options, true, 64);
    env->bystander = sk_peer_new(loop, &env->options);
    assert_int_equal(sk_peer_connect(env->bystander, &env->server.endpoint), 0);
    sk_peer_subscribe(env->bystander);
    /* Accepted before any fault is armed, so no rule meets it. */
    sk_server_wait_accepted(&env->server, 1);
}

/* The bystander still gets its echo: the loop kept serving. */
static void env_check_bystander(struct fault_env *env)
{
    static const char ping[] = "still served";
    size_t before = env->bystander->len;
    sk_peer_write(env->bystander, ping, sizeof ping);
    sk_peer_wait_bytes(env->bystander, before + sizeof ping);
    assert_memory_equal(env->bystander->data + before, ping, sizeof ping);
}

static void env_stop(struct fault_env *env)
{
    fault_control_disarm();
    sk_peer_free(env->bystander);
    sk_server_stop(&env->server);
}

static uint32_t local_port(struct sk_peer *peer)
{
    rs_socket_endpoint ep;
    assert_int_equal(rs_socket_get_bound_address(peer->socket, &ep), 0);
    return ep.port;
}

/* ---- accept ---- */

static void accept_out_of_handles(rs_event_loop *loop, const char *err)
{
    require("accept", err);
    struct fault_env env;
    env_start(&env, loop);
    long injected = fault_control_injected();
    long accepted = env.server.accepted_count;
    fault_control_arm("accept", err, 1, env.server.endpoint.port);

    /* The listener reports RS_ERROR_TOO_MANY_HANDLES, keeps accepting and
     * takes the connection on its retry. */
    struct sk_peer *client = sk_peer_new(loop, &env.options);
    assert_int_equal(sk_peer_connect(client, &env.server.endpoint), 0);
    SK_WAIT(&env.server, env.server.accept_errors == 1, "the accept error");
    assert_string_equal(rs_error_name(env.server.last_accept_error),
                        rs_error_name(RS_ERROR_TOO_MANY_HANDLES));
    sk_server_wait_accepted(&env.server, accepted + 1);
    assert_int_equal(fault_control_injected() - injected, 1);
    assert_int_equal(env.server.accept_errors, 1);

    sk_peer_subscribe(client);
    static const char hello[] = "accepted after all";
    sk_peer_write(client, hello, sizeof hello);
    sk_peer_wait_bytes(client, sizeof hello);
    assert_memory_equal(client->data, hello, sizeof hello);
    env_check_bystander(&env);
    sk_peer_free(client);
    env_stop(&env);
}

static void test_fault_accept_emfile(void **state)
{
    accept_out_of_handles(*state, "EMFILE");
}

static void test_fault_accept_enfile(void **state)
{
    accept_out_of_handles(*state, "ENFILE");
}

/* ---- send ---- */

static void send_fails(rs_event_loop *loop, const char *err, int expected)
{
    require("sendmsg", err);
    struct fault_env env;
    env_start(&env, loop);
    struct sk_peer *client = sk_peer_new(loop, &env.options);
    assert_int_equal(sk_peer_connect(client, &env.server.endpoint), 0);
    long injected = fault_control_injected();
    fault_control_arm("sendmsg", err, 1, local_port(client));

    static const char lost[] = "never sent";
    sk_peer_write(client, lost, sizeof lost);
    SK_WAIT(client, client->writes_done == 1, "the failed write's completion");
    assert_int_equal(client->write_errors, 1);
    assert_string_equal(rs_error_name(client->last_write_error), rs_error_name(expected));
    assert_int_equal(fault_control_injected() - injected, 1);

    env_check_bystander(&env);
    sk_peer_free(client);
    env_stop(&env);
}

static void test_fault_send_epipe(void **state)
{
    send_fails(*state, "EPIPE", RS_ERROR_SOCKET_CLOSED);
}

static void test_fault_send_econnreset(void **state)
{
    send_fails(*state, "ECONNRESET", RS_ERROR_CONNECTION_RESET);
}

/* A burst of EAGAIN: the write waits for writability and then completes
 * in full. Under edge-triggered readiness a new edge must come after each
 * EAGAIN; a real EAGAIN means a full buffer, whose draining gives one, but
 * an injected one has an empty buffer behind it, so the server sends a
 * byte after each (an arriving segment reports writability too). */
static void test_fault_send_eagain_burst(void **state)
{
    rs_event_loop *loop = *state;
    require("sendmsg", "EAGAIN");
    struct fault_env env;
    env_start(&env, loop);
    struct sk_peer *client = sk_peer_new(loop, &env.options);
    assert_int_equal(sk_peer_connect(client, &env.server.endpoint), 0);
    sk_peer_subscribe(client);
    sk_server_wait_accepted(&env.server, 2);
    struct sk_peer *accepted = env.server.accepted[env.server.accepted_count - 1];
    const long burst = 5;
    long injected = fault_control_injected();
    fault_control_arm("sendmsg", "EAGAIN", burst, local_port(client));

    static unsigned char payload[256 * 1024];
    sk_fill_pattern(payload, sizeof payload, 7);
    sk_peer_write(client, payload, sizeof payload);
    static const char nudge = 'n';
    size_t nudges = 0;
    for (; nudges <= (size_t)burst; nudges++) {
        rs__mutex_lock(&client->lock);
        bool done = client->writes_done == 1;
        rs__mutex_unlock(&client->lock);
        if (done) {
            break;
        }
        sk_peer_write(accepted, &nudge, 1);
        sk_peer_wait_bytes(client, nudges + 1);
    }
    SK_WAIT(client, client->writes_done == 1, "the write's completion after the burst");
    assert_int_equal(client->write_errors, 0);
    assert_int_equal(client->bytes_written, sizeof payload);
    assert_int_equal(fault_control_injected() - injected, burst);

    /* The echo holds every byte, in order; the last nudge may race the
     * completion and arrive after the payload's echo. */
    sk_peer_wait_bytes(client, nudges + sizeof payload);
    bool intact = false;
    for (size_t before = 0; before <= nudges && !intact; before++) {
        intact = sk_check_pattern(client->data + before, sizeof payload, 7);
    }
    assert_true(intact);
    env_check_bystander(&env);
    sk_peer_free(client);
    env_stop(&env);
}

/* ---- connect ---- */

static void test_fault_connect_error_via_so_error(void **state)
{
    rs_event_loop *loop = *state;
    static const struct {
        const char *err;
        int expected;
    } cases[] = {
        {"ECONNREFUSED", RS_ERROR_CONNECTION_REFUSED},
        {"ETIMEDOUT", RS_ERROR_TIMEOUT},
        {"ENETUNREACH", RS_ERROR_NETWORK_UNREACHABLE},
        {"EHOSTUNREACH", RS_ERROR_HOST_UNREACHABLE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        require("connect", cases[i].err);
    }
    struct fault_env env;
    env_start(&env, loop);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long injected = fault_control_injected();
        fault_control_arm("connect", cases[i].err, 1, env.server.endpoint.port);
        struct sk_peer *client = sk_peer_new(loop, &env.options);
        int result = sk_peer_connect(client, &env.server.endpoint);
        assert_string_equal(rs_error_name(result), rs_error_name(cases[i].expected));
        assert_int_equal(client->connect_calls, 1);
        assert_false(rs_socket_is_open(client->socket));
        assert_int_equal(fault_control_injected() - injected, 1);
        sk_peer_free(client);
        env_check_bystander(&env);
    }
    env_stop(&env);
}

#define FAULT_TEST(fn)                                                                             \
    cmocka_unit_test_setup_teardown(fn, rs_test_setup_loop, rs_test_teardown_loop)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FAULT_TEST(test_fault_accept_emfile),     FAULT_TEST(test_fault_accept_enfile),
        FAULT_TEST(test_fault_send_epipe),        FAULT_TEST(test_fault_send_econnreset),
        FAULT_TEST(test_fault_send_eagain_burst), FAULT_TEST(test_fault_connect_error_via_so_error),
    };
    return RS_TEST_MAIN("syscall_faults", tests);
}
