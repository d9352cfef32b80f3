/*
 * The seam between common/ and a backend (backends/iocp, backends/libevent),
 * in both directions (docs/backend-contract.md):
 *
 * - down: the rs__backend_* functions every backend defines and common/
 *   calls;
 * - up: the few functions common/ offers a backend (the "offered by
 *   common/" sections below, and the utilities listed at the end).
 *
 * A backend uses no other function of common/ (scripts/check_seam.py,
 * the `seam` test, fails the build otherwise), writes no field of a
 * common/ record (it reads options, loop and impl, and reports everything
 * else through these calls) and calls no function of the public API (rs_*:
 * the utilities at the end are the internal forms of the few it needs). An
 * upcall never calls the backend again: the backend finishes its own work
 * (closing the OS socket of a failed connect, stopping after a listener
 * error) before it reports.
 *
 * The fields of common/'s records a backend writes, and no others (the
 * `seam` test reads these lines and looks for every other write in
 * backends/):
 * backend-writes: rs_socket.impl rs_event_loop.impl
 * backend-writes: rs_pipe_read_end.impl rs_pipe_write_end.impl rs_watch.impl
 * and, while it holds a write request (from rs__backend_*_write to its
 * rs__*_write_done), the request's link, count and first error:
 * backend-writes: rs__socket_write.next rs__socket_write.written
 * backend-writes: rs__socket_write.error
 * backend-writes: rs__pipe_write_req.backend_next rs__pipe_write_req.written
 * backend-writes: rs__pipe_write_req.backend_pending
 * backend-writes: rs__pipe_write_req.backend_error
 *
 * Threading: "loop thread" means the thread running the loop (or the thread
 * destroying it); "any thread" functions must be safe concurrently with the
 * loop thread.
 */
#ifndef RS_COMMON_BACKEND_H
#define RS_COMMON_BACKEND_H

#include "alloc.h"
#include "clock.h"
#include "compat.h"
#include "error.h"
#include "log.h"
#include "os_socket.h"
#include "pipe_impl.h"
#include "socket_impl.h"
#include "thread.h"
#include "watch_impl.h"

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
 * back through the rs__pipe_* calls offered below. Except for open,
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
 * common/socket.c validates every call (thread, arguments, state) before it
 * reaches these, keeps the state machine and delivers every user callback;
 * a backend does the OS work and reports completions through the rs__socket_*
 * calls offered below. "No loop" means the socket has no loop yet
 * and the (single) calling thread owns it.
 */
struct rs__socket_write;

/* What the room after a socket (rs__socket_impl_room) is aligned for:
 * pointers, 64-bit integers and doubles, which is all a backend's record
 * (and libevent's struct event) holds. Narrower than max_align_t (16 bytes
 * on x86-64), which would leave 8 bytes of padding after each socket. */
union rs__impl_align {
    void *pointer;
    void (*function)(void);
    int64_t integer;
    double real;
};
/* Bytes of the backend's per-socket state that common/ places after each
 * rs_socket, in the same allocation (rs__socket_impl_room), or 0 where the
 * backend allocates its own: one allocation per socket instead of two, a
 * server holding one per connection (docs/performance.md, "Memory per
 * connection"). The same value on every call. Any thread. */
size_t rs__backend_socket_impl_size(void);
/* Creates the OS socket for socket->options and stores the backend's state
 * in socket->impl. Any thread. Raises on failure, leaving nothing behind. */
int rs__backend_socket_init(rs_socket *socket);
/* Frees socket->impl (releases what it holds, where it lives in the
 * socket's own room); the OS socket is already closed. Any thread, the socket
 * has no I/O in progress. */
void rs__backend_socket_clean_up(rs_socket *socket);
/* Binds to local (validated) and stores the bound address, with the port the
 * OS chose, in socket->local. Any thread before the socket has a loop. */
int rs__backend_socket_bind(rs_socket *socket, const rs_socket_endpoint *local);
/* listen(2) with backlog. Any thread before the socket has a loop. */
int rs__backend_socket_listen(rs_socket *socket, int backlog);
/* Starts connecting to remote (validated) from the calling thread: applies
 * the options and raises only the errors the public header documents as
 * synchronous. For IPv4 and IPv6, socket->remote.ip already holds remote's
 * socket address (socket->remote_len bytes, from rs_socket_connect's one
 * parse of the text): the backend connects to it, and may replace it with
 * the peer's address (rs__socket_set_remote). The OS connect may start here or be deferred to
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
/* A readable callback was subscribed. A backend that finds data (or an end
 * or error) its readiness reports missed sets RS__SF_READABLE_PENDING, so
 * the subscription reports it. Loop thread. */
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
/* Reads the local address of a connected IPv4 or IPv6 socket whose local
 * address was left to be asked for (rs__socket_set_local_lazy, or an
 * accepted socket the backend gave no local address) into *out, *len bytes.
 * common/ calls it under the socket's lock (rs__socket_lock), from any
 * thread, while the OS socket is open, and stores the result. Raises the mapped OS error. */
