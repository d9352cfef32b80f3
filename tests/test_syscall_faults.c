/*
 * System-call faults: accept out of handles, accept errors of one pending
 * connection, sends failing with EPIPE, ECONNRESET or bursts of EAGAIN,
 * connects that start and then fail, and the poller's wait failing.
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

/* Messages the library logged about its poller's wait failing and working
 * again (the logger is installed in main, before any loop runs). */
static rs__mutex log_lock = RS__MUTEX_INIT;
static long wait_failure_logs;
static long wait_recovery_logs;

static void count_logs(rs_log_level level, const char *message, void *user_data)
{
    (void)level;
    (void)user_data;
    rs__mutex_lock(&log_lock);
    if (strstr(message, "dispatch failed") ||
        strstr(message, "GetQueuedCompletionStatusEx failed")) {
        wait_failure_logs++;
    } else if (strstr(message, "works again")) {
        wait_recovery_logs++;
    }
    rs__mutex_unlock(&log_lock);
}

static long logs_read(const long *counter)
{
    rs__mutex_lock(&log_lock);
    long n = *counter;
    rs__mutex_unlock(&log_lock);
    return n;
}

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

/* A shortage of err on accept: reported once as expected, and accepting
 * goes on (rs_socket_on_accept_result_fn). */
static void accept_shortage(rs_event_loop *loop, const char *err, int expected)
{
    require("accept", err);
    struct fault_env env;
    env_start(&env, loop);
    long injected = fault_control_injected();
    long accepted = env.server.accepted_count;
    fault_control_arm("accept", err, 1, env.server.endpoint.port);

    /* The listener reports the shortage, keeps accepting and takes the
     * connection on its retry. */
    struct sk_peer *client = sk_peer_new(loop, &env.options);
    assert_int_equal(sk_peer_connect(client, &env.server.endpoint), 0);
    SK_WAIT(&env.server, env.server.accept_errors == 1, "the accept error");
    assert_string_equal(rs_error_name(env.server.last_accept_error), rs_error_name(expected));
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
    accept_shortage(*state, "EMFILE", RS_ERROR_TOO_MANY_HANDLES);
}

static void test_fault_accept_enfile(void **state)
{
    accept_shortage(*state, "ENFILE", RS_ERROR_TOO_MANY_HANDLES);
}

static void test_err_rs_socket_on_accept_no_buffer_space(void **state)
{
    accept_shortage(*state, "ENOBUFS", RS_ERROR_NO_BUFFER_SPACE);
}

static void test_err_rs_socket_on_accept_out_of_memory(void **state)
{
    accept_shortage(*state, "ENOMEM", RS_ERROR_OUT_OF_MEMORY);
}

/* HO2: out of descriptors (handles) for as long as the test says, with
 * clients waiting. The listener must neither spin (a level-triggered
 * listener reported again by every poll, or an AcceptEx re-posted at once,
 * would make thousands of attempts a second) nor tell the user more than
 * once, and must take every waiting client once handles are back. The
 * attempts are counted by the shim / hook, not timed. */
