/*
 * The backend contract: every function a backend (backends/iocp,
 * backends/libevent) defines, and nothing else. common/ calls these; a
 * backend calls back into common/ only through the internal headers of
 * common/. Each backend compiles exactly this list.
 *
 * Threading: "loop thread" means the thread running the loop (or the thread
 * destroying it); "any thread" functions must be safe concurrently with the
 * loop thread.
 */
#ifndef RS_COMMON_BACKEND_H
#define RS_COMMON_BACKEND_H

#include <reseau/event_loop.h>
#include <reseau/pipe.h>
#include <reseau/socket.h>

#include <stdbool.h>

#include <stddef.h>
#include <stdint.h>

/* ---- identity ---- */
rs_backend rs__backend_id(void);
const char *rs__backend_name(void);

/* ---- library ---- */

/* Called under the library lock on the 0 -> 1 init transition (Windows:
 * WSAStartup 2.2 + version check + extension functions). Raises and
 * returns -1 on failure, having undone its own work. */
int rs__backend_library_init(void);
/* Called under the library lock on the 1 -> 0 transition. */
void rs__backend_library_clean_up(void);

/* ---- event loop ---- */

/* Creates the loop's OS state (completion port / event_base and wake-up
 * channel) and stores it in loop->impl. Any thread. Raises on failure. */
int rs__backend_loop_init(rs_event_loop *loop);
/* Frees what rs__backend_loop_init created. The loop thread has exited. */
void rs__backend_loop_clean_up(rs_event_loop *loop);
/* Makes a blocked rs__backend_loop_wait return soon. Any thread. common/
 * coalesces: it calls this at most once per loop iteration. */
void rs__backend_loop_wake(rs_event_loop *loop);
/* Loop thread: waits for I/O readiness/completions or a wake-up for at most
 * timeout_ns (negative: no limit; 0: poll) and runs the I/O callbacks that
 * became ready. */
void rs__backend_loop_wait(rs_event_loop *loop, int64_t timeout_ns);

/* ---- pipes ----
 * common/pipe.c validates arguments, threads and states, keeps the readable
 * rules and delivers every callback; the backend moves bytes and reports
 * back through common/pipe_impl.h (rs__pipe_write_done,
 * rs__pipe_read_end_on_event, rs__pipe_*_end_on_closed). Except for open,
 * these run on the end's loop thread, and never after the end's close.
 */
struct rs__pipe_write_req;

/* Creates the OS pipe and stores the backend's state of each end in its
 * `impl`; the ends' other fields are set. Any thread. Raises and returns -1
 * on failure, having undone its own work. */
int rs__backend_pipe_open(rs_pipe_read_end *read_end, rs_pipe_write_end *write_end);
/* Starts reporting readable signs with rs__pipe_read_end_on_event (at the
 * first subscription; idempotent). Raises on failure. */
int rs__backend_pipe_watch_readable(rs_pipe_read_end *read_end);
/* What the read end holds now (enum rs__pipe_readable_state). */
int rs__backend_pipe_readable_state(rs_pipe_read_end *read_end);
/* Reads up to len (> 0) bytes: 0 with *amount_read > 0, or raises
 * RS_ERROR_WOULD_BLOCK, RS_ERROR_BROKEN_PIPE (end of stream) or the mapped
 * OS error. */
int rs__backend_pipe_read(rs_pipe_read_end *read_end, void *buffer, size_t len,
                          size_t *amount_read);
/* Queues req behind the requests already given, FIFO. Its outcome, success
 * or failure, is reported by rs__pipe_write_done, possibly before this
 * returns. */
void rs__backend_pipe_write(rs_pipe_write_end *write_end, struct rs__pipe_write_req *req);
/* Stops all I/O of the end and closes its OS handle; requests not finished
 * are reported done (their error does not matter: common/ reports
 * RS_ERROR_BROKEN_PIPE). Then, once the backend holds nothing of the end
 * (possibly inside this call), rs__pipe_*_end_on_closed. */
void rs__backend_pipe_read_end_close(rs_pipe_read_end *read_end);
void rs__backend_pipe_write_end_close(rs_pipe_write_end *write_end);

/* ---- sockets ----
 *
 * common/socket.c validates every call (arguments, state, thread) before it
 * reaches these, keeps the state machine and delivers every user callback;
 * a backend does the OS work and reports completions through the rs__socket_*
 * calls of common/socket_impl.h. "No loop" means the socket has no loop yet
 * and the (single) calling thread owns it.
 */
struct rs__socket_write;

/* Creates the OS socket for socket->options and stores the backend's state
 * in socket->impl. Any thread. Raises on failure, leaving nothing behind. */
int rs__backend_socket_init(rs_socket *socket);
/* Frees socket->impl; the OS socket is already closed. Any thread, the socket
 * has no I/O in progress. */
void rs__backend_socket_clean_up(rs_socket *socket);
/* Binds to local (validated) and stores the bound address, with the port the
 * OS chose, in socket->local. Any thread before the socket has a loop. */
int rs__backend_socket_bind(rs_socket *socket, const rs_socket_endpoint *local);
/* listen(2) with backlog. Any thread before the socket has a loop. */
int rs__backend_socket_listen(rs_socket *socket, int backlog);
/* Starts connecting to remote (validated) from the calling thread: applies
 * the options and raises only the errors the public header documents as
 * synchronous. The OS connect may start here or be deferred to
 * rs__backend_socket_attach (a completion port needs the association first);
 * either way it completes through rs__socket_connect_done, after attach. */