int rs__backend_socket_resolve_local(const rs_socket *socket, struct rs__sockaddr_ip *out,
                                     size_t *len);
/* Applies options to the open OS socket (type and domain unchanged). */
int rs__backend_socket_set_options(rs_socket *socket, const rs_socket_options *options);
/* Reads TCP_NODELAY back from the OS. */
int rs__backend_socket_get_tcp_nodelay(const rs_socket *socket, bool *on);
/* The pending socket error (SO_ERROR) as an RS_ERROR_* code; 0 if none. */
int rs__backend_socket_get_error(rs_socket *socket);

/* ---- sockets: adopting an OS socket ---- */
/* Takes handle (not RS_OS_SOCKET_INVALID) for socket, whose options, state
 * (what kind names: connected, listening or bound) and loop common/ has
 * set. Checks, changing nothing, that handle is an open socket of the
 * options' type and domain in that state; then registers it with the loop,
 * as rs__backend_socket_attach does, and only then changes it (non-blocking
 * and the like); reports its addresses (rs__socket_set_local, and
 * rs__socket_set_remote when connected) and, for IPv6, whether it is dual
 * stack (IPV6_V6ONLY off) in *dual_stack. Loop thread. On failure raises
 * (the codes of rs_socket_adopt), leaves the handle open and as it was, and
 * socket->impl NULL. */
int rs__backend_socket_adopt(rs_socket *socket, rs_os_socket handle, rs_socket_adopt_kind kind,
                             bool *dual_stack);

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

/* ---- pipes: offered by common/ ---- */

/* The backend finished req (error 0, or its RS_ERROR_* code; req->written
 * says how much went out). Loop thread; may be called from inside
 * rs__backend_pipe_write: the callback still runs later, from a task. */
void rs__pipe_write_done(rs_pipe_write_end *write_end, struct rs__pipe_write_req *req, int error);
/* New data, or the write end went away: the backend saw a sign that the
 * readable state may have changed. Loop thread, never inside a call of the
 * user. */
void rs__pipe_read_end_on_event(rs_pipe_read_end *read_end);
/* After rs__backend_pipe_*_close: the backend holds nothing of the end any
 * more (every operation it had in flight completed). Loop thread; may be
 * called from inside the close. */
void rs__pipe_read_end_on_closed(rs_pipe_read_end *read_end);
void rs__pipe_write_end_on_closed(rs_pipe_write_end *write_end);

/* ---- sockets: offered by common/ ----
 * Loop thread unless said otherwise. A backend reads the state with
 * rs__socket_state (socket_impl.h, inline) and holds a socket across a
 * callback with rs__socket_acquire / rs__socket_release (inline; the last
 * release frees it, calling rs__backend_socket_clean_up). */

/* A socket the backend accepted on listener, for rs__socket_accepted: the
 * listener's options, CONNECTED, no loop, impl the backend's state. Its
 * local address is set when common/ knows it (a Unix socket's or pipe's
 * name, a listener bound to one IPv4 address), else left to the backend
 * (rs__socket_set_local, or rs__backend_socket_resolve_local when first
 * asked for); its remote one is the backend's to set (rs__socket_set_remote;
 * the listener's name for LOCAL). NULL with the error raised (impl is then
 * the backend's to free). */
rs_socket *rs__socket_new_accepted(const rs_socket *listener, void *impl);
/* The zeroed rs__backend_socket_impl_size() bytes after the socket: the
 * backend's state, freed with the socket. Only for a backend whose size is
 * not 0 (no size is asked again here: it is fixed for the process). */
void *rs__socket_impl_room(rs_socket *socket);
/* Frees a socket of rs__socket_new_accepted that was never delivered (the
 * backend's own discard: accepting stopped, the listener closed) and
 * returns its impl, which the backend then closes and frees itself (a
 * backend whose state lives in the socket's room, rs__socket_impl_room,
 * takes what it needs from it first: the room goes with the socket). */
void *rs__socket_discard_accepted(rs_socket *socket);
/* True while the listener accepts (started, not stopped, not closed, not
 * destroyed): the backend asks this before it hands a connection or an
 * error to rs__socket_accepted, and discards the connection otherwise. */
bool rs__socket_accepting(const rs_socket *listener);
/* Delivers one accept result to the listener's callback (while
 * rs__socket_accepting), by the rule of rs__accept_error_kind: a connection
 * error is not delivered, a shortage only the first time in a row, a
 * listener error ends accepting (the backend stops accepting before it
 * reports one). Takes new_socket. Returns true while the listener still
 * accepts afterwards (the callback may stop, close or destroy it; the
 * caller must hold a reference). */