static void test_ho2_accept_shortage_backs_off(void **state)
{
    rs_event_loop *loop = *state;
    require("accept", "EMFILE");
    struct fault_env env;
    env_start(&env, loop);
    long accepted = env.server.accepted_count;
    long injected = fault_control_injected();
    uint64_t start = rs_event_loop_now(loop);
    fault_control_arm("accept", "EMFILE", 1000000000L, env.server.endpoint.port);

    /* More clients than the IOCP backend keeps AcceptEx calls posted (16,
     * each holding a socket made before the shortage): some must wait. */
    enum { CLIENTS = 24, POSTED_BEFORE = 16 };
    struct sk_peer *clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = sk_peer_new(loop, &env.options);
        sk_peer_connect_async(clients[i], &env.server.endpoint);
    }
    SK_WAIT(&env.server, env.server.accept_errors >= 1, "the shortage's report");
    assert_string_equal(rs_error_name(env.server.last_accept_error),
                        rs_error_name(RS_ERROR_TOO_MANY_HANDLES));
    sk_loop_wait_until(loop, 500);
    long attempts = fault_control_injected() - injected;
    uint64_t elapsed_ms = (rs_event_loop_now(loop) - start) / 1000000u;
    print_message("HO2: %ld failed accept attempts in %llu ms\n", attempts,
                  (unsigned long long)elapsed_ms);
    /* The back-off allows ten tries a second (the first ones closer); one
     * per connection taken by an accept posted before the shortage. */
    assert_true(attempts >= 1);
    assert_true(attempts <= POSTED_BEFORE + 10 + (long)(elapsed_ms / 10));
    rs_test_counter_lock(&env.server.counter);
    assert_int_equal(env.server.accept_errors, 1);
    rs_test_counter_unlock(&env.server.counter);

    /* Handles are back: every waiting client is accepted and served. */
    fault_control_disarm();
    sk_server_wait_accepted(&env.server, accepted + CLIENTS);
    for (int i = 0; i < CLIENTS; i++) {
        SK_WAIT(clients[i], clients[i]->connect_calls == 1, "the connection callback");
        assert_int_equal(clients[i]->connect_result, 0);
        sk_peer_subscribe(clients[i]);
        static const char hello[] = "served after the shortage";
        sk_peer_write(clients[i], hello, sizeof hello);
        sk_peer_wait_bytes(clients[i], sizeof hello);
        assert_memory_equal(clients[i]->data, hello, sizeof hello);
    }
    rs_test_counter_lock(&env.server.counter);
    assert_int_equal(env.server.accept_errors, 1);
    rs_test_counter_unlock(&env.server.counter);
    env_check_bystander(&env);
    for (int i = 0; i < CLIENTS; i++) {
        sk_peer_free(clients[i]);
    }
    env_stop(&env);
}

static void signal_destroyed(void *user_data)
{
    rs_test_latch_signal(user_data);
}

/* HO2: a listener destroyed while it waits to retry after a shortage is
 * released (its destroy callback runs) and leaks nothing. */
static void test_ho2_listener_destroyed_during_back_off(void **state)
{
    rs_event_loop *loop = *state;
    require("accept", "EMFILE");
    struct fault_env env;
    env_start(&env, loop);
    fault_control_arm("accept", "EMFILE", 1000000000L, env.server.endpoint.port);
    /* One more than the accepts IOCP keeps posted, so that the shortage
     * leaves it with none and a retry pending, as on libevent. */
    enum { CLIENTS = 17 };
    struct sk_peer *clients[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = sk_peer_new(loop, &env.options);
        sk_peer_connect_async(clients[i], &env.server.endpoint);
    }
    SK_WAIT(&env.server, env.server.accept_errors == 1, "the shortage's report");
    struct rs_test_latch destroyed;
    rs_test_latch_init(&destroyed, 1);
    assert_int_equal(
        rs_socket_set_destroy_callback(env.server.listener, signal_destroyed, &destroyed), 0);
    assert_int_equal(rs_socket_destroy(env.server.listener), 0);
    env.server.listener = NULL;
    rs_test_latch_await(&destroyed, "the listener's destroy callback");
    rs_test_latch_clean_up(&destroyed);
    fault_control_disarm();
    for (int i = 0; i < CLIENTS; i++) {
        sk_peer_free(clients[i]);
    }
    env_check_bystander(&env);
    env_stop(&env);
}

/* HO1 (W18): accept errors that concern one pending connection (its client
 * reset or gave up, a firewall refused it, a network error of the new
 * connection) skip that connection silently and accepting goes on; the
 * client behind them is accepted and served. */