int rs__backend_socket_connect(rs_socket *socket, const rs_socket_endpoint *remote);
/* Registers the socket with socket->loop. Loop thread, once per socket. A
 * connect that is pending (or already failed, or a UDP connect) reports
 * through rs__socket_connect_done from here on. */
int rs__backend_socket_attach(rs_socket *socket);
/* Accepting was (re)started: deliver pending and future connections through
 * rs__socket_accepted, never inside this call. Loop thread, after attach. */
int rs__backend_socket_start_accept(rs_socket *socket);
/* Accepting stopped: no rs__socket_accepted after this. Loop thread. */
void rs__backend_socket_stop_accept(rs_socket *socket);
/* A readable callback was subscribed. Loop thread. */
int rs__backend_socket_subscribe(rs_socket *socket);
/* Non-blocking read; *amount_read set on success. Raises RS_ERROR_WOULD_BLOCK,
 * RS_ERROR_SOCKET_CLOSED (end of stream), ... Loop thread. */
int rs__backend_socket_read(rs_socket *socket, void *buffer, size_t len, size_t *amount_read);
/* Datagram sockets only: rs__backend_socket_read that also writes the
 * sender's address into *from (rs__endpoint_from_sockaddr's text). Loop
 * thread. */
int rs__backend_socket_read_from(rs_socket *socket, void *buffer, size_t len, size_t *amount_read,
                                 rs_socket_endpoint *from);
/* Takes req (validated) into the backend's FIFO. Every accepted req ends in
 * exactly one rs__socket_write_done. A datagram req with to_len > 0 goes to
 * req->to (rs_socket_write_to, on a bound socket that is not connected),
 * the others to the connected peer. Loop thread. */
int rs__backend_socket_write(rs_socket *socket, struct rs__socket_write *req);
/* shutdown(2) of the writing half (direction is always
 * RS_SOCKET_DIRECTION_WRITE: common/ shuts the reading half itself, see
 * rs_socket_shutdown). Loop thread (or no loop). */
int rs__backend_socket_shutdown(rs_socket *socket, rs_socket_direction direction);
/* Closes the OS socket: unregisters it, aborts a pending connect without a
 * report, and ends every queued write with rs__socket_write_done(
 * RS_ERROR_SOCKET_CLOSED). Loop thread (or no loop). Idempotent. */
void rs__backend_socket_close(rs_socket *socket);
/* Reads the local address of a connected socket whose backend left it to be
 * asked for (socket->local_lazy) into socket->local / local_raw. common/
 * calls it under socket->lock, from any thread, while the OS socket is
 * open. A backend that never sets local_lazy may only raise. */
int rs__backend_socket_resolve_local(rs_socket *socket);
/* Applies options to the open OS socket (type and domain unchanged). */
int rs__backend_socket_set_options(rs_socket *socket, const rs_socket_options *options);
/* Reads TCP_NODELAY back from the OS. */
int rs__backend_socket_get_tcp_nodelay(const rs_socket *socket, bool *on);
/* The pending socket error (SO_ERROR) as an RS_ERROR_* code; 0 if none. */
int rs__backend_socket_get_error(rs_socket *socket);

/* ---- sockets: read stop and immediate writes ---- */
/* The readable callback was unsubscribed: read nothing more ahead from the
 * OS for it (an operation already posted may finish; what it received is
 * held for the next read). Loop thread. */
void rs__backend_socket_unsubscribe(rs_socket *socket);
/* Sends what the OS takes now from data (len > 0; a datagram whole),
 * without blocking and without a completion: 0 with *written > 0, or raises
 * RS_ERROR_WOULD_BLOCK (nothing taken), RS_ERROR_PLATFORM_NOT_SUPPORTED or
 * the mapped OS error. common/ calls it only while no write is queued.
 * Loop thread. */
int rs__backend_socket_try_write(rs_socket *socket, const void *data, size_t len, size_t *written);

/* ---- UDP options (common/socket_udp_options.c validates: an open IPv4 or
 * IPv6 datagram socket, values in range, addresses of its family) ---- */

/* The integer options, each as the OS of the socket's family names it. */
enum rs__udp_option {
    RS__UDP_MULTICAST_TTL,  /* IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS */
    RS__UDP_MULTICAST_LOOP, /* IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP (0/1) */
    RS__UDP_BROADCAST,      /* SO_BROADCAST (0/1) */
    RS__UDP_TTL,            /* IP_TTL / IPV6_UNICAST_HOPS */
};

/* A multicast group membership, or (group unused) an outgoing interface. */
struct rs__udp_membership {
    uint8_t group[16];  /* IPv4: the first 4 bytes, network order */
    uint8_t source[16]; /* has_source: the unicast source (RFC 4607) */
    bool has_source;
    /* IPv4: the interface's address (0.0.0.0: the system's choice). */
    uint8_t interface_ipv4[4];
    /* IPv6: the interface's index (0: the system's choice). */
    uint32_t interface_index;
};

/* setsockopt / getsockopt of option. Raise the mapped OS error. */
int rs__backend_socket_set_udp_option(rs_socket *socket, enum rs__udp_option option, int value);
int rs__backend_socket_get_udp_option(const rs_socket *socket, enum rs__udp_option option,
                                      int *value);
/* Joins (join) or leaves membership's group (source-specific when
 * has_source): raises RS_ERROR_PLATFORM_NOT_SUPPORTED when the system has
 * no source-specific membership, else the mapped OS error. */
int rs__backend_socket_set_membership(rs_socket *socket,
                                      const struct rs__udp_membership *membership, bool join);
/* Sets the outgoing multicast interface of membership (group unused). */
int rs__backend_socket_set_multicast_interface(rs_socket *socket,
                                               const struct rs__udp_membership *membership);

#endif