bool rs__socket_accepted(rs_socket *listener, int error_code, rs_socket *new_socket);

/* What an accept error means for the listener (the rule both backends follow,
 * docs/sockets.md "Accept errors"). */
enum rs__accept_error_kind {
    /* The pending connection is gone (the client reset or gave up before it
     * was accepted): skipped without a report, accepting goes on at once. */
    RS__ACCEPT_ERROR_CONNECTION,
    /* Out of handles or memory: reported once per shortage, accepting goes
     * on after a back-off (rs__socket_accept_back_off). */
    RS__ACCEPT_ERROR_SHORTAGE,
    /* The listener itself failed: reported, accepting ends. */
    RS__ACCEPT_ERROR_LISTENER,
};
/* Any thread; raises nothing. */
enum rs__accept_error_kind rs__accept_error_kind(int error_code);
/* For a backend that met a shortage and stopped asking the OS for
 * connections: rs__backend_socket_start_accept is called again after a delay
 * that grows from RS__ACCEPT_RETRY_MIN_MS to RS__ACCEPT_RETRY_MAX_MS while
 * the shortage lasts, unless accepting stopped meanwhile. */
void rs__socket_accept_back_off(rs_socket *listener);
/* For a backend whose attempt to accept got its resources again (a
 * descriptor from accept(2), a socket for AcceptEx): the shortage is over,
 * the next one is reported again. */
void rs__socket_accept_shortage_over(rs_socket *listener);
#define RS__ACCEPT_RETRY_MIN_MS 10u
#define RS__ACCEPT_RETRY_MAX_MS 100u

/* The connect finished: error 0 (connected; the backend set the addresses
 * it knows) or a code, after the backend closed the OS socket itself (what
 * rs__backend_socket_close does; common/ does not call it for this). Ignored
 * once the connect is no longer pending (closed, timed out). May be called
 * from rs__backend_socket_attach. */
void rs__socket_connect_done(rs_socket *socket, int error_code);

/* The OS reported readability (new data, end of stream or an error). */
void rs__socket_readable(rs_socket *socket);

/* The backend finished with a write: error 0 (written in full) or a code.
 * Queues the completion for the loop's next iteration (a deferred
 * completion, not a task); never calls the user directly. Inline: every
 * write of request/response traffic ends here, from the backend's send. */
static inline void rs__socket_write_done(struct rs__socket_write *req, int error_code)
{
    req->error = error_code;
    rs__event_loop_defer(req->socket->loop, &req->done);
}
/* Counts n more bytes of req written and moves its buffer cursor past them. */
void rs__socket_write_advance(struct rs__socket_write *req, size_t n);

/* The socket's addresses, from the OS's form (len bytes of sa). Any thread
 * before the socket has a loop, then the loop thread. set_local marks the
 * local address known; set_local_path sets a Unix socket's or pipe's path
 * ("" for an unnamed end); set_local_lazy marks it known but left to
 * rs__backend_socket_resolve_local on first use (a connected IP socket);
 * set_remote stores the peer's (common/ decides when it is reported). */
void rs__socket_set_local(rs_socket *socket, const struct sockaddr *sa, size_t len);
void rs__socket_set_local_path(rs_socket *socket, const char *path);
void rs__socket_set_local_lazy(rs_socket *socket);
void rs__socket_set_remote(rs_socket *socket, const struct sockaddr *sa, size_t len);

/* Fault injection: true when a test asked the next option application to
 * fail; the backend calls it first thing where it applies options, as
 * RS__TEST_HOOK(rs__socket_take_option_fault()) (common/test_hooks.h: the
 * test build of the library only), and then raises RS_ERROR_SOCKET_OPTION.
 * Any thread. */
bool rs__socket_take_option_fault(void);

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
/* Offered by common/ (os_socket.c): the level and name of option for a
 * socket of the family ipv6 says. Any thread. */
void rs__os_socket_udp_option_name(bool ipv6, enum rs__udp_option option, int *level, int *name);

/* ---- readiness watches ----
 * common/watch.c validates arguments and threads, keeps one watch per
 * socket and delivers every callback; the backend registers the socket
 * with its poller and reports through rs__watch_report (offered below).
 * All of these run on the watch's loop thread. A backend reads the
 * watch's loop, socket and events, and owns impl.
 */
struct rs_watch;

/* Checks that watch->socket is an open socket (RS_ERROR_INVALID_ARGUMENT
 * when it is not an open handle, RS_ERROR_NOT_A_SOCKET when it is another
 * kind of handle) and prepares the backend's state in watch->impl, watching
 * nothing yet. Changes nothing on the socket. Raises on failure, leaving
 * nothing behind. */
