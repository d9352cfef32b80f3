/*
 * Plumbing for the socket scenarios: peers that collect what they read,
 * count their callbacks and can echo, a listener that accepts into such
 * peers, and loopback endpoints. Every callback runs on a loop thread and
 * records under the lock of the peer's counter (struct rs_test_counter),
 * which counts the records; the test thread waits on the record with a
 * bound (SK_WAIT).
 *
 * Peers live on the heap and are owned by the running test (rs_test_own):
 * if the test fails or times out, the harness's teardown destroys their
 * sockets and frees them (HO10). A server lives in the test's frame, so its
 * listener calls back through a heap guard (struct sk_server_guard) that
 * the teardown, or a timed-out wait, cuts from the frame before it is gone.
 */
#ifndef RS_SOCKET_FIXTURE_H
#define RS_SOCKET_FIXTURE_H

#include "rs_test.h"

#include <stdbool.h>

struct sk_peer {
    rs_socket *socket;
    rs_event_loop *loop;
    struct rs_test_counter counter;

    long connect_calls;
    int connect_result;
    long close_calls;
    long destroy_calls;
    bool destroy_issued; /* by sk_peer_free */

    /* What the readable callback read (not for echoing peers). */
    unsigned char *data;
    size_t len;
    size_t cap;
    bool eof;
    int read_error;
    long readable_calls;

    long writes_issued;
    long writes_done;
    long write_errors;
    int last_write_error;
    size_t bytes_written;

    /* Echo: write back what is read, pausing reads while more than
     * SK_ECHO_HIGH bytes wait to be sent (back-pressure). */
    bool echo;
    size_t echo_pending;
    bool echo_paused;
};

#define SK_ECHO_HIGH (4u << 20)
#define SK_ECHO_LOW (1u << 20)
#define SK_MAX_ACCEPTED 1024

struct sk_server_guard;

struct sk_server {
    struct sk_server_guard *guard; /* the accept callback's user_data */
    rs_socket *listener;
    rs_socket_endpoint endpoint;
    rs_event_loop *loop;
    rs_socket_domain domain;
    bool echo;
    struct rs_test_counter counter;
    struct sk_peer *accepted[SK_MAX_ACCEPTED];
    long accepted_count;
    long accept_errors;
    int last_accept_error;
};

/* Waits, bounded, until expr (read under the counter's lock of obj, a peer
 * or a server) holds. */
#define SK_WAIT(obj, expr, what) rs_test_counter_await_until(&(obj)->counter, expr, what)

/* Reports a skip, with its reason, where this build has no LOCAL sockets
 * (the libevent backend on a Windows without AF_UNIX, e.g. Wine 8). */
void sk_require_local(void);

/* Options for type and domain, with a generous connect timeout. */
rs_socket_options sk_options(rs_socket_type type, rs_socket_domain domain);
/* A loopback endpoint to bind to: 127.0.0.1 / ::1 port 0, or a fresh LOCAL
 * path (a Unix socket path, or a pipe name on Windows). */
rs_socket_endpoint sk_loopback(rs_socket_domain domain);
/* Removes a LOCAL path left behind (no-op on Windows and for IP). */
void sk_remove_path(rs_socket_domain domain, const rs_socket_endpoint *ep);

/* A peer with a new socket of options (close and destroy callbacks counted),
 * owned by the running test until sk_peer_free. */
struct sk_peer *sk_peer_new(rs_event_loop *loop, const rs_socket_options *options);
/* A peer around an existing socket (close and destroy callbacks counted). */
struct sk_peer *sk_peer_wrap(rs_event_loop *loop, rs_socket *socket);
/* Starts connecting (asserts the call succeeded); the callback is counted. */
void sk_peer_connect_async(struct sk_peer *peer, const rs_socket_endpoint *remote);
/* Connects and waits for the connection callback; returns its code. */
int sk_peer_connect(struct sk_peer *peer, const rs_socket_endpoint *remote);
/* Subscribes to readable events on the loop thread (asserts success). */
void sk_peer_subscribe(struct sk_peer *peer);
/* Queues a write on the loop thread (asserts it was accepted). data must
 * stay valid until the completion. */
void sk_peer_write(struct sk_peer *peer, const void *data, size_t len);
/* As sk_peer_write, called on the loop thread itself. */
void sk_peer_write_on_loop(struct sk_peer *peer, const void *data, size_t len);
/* Waits until at least n bytes were read. */
void sk_peer_wait_bytes(struct sk_peer *peer, size_t n);
/* Destroys the socket (from the calling thread) and waits for its destroy
 * callback, then frees the peer. */
void sk_peer_free(struct sk_peer *peer);

/* Binds a listener of options on loopback port 0 (or a fresh path), listens
 * and accepts on loop into peers that subscribe at once (and echo if echo). */
void sk_server_start(struct sk_server *server, rs_event_loop *loop,
                     const rs_socket_options *options, bool echo, int backlog);
void sk_server_wait_accepted(struct sk_server *server, long count);
/* start_accept again, from the calling thread, after a stop_accept (or on a
 * listener the test set up itself, in a zeroed server). */
void sk_server_restart(struct sk_server *server);
/* Destroys the listener and every accepted peer. */
void sk_server_stop(struct sk_server *server);

/* Waits until a task scheduled ms from now on the loop has run: a bounded
 * way to let the loop's own timers pass. */
void sk_loop_wait_until(rs_event_loop *loop, uint64_t ms);
/* Waits until every task the loop had queued before this call has run. */
void sk_loop_round_trip(rs_event_loop *loop);

/* Fills buf with a pattern that depends on the offset seed + i. */
void sk_fill_pattern(unsigned char *buf, size_t len, size_t seed);
bool sk_check_pattern(const unsigned char *buf, size_t len, size_t seed);

/* Callbacks that fail the test if they run. */
void sk_never_connected(rs_socket *socket, int error_code, void *user_data);
void sk_never_written(rs_socket *socket, int error_code, size_t bytes, void *user_data);
void sk_never_readable(rs_socket *socket, int error_code, void *user_data);
void sk_never_accepted(rs_socket *listener, int error_code, rs_socket *new_socket, void *user_data);
/* Connects a client to server, sends a message each way and checks both
 * arrive intact; returns the client. */
struct sk_peer *sk_connect_and_exchange(struct sk_server *server, rs_event_loop *loop,
                                        const rs_socket_options *options);

/* A UDP IPv4 peer bound to 127.0.0.1 port 0. */
struct sk_peer *sk_bound_udp_peer(rs_event_loop *loop);

/* Raw clients: the operating system's own blocking sockets, outside
 * reseau, for what reseau's API does not do (a reset on close). Receives
 * time out after the test's bound. */
#ifdef _WIN32
typedef uintptr_t sk_raw_socket; /* SOCKET */
#else
typedef int sk_raw_socket;
#endif
/* A blocking TCP client connected to the IPv4 endpoint ep. */
sk_raw_socket sk_raw_connect(const rs_socket_endpoint *ep);
/* Closes with SO_LINGER 0: the connection ends with a reset, not a FIN. */
void sk_raw_reset(sk_raw_socket s);
void sk_raw_close(sk_raw_socket s);
void sk_raw_send_all(sk_raw_socket s, const void *data, size_t len);
void sk_raw_recv_all(sk_raw_socket s, void *buf, size_t len);

#endif