static void test_ho1_accept_connection_errors_skipped(void **state)
{
    rs_event_loop *loop = *state;
    static const char *const errs[] = {"ECONNABORTED", "ECONNRESET", "ENOTCONN",     "EPROTO",
                                       "EPERM",        "ENETDOWN",   "EHOSTUNREACH", "ETIMEDOUT"};
    const char *reason = NULL;
    if (!fault_control_available(&reason)) {
        RS_TEST_SKIP(reason);
    }
    struct fault_env env;
    env_start(&env, loop);
    int tried = 0;
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        if (!fault_control_supports("accept", errs[i], &reason)) {
            print_message("HO1: %s not injected here: %s\n", errs[i], reason);
            continue;
        }
        tried++;
        long accepted = env.server.accepted_count;
        long injected = fault_control_injected();
        fault_control_arm("accept", errs[i], 3, env.server.endpoint.port);
        struct sk_peer *client = sk_peer_new(loop, &env.options);
        assert_int_equal(sk_peer_connect(client, &env.server.endpoint), 0);
        sk_server_wait_accepted(&env.server, accepted + 1);
        /* On IOCP the accept socket posted after the accept takes them:
         * the loop gets there after a few iterations of its own. */
        uint64_t deadline = rs_event_loop_now(loop) + RS_TEST_TIMEOUT_MS * 1000000ull;
        while (fault_control_injected() - injected < 3 && rs_event_loop_now(loop) < deadline) {
            sk_loop_round_trip(loop);
        }
        assert_int_equal(fault_control_injected() - injected, 3);
        rs_test_counter_lock(&env.server.counter);
        assert_int_equal(env.server.accept_errors, 0);
        rs_test_counter_unlock(&env.server.counter);
        sk_peer_subscribe(client);
        static const char hello[] = "accepted past the errors";
        sk_peer_write(client, hello, sizeof hello);
        sk_peer_wait_bytes(client, sizeof hello);
        assert_memory_equal(client->data, hello, sizeof hello);
        sk_peer_free(client);
        fault_control_disarm();
    }
    assert_true(tried >= 4);
    env_check_bystander(&env);
    env_stop(&env);
}

/* HO9: the poller's wait fails (epoll_wait on libevent,
 * GetQueuedCompletionStatusEx on IOCP) until the test stops it. The loop
 * must back off and log instead of retrying at once (counted by the shim /
 * hook: a spinning loop makes thousands of calls a second), keep running
 * its timers meanwhile, and serve its sockets again once the wait works. */
static void test_ho9_wait_failure_backs_off(void **state)
{
    rs_event_loop *loop = *state;
    require("wait", "EBADF");
    struct fault_env env;
    env_start(&env, loop);
    long failures_logged = logs_read(&wait_failure_logs);
    long recoveries_logged = logs_read(&wait_recovery_logs);
    long injected = fault_control_injected();
    uint64_t start = rs_event_loop_now(loop);
    fault_control_arm("wait", "EBADF", 1000000000L, 0);
    /* A timer of the loop fires while every wait fails. */
    sk_loop_wait_until(loop, 500);
    long waits = fault_control_injected() - injected;
    uint64_t elapsed_ms = (rs_event_loop_now(loop) - start) / 1000000u;
    fault_control_disarm();
    print_message("HO9: %ld failed waits in %llu ms\n", waits, (unsigned long long)elapsed_ms);
    assert_true(waits >= 2);
    /* Pauses of 10 ms and more: at most one wait per 10 ms, a few more for
     * the iterations that wake-ups and timers end early. */
    assert_true(waits <= 10 + (long)(elapsed_ms / 10));
    long logged = logs_read(&wait_failure_logs) - failures_logged;
    assert_true(logged >= 1);
    assert_true(logged <= 1 + waits / 100);

    /* Recovered: the connection is served, and the recovery logged. */
    env_check_bystander(&env);
    assert_int_equal(logs_read(&wait_recovery_logs) - recoveries_logged, 1);
    env_stop(&env);
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
        rs_test_counter_lock(&client->counter);
        bool done = client->writes_done == 1;
        rs_test_counter_unlock(&client->counter);
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
        FAULT_TEST(test_fault_accept_emfile),
        FAULT_TEST(test_fault_accept_enfile),
        FAULT_TEST(test_err_rs_socket_on_accept_no_buffer_space),
        FAULT_TEST(test_err_rs_socket_on_accept_out_of_memory),
        FAULT_TEST(test_fault_send_epipe),
        FAULT_TEST(test_fault_send_econnreset),
        FAULT_TEST(test_fault_send_eagain_burst),
        FAULT_TEST(test_fault_connect_error_via_so_error),
        FAULT_TEST(test_ho1_accept_connection_errors_skipped),
        FAULT_TEST(test_ho2_accept_shortage_backs_off),
        FAULT_TEST(test_ho2_listener_destroyed_during_back_off),
        FAULT_TEST(test_ho9_wait_failure_backs_off),
    };
    /* Before any loop runs, as rs_set_log requires. */
    rs_set_log(count_logs, RS_LOG_WARN, NULL);
    return RS_TEST_MAIN("syscall_faults", tests);
}