int rs__backend_watch_init(struct rs_watch *watch);
/* Watches watch->events from now on (0: nothing); no report of an event no
 * longer watched follows. Raises on failure, the previous events staying
 * watched. */
int rs__backend_watch_update(struct rs_watch *watch);
/* Stops watching: no rs__watch_report for this watch after it returns. The
 * backend frees watch->impl once the OS holds nothing of it (IOCP: once the
 * cancelled poll's completion was dequeued, or at the loop's destroy), and
 * never touches watch again. */
void rs__backend_watch_stop(struct rs_watch *watch);

/* ---- readiness watches: offered by common/ ---- */

/* The poller saw `events` on the watch's socket (any of RS_WATCH_*; those
 * not watched are dropped), or the watch failed (error non-zero: reported
 * once, then nothing more). Loop thread, never inside a call of the user;
 * the callback may stop the watch (rs__backend_watch_stop, before this
 * returns) or change its events (rs__backend_watch_update). */
void rs__watch_report(struct rs_watch *watch, int error, unsigned events);

/* ---- utilities common/ offers every backend ----
 * Declared in their own headers too (the compiler checks that both agree);
 * declared again here so that this header is the whole list: the `seam`
 * test (scripts/check_seam.py) takes the functions declared in this file,
 * and no others, as what a backend may use of common/, and rejects every
 * function of the public API (rs_ with one underscore). */

/* Errors (error.h): what rs_raise, rs_last_error and rs_error_name do. */
int rs__raise(int code);
int rs__last_error(void);
const char *rs__error_name(int code);
/* Logging (log.h: the RS__LOG macro calls these). */
rs_log_level rs__log_level(void);
void rs__log(rs_log_level level, const char *fmt, ...) RS__PRINTF(2, 3);
/* Memory (alloc.h: through the allocator the application installed). */
void *rs__mem_acquire(size_t size);
void *rs__mem_calloc(size_t count, size_t size);
void rs__mem_release(void *ptr);
/* Time and threads (clock.h, thread.h). */
uint64_t rs__clock_now_ns(void);
void rs__mutex_lock(rs__mutex *m);
void rs__mutex_unlock(rs__mutex *m);
#ifndef _WIN32
bool rs__thread_sigpipe_blocked(void);
#endif
/* The last release of a socket (socket_impl.h: behind rs__socket_release). */
void rs__socket_free(rs_socket *socket);
/* Address conversion (address.h). */
int rs__sockaddr_from_endpoint(rs_socket_domain domain, const rs_socket_endpoint *ep,
                               struct sockaddr_storage *out, size_t *len);
void rs__endpoint_from_sockaddr(const struct sockaddr *sa, size_t len, rs_socket_endpoint *ep);
unsigned int rs__network_interface_index(const char *name);
/* The OS-socket work both backends share (os_socket.h; the UDP option names
 * are with the UDP options above). */
int rs__os_socket_set_int(rs_os_socket sock, int level, int name, int value, const char *what);
int rs__os_socket_set_v6only(rs_os_socket sock, const rs_socket_options *o);
void rs__os_socket_address(bool ipv6, const uint8_t address[16], struct sockaddr_storage *out);
/* Whether a value is an open socket, and one of the options' kind (what
 * rs_socket_adopt and rs_watch_new check, on every backend). */
int rs__os_socket_check_open(rs_os_socket sock);
int rs__os_socket_check_kind(rs_os_socket sock, const rs_socket_options *o);
#ifdef _WIN32
/* The socket options and datagram modes of both Windows backends. */
int rs__os_socket_apply_options(rs_os_socket sock, const rs_socket_options *o);
void rs__os_socket_udp_report_unreachable(rs_os_socket sock, bool on);
void rs__os_socket_udp_ignore_net_reset(rs_os_socket sock);
#endif

/* The backend's own tasks (what rs_task_init, rs_event_loop_schedule_now,
 * _schedule_at, _cancel_task and _is_on_thread do, with their threading
 * rules and errors: reseau/event_loop.h). The time base of
 * rs__event_loop_schedule_at is rs__clock_now_ns. A deferred completion
 * (rs__event_loop_defer, inline in event_loop_impl.h) runs on the loop's next
 * iteration without a task. */
void rs__task_init(rs_task *task, rs_task_fn *fn, void *arg, const char *name);
int rs__event_loop_schedule_now(rs_event_loop *loop, rs_task *task);
int rs__event_loop_schedule_at(rs_event_loop *loop, rs_task *task, uint64_t time_ns);
int rs__event_loop_cancel_task(rs_event_loop *loop, rs_task *task);
bool rs__event_loop_is_on_thread(const rs_event_loop *loop);
/* A fresh pipe name (what rs_pipe_unique_name does: reseau/pipe.h). */
int rs__pipe_unique_name(char *buffer, size_t len);

#endif
