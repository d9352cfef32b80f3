/** @file
 * reseau: sockets: TCP and UDP over IPv4 and IPv6, and LOCAL stream sockets
 * (a Unix domain socket on POSIX, a named pipe \\\\.\\pipe\\NAME on Windows).
 *
 * Who may connect to a LOCAL listener: on POSIX the socket file is made
 * mode 0600 at bind (the owner, and root); on Windows the pipe is created
 * with a DACL naming the creating process's user, LocalSystem and
 * Administrators only (not the default descriptor, which lets Everyone and
 * Anonymous read), and refuses remote clients.
 *
 * Life cycle: rs_socket_new -> (bind -> listen -> start_accept) or connect ->
 * I/O on the loop thread -> rs_socket_close (any thread) -> rs_socket_destroy.
 *
 * Threading: a socket belongs to one event loop once connect, start_accept or
 * assign_to_event_loop has named it. read, read_from, write, write_to,
 * subscribe_to_readable_events and shutdown must then be called on that
 * loop's thread (elsewhere:
 * RS_ERROR_WRONG_THREAD). Every callback runs on that loop's thread, never
 * inside the call that started the operation. close and destroy are safe
 * from any thread (see rs_socket_close).
 *
 * Options are applied to the OS socket when it binds, when it connects
 * (before the connect starts) and, for an accepted socket, right after the
 * accept (the listener's options, the interface binding being inherited);
 * rs_socket_set_options applies them at once. Keepalive and TCP_NODELAY
 * concern TCP only (IPv4/IPv6 streams): UDP and LOCAL sockets ignore them.
 *
 * Option failures: when the operating system refuses an option that was
 * requested (keepalive, TCP_NODELAY on/off, interface binding, address reuse),
 * the operation that applies it fails with RS_ERROR_SOCKET_OPTION: bind and
 * connect synchronously (the connect has not started: no callback, no state
 * change), an accepted connection is dropped. Nothing is silently
 * best-effort. Both backends apply the options the same way for TCP, UDP and
 * LOCAL.
 *
 * Loops: close (or destroy) every socket before destroying its loop:
 * rs_event_loop_destroy fails with RS_ERROR_INVALID_STATE, and leaves the
 * loop and its sockets as they were, while a listener, a connected socket
 * or an assigned socket on it is open. A closed socket may be destroyed
 * after its loop. The one exception is a connect still pending: destroying
 * the loop ends it with RS_ERROR_EVENT_LOOP_SHUTDOWN and leaves the socket
 * closed and without a loop.
 */
#ifndef RESEAU_SOCKET_H
#define RESEAU_SOCKET_H

#include <reseau/address.h>
#include <reseau/event_loop.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A socket (opaque). */
typedef struct rs_socket rs_socket;

/** Stream or datagram. */
typedef enum rs_socket_type {
    RS_SOCKET_STREAM = 0, /**< TCP, or a LOCAL stream */
    RS_SOCKET_DGRAM,      /**< UDP (not LOCAL) */
} rs_socket_type;

/** An on/off option that can also be left to the OS. */
typedef enum rs_socket_tristate {
    RS_SOCKET_OPTION_DEFAULT = 0, /**< leave the OS default alone */
    RS_SOCKET_OPTION_ON,          /**< set it on */
    RS_SOCKET_OPTION_OFF,         /**< set it off */
} rs_socket_tristate;

/** Address-reuse policy of a bound socket. */
typedef enum rs_socket_reuse {
    /** A restarted server rebinds its port despite connections in
     * TIME_WAIT, on every backend. POSIX TCP listeners: SO_REUSEADDR.
     * Windows: no option (a Windows bind is not held by TIME_WAIT, and
     * SO_EXCLUSIVEADDRUSE would hold it until the old connections are gone;
     * processes of other users cannot take the port, docs/windows.md). UDP:
     * no option on either. */
    RS_SOCKET_REUSE_DEFAULT = 0,
    /** Nothing set: the OS default. */
    RS_SOCKET_REUSE_NONE,
} rs_socket_reuse;

/** What a socket is and how it is set up (rs_socket_new, rs_socket_set_options).
 * Zero-initialise it: every field zero means its default. */
typedef struct rs_socket_options {
    rs_socket_type type;     /**< stream or datagram */
    rs_socket_domain domain; /**< IPv4, IPv6 or LOCAL */
    /** Connect timeout in ms; 0 means 3000. */
    uint32_t connect_timeout_ms;
    /** TCP keepalive; the three values are used when keepalive is true and a
     * value is non-zero (0: the OS default). */
    bool keepalive;
    /** IPv6 sockets only (others ignore it): false (the default) sets
     * IPV6_V6ONLY on, so a socket bound to "::" serves IPv6 alone; true sets
     * it off (dual stack): the socket also accepts and sends IPv4, which it
     * sees as IPv4-mapped addresses ("::ffff:127.0.0.1", also the remote
     * address reported for such a peer). Set explicitly on every IPv6 socket
     * when it is created, since the OS defaults differ (off on Linux, on on
     * Windows); fixed for the socket's life: rs_socket_set_options with
     * another value fails with RS_ERROR_INVALID_OPTIONS. It occupies what was
     * padding, so the other fields keep their offsets. */
    bool ipv6_dual_stack;
    uint16_t keep_alive_idle_s;     /**< idle seconds before the first probe */
    uint16_t keep_alive_interval_s; /**< seconds between probes */
    /** Unanswered probes before the connection drops, where the OS lets a
     * socket choose (Linux, macOS, Windows 10 1703 and later: TCP_KEEPCNT);
     * elsewhere (older Windows, Wine) the system's fixed count applies and a
     * warning is logged: idle time and interval are still applied exactly. */
    uint16_t keep_alive_probes;
    rs_socket_tristate tcp_nodelay; /**< TCP_NODELAY (TCP only) */
    rs_socket_reuse reuse;          /**< address reuse of bound sockets */
    /** Bind the socket to this interface ("" for none): SO_BINDTODEVICE on
     * Linux, IP_BOUND_IF on macOS, IP_UNICAST_IF / IPV6_UNICAST_IF on
     * Windows; RS_ERROR_PLATFORM_NOT_SUPPORTED elsewhere. */
    char network_interface_name[RS_NETWORK_INTERFACE_NAME_MAX];
} rs_socket_options;

/** Called once per connect: error_code 0 on success. */
typedef void(rs_socket_on_connection_result_fn)(rs_socket *socket, int error_code, void *user_data);
/**
 * Called once per accepted connection (error_code 0, new_socket owned by the
 * callee, not yet assigned to a loop), or with an error and new_socket NULL.
 * A connection that failed before it was accepted (its client reset or gave
 * up) is skipped without a call, and so is one the library cannot set up
 * once the OS accepted it (its own memory, an option refused: see "Option
 * failures"). RS_ERROR_TOO_MANY_HANDLES, RS_ERROR_NO_BUFFER_SPACE and
 * RS_ERROR_OUT_OF_MEMORY (the OS's accept failing so) report a shortage,
 * once per shortage: accepting goes on, retried every 10 to 100 ms until
 * handles are back. After any other error accepting stops.
 */
typedef void(rs_socket_on_accept_result_fn)(rs_socket *listener, int error_code,
                                            rs_socket *new_socket, void *user_data);
/** Called exactly once per write. socket is NULL if the socket was destroyed
 * before the completion was delivered. */
typedef void(rs_socket_on_write_completed_fn)(rs_socket *socket, int error_code,
                                              size_t bytes_written, void *user_data);
/** Readable: error_code is always 0. The end of the stream and errors on the
 * socket (RS_ERROR_SOCKET_CLOSED once the peer closed and all data was read,
 * RS_ERROR_CONNECTION_RESET) are what the next rs_socket_read returns. */
typedef void(rs_socket_on_readable_fn)(rs_socket *socket, int error_code, void *user_data);
/** Close or destroy finished (see rs_socket_set_close_callback). */
typedef void(rs_socket_on_shutdown_complete_fn)(void *user_data);

/* ---- life cycle ---- */

/**
 * Creates a socket. Any thread. Errors: RS_ERROR_LIBRARY_NOT_INITIALIZED,
 * RS_ERROR_INVALID_ARGUMENT (NULL), RS_ERROR_INVALID_OPTIONS (LOCAL + DGRAM,
 * unknown enum values, interface name not NUL-terminated or not an interface
 * of this host), RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED (IPv6 on a host without
 * IPv6), RS_ERROR_TOO_MANY_HANDLES, RS_ERROR_SOCKET_OPTION (IPv6: the OS
 * refused IPV6_V6ONLY).
 */
RS_API rs_socket *rs_socket_new(const rs_socket_options *options);

/**
 * Closes the socket if it is open and frees it. Any thread; safe inside the
 * socket's own callbacks. No callback of the socket starts after destroy
 * returns, except write completions still pending, which arrive later on the
 * loop thread with socket == NULL and RS_ERROR_SOCKET_CLOSED. A connect still
 * pending is cancelled without a callback. Errors: RS_ERROR_INVALID_ARGUMENT.
 */
RS_API int rs_socket_destroy(rs_socket *socket);

/**
 * Closes the socket. Any thread. On the loop thread (or before the socket has
 * a loop) it closes at once. From a foreign thread it hops to the loop thread
 * and waits until the loop has closed it; if the loop does not run (never
 * run, stopped, or stopping before it closed it) the close runs on the
 * calling thread, which acts as the loop's thread meanwhile (the close
 * callback runs there, and rs_event_loop_run waits until it is done): the
 * call returns whatever the loop's state. From another loop's thread it does
 * not wait (two loops waiting on each other would deadlock): it returns 0 and
 * the close completes asynchronously on the socket's loop (its next run or
 * its destroy), reported by the close callback. A connect still pending ends without a
 * callback; pending writes complete with RS_ERROR_SOCKET_CLOSED on the loop
 * thread after the close. No other callback of the socket starts once the
 * close is done. Closing a closed socket does nothing (and returns at once).
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_OUT_OF_MEMORY.
 */
RS_API int rs_socket_close(rs_socket *socket);

/** Called (on the loop thread, or on the closing thread for a socket without a
 * loop) once the socket is closed. Set before close. Any thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL socket). */
RS_API int rs_socket_set_close_callback(rs_socket *socket, rs_socket_on_shutdown_complete_fn *fn,
                                        void *user_data);
/** Called once destroy has released the socket (after every pending completion
 * was delivered). Any thread. Errors: RS_ERROR_INVALID_ARGUMENT (NULL socket). */
RS_API int rs_socket_set_destroy_callback(rs_socket *socket, rs_socket_on_shutdown_complete_fn *fn,
                                          void *user_data);

/* ---- adopting an OS socket ---- */

/** What an adopted OS socket is (rs_socket_adopt). */
typedef enum rs_socket_adopt_kind {
    /** A connected stream (TCP, or LOCAL on POSIX) or a connected UDP socket. */
    RS_SOCKET_ADOPT_CONNECTED = 1,
    /** A listening stream socket (TCP, or LOCAL on POSIX). */
    RS_SOCKET_ADOPT_LISTENING,
    /** A bound UDP socket that is not connected. */
    RS_SOCKET_ADOPT_BOUND,
} rs_socket_adopt_kind;

/**
 * Wraps an OS socket the application made (its own socket(), one inherited
 * from a parent or passed by systemd) into an rs_socket on loop, taking
 * ownership of it: from success on, reseau closes it (rs_socket_close,
 * rs_socket_destroy) and the application must not use the handle again.
 *
 * The handle is checked first, and nothing about it is changed until every
 * check passed: it must be an open socket (POSIX: fstat / SO_TYPE; Windows:
 * SO_PROTOCOL_INFO) of options->type and options->domain (the family from
 * getsockname), in the state kind names: connected (getpeername succeeds),
 * listening (SO_ACCEPTCONN) or bound and not connected (UDP). Then it is
 * registered with loop (Windows: associated with the loop's completion
 * port, the first change made) and made reseau's: non-blocking and
 * close-on-exec on POSIX; on Windows a UDP socket stops reporting ICMP port
 * unreachable on an unconnected socket, as rs_socket_new's do.
 *
 * options: type and domain say what the handle must be; for an IPv6 socket
 * ipv6_dual_stack is read from the handle (IPV6_V6ONLY) and reported by
 * rs_socket_get_options. The other fields are not applied to the handle,
 * which keeps the options the application gave it; they are applied as for
 * a socket of rs_socket_new: to connections accepted from an adopted
 * listener, at a connect of an adopted bound UDP socket, and at once by
 * rs_socket_set_options.
 *
 * The result has its loop and is used like a socket reseau made: a connected
 * one as after rs_socket_assign_to_event_loop (subscribe, read, write,
 * shutdown), a listener with rs_socket_start_accept on the same loop, a
 * bound UDP socket with rs_socket_read_from / rs_socket_write_to (or
 * rs_socket_connect). rs_socket_get_bound_address and, for a connected one,
 * rs_socket_get_remote_address report the handle's addresses.
 *
 * Windows: LOCAL sockets are named pipes there, which this call does not
 * take (RS_ERROR_PLATFORM_NOT_SUPPORTED). A handle has one completion port
 * for its life: one already associated with another port (another loop, or
 * the application's) fails with RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED and is
 * left as it was (docs/windows.md).
 *
 * Threading: any thread except another loop's (that loop's thread cannot
 * wait for this one's); from a foreign thread the registration runs on
 * loop's thread and the call waits for it (or runs it itself when the loop
 * does not run), as rs_socket_close does.
 *
 * Errors, each leaving the handle open and unchanged (the caller still owns
 * it): RS_ERROR_LIBRARY_NOT_INITIALIZED, RS_ERROR_INVALID_ARGUMENT (NULL
 * options or loop, kind not one of the enum, handle RS_OS_SOCKET_INVALID
 * (or negative), or a handle that is not open: closed, or never opened),
 * RS_ERROR_NOT_A_SOCKET (an open handle that is not a socket: a pipe, a
 * file, a terminal), RS_ERROR_INVALID_OPTIONS (options invalid as for
 * rs_socket_new; kind LISTENING with a DGRAM type or BOUND with a STREAM
 * type; the handle's type or family differs from options' type and domain,
 * including sockets reseau does not handle: raw, SOCK_SEQPACKET, other
 * families), RS_ERROR_NOT_CONNECTED (kind CONNECTED, the socket is not
 * connected: fresh, bound, listening or still connecting),
 * RS_ERROR_INVALID_STATE (kind LISTENING, the socket does not listen; kind
 * BOUND, it is not bound or is connected), RS_ERROR_PLATFORM_NOT_SUPPORTED
 * (LOCAL on Windows), RS_ERROR_WRONG_THREAD (called on another loop's
 * thread), RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED (Windows: the handle is
 * associated with another completion port), RS_ERROR_EVENT_LOOP_SHUTDOWN
 * (loop is being destroyed), RS_ERROR_OUT_OF_MEMORY.
 */
RS_API rs_socket *rs_socket_adopt(const rs_socket_options *options, rs_os_socket handle,
                                  rs_socket_adopt_kind kind, rs_event_loop *loop);

/* ---- addresses ---- */

/**
 * Binds to local. Before connect (to pick the source address) or listen.
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE (not a fresh
 * socket), RS_ERROR_INVALID_PORT, RS_ERROR_INVALID_ADDRESS (not a literal
 * of the domain, a zone naming no interface, a link-local IPv6 address
 * without its zone), RS_ERROR_FILE_INVALID_PATH (LOCAL address empty, not
 * NUL-terminated, too long, or on Windows not \\\\.\\pipe\\NAME),
 * RS_ERROR_ADDRESS_IN_USE, RS_ERROR_NO_PERMISSION (POSIX: a port below 1024
 * without the privilege to bind it; Windows has no privileged ports),
 * RS_ERROR_ADDRESS_NOT_AVAILABLE (an address of no interface of this host),
 * RS_ERROR_SOCKET_OPTION. Any thread before the socket has a loop.
 */
RS_API int rs_socket_bind(rs_socket *socket, const rs_socket_endpoint *local);

/** The bound (local) address, with the port the OS chose for port 0; for a
 * connected socket, the address the OS gave it. IPv6 text is
 * rs_format_ipv6_address's (a zone as its index, an IPv4 peer of a
 * dual-stack socket as "::ffff:a.b.c.d"). Any thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE (not bound yet). */
RS_API int rs_socket_get_bound_address(const rs_socket *socket, rs_socket_endpoint *out);
/** The peer's address of a connected or accepted socket (LOCAL: the path).
 * Any thread. Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_NOT_CONNECTED. */
RS_API int rs_socket_get_remote_address(const rs_socket *socket, rs_socket_endpoint *out);

/* ---- stream server ---- */

/** Any thread before the socket has a loop. Errors: RS_ERROR_INVALID_ARGUMENT
 * (backlog < 1), RS_ERROR_INVALID_STATE (not bound, or DGRAM: a UDP socket
 * cannot listen). */
RS_API int rs_socket_listen(rs_socket *socket, int backlog);

/**
 * Starts accepting on loop: on_accept runs on that loop for each connection,
 * never inside this call; connections that queued up while not accepting are
 * delivered too. Any thread (a foreign thread waits until the loop has
 * registered the listener, or registers it itself when the loop does not
 * run); restartable after stop_accept (on the same loop).
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE (not listening, or
 * already accepting), RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED (a different loop
 * than before), RS_ERROR_OUT_OF_MEMORY.
 */
RS_API int rs_socket_start_accept(rs_socket *socket, rs_event_loop *loop,
                                  rs_socket_on_accept_result_fn *on_accept, void *user_data);
/** Stops accepting; no accept callback starts after it returns. Any thread
 * (from a foreign thread it waits for the loop, or runs on the calling
 * thread when the loop does not run, as close does; from another loop's
 * thread it does not wait). Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE
 * (not accepting). */
RS_API int rs_socket_stop_accept(rs_socket *socket);

/* ---- client ---- */

/**
 * Connects to remote; on_result runs once on loop, never inside this call: 0,
 * RS_ERROR_CONNECTION_REFUSED, RS_ERROR_TIMEOUT (options.connect_timeout_ms),
 * RS_ERROR_EVENT_LOOP_SHUTDOWN (the loop was destroyed first), ... After an
 * error the socket is closed (rs_socket_is_open is false); destroy it. Any
 * thread while the socket has no loop; a socket that already has one (a bound
 * UDP socket assigned to a loop) connects on that loop's thread. Synchronous
 * errors (the socket is left as it was): RS_ERROR_INVALID_ARGUMENT,
 * RS_ERROR_INVALID_STATE (not fresh or bound), RS_ERROR_WRONG_THREAD (the
 * socket's loop is not the calling thread's),
 * RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED (a bound UDP socket on another loop),
 * RS_ERROR_INVALID_PORT, RS_ERROR_INVALID_ADDRESS (as for bind),
 * RS_ERROR_FILE_INVALID_PATH (LOCAL address empty, not NUL-terminated, too
 * long, or on Windows not \\\\.\\pipe\\NAME), RS_ERROR_CONNECTION_REFUSED (LOCAL:
 * nobody listens at the path, whether it is missing or names something that
 * is not a listening socket: the same on every backend),
 * RS_ERROR_NO_PERMISSION (LOCAL: the path may not be opened),
 * RS_ERROR_SOCKET_OPTION, RS_ERROR_OUT_OF_MEMORY. A UDP connect completes
 * (asynchronously) at once.
 */
RS_API int rs_socket_connect(rs_socket *socket, const rs_socket_endpoint *remote,
                             rs_event_loop *loop, rs_socket_on_connection_result_fn *on_result,
                             void *user_data);

/* ---- I/O (loop thread) ---- */

/** Gives an accepted socket (or a bound UDP socket) its loop. Any thread, once.
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED,
 * RS_ERROR_INVALID_STATE (neither accepted nor a bound UDP socket). */
RS_API int rs_socket_assign_to_event_loop(rs_socket *socket, rs_event_loop *loop);
/** The socket's loop, or NULL if it has none yet (or socket is NULL). Any thread. */
RS_API rs_event_loop *rs_socket_get_event_loop(const rs_socket *socket);

/**
 * Edge-triggered readability, once per socket: on_readable runs when data
 * arrives (or on the next iteration after subscribing, if data is already
 * there). After a read that drained the socket (RS_ERROR_WOULD_BLOCK, or a
 * stream read shorter than asked with no end of stream behind it) the next
 * call comes when new data arrives;
 * if the last read filled the buffer it comes again on the next loop
 * iteration; if the callback did not drain the socket it is not called again,
 * even when more data arrives, until a read drains it (docs/readable-events.md:
 * the rule both backends can keep exactly). UDP: a read that returned a datagram counts as filling
 * the buffer (another datagram may wait), so only RS_ERROR_WOULD_BLOCK drains. End of stream: a
 * read returns RS_ERROR_SOCKET_CLOSED once all data has been read. Errors:
 * RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE (no loop, not connected (a bound UDP socket may
 * subscribe), or already subscribed), RS_ERROR_WRONG_THREAD.
 */
RS_API int rs_socket_subscribe_to_readable_events(rs_socket *socket,
                                                  rs_socket_on_readable_fn *on_readable,
                                                  void *user_data);

/**
 * Reads up to len bytes without blocking. UDP: one datagram per call; a
 * datagram longer than len is truncated to len and the rest is discarded
 * (both backends). Errors: RS_ERROR_WOULD_BLOCK (nothing now),
 * RS_ERROR_SOCKET_CLOSED (end of stream), RS_ERROR_WRONG_THREAD,
 * RS_ERROR_INVALID_STATE (no loop, not connected, closed, or shut down for
 * reading), RS_ERROR_INVALID_ARGUMENT (NULL or len 0),
 * RS_ERROR_CONNECTION_RESET, ...
 */
RS_API int rs_socket_read(rs_socket *socket, void *buffer, size_t len, size_t *amount_read);

/**
 * Queues len bytes from data (not copied: data must stay valid until
 * on_complete runs). Writes complete in FIFO order; on_complete runs exactly
 * once, on the loop thread, never inside this call, with the bytes written or
 * an error (RS_ERROR_SOCKET_CLOSED for writes pending at close).
 * Errors: RS_ERROR_WRONG_THREAD, RS_ERROR_INVALID_STATE (no loop, not
 * connected, closed, or shut down for writing), RS_ERROR_INVALID_ARGUMENT
 * (NULL data or callback, len 0), RS_ERROR_MESSAGE_TOO_LARGE (UDP datagram over
 * 65507 bytes).
 */
RS_API int rs_socket_write(rs_socket *socket, const void *data, size_t len,
                           rs_socket_on_write_completed_fn *on_complete, void *user_data);

/** One buffer of a vectored write (rs_socket_write_vec). */
typedef struct rs_buf {
    const void *base; /**< the first byte; may be NULL when len is 0 */
    size_t len;       /**< bytes at base; 0 is allowed and skipped */
} rs_buf;

/** The most buffers one rs_socket_write_vec call takes. */
#define RS_SOCKET_WRITE_VEC_MAX 65536u
/** The most buffers of one UDP datagram written by rs_socket_write_vec: a
 * datagram is one system call, whose buffer count the OS bounds (IOV_MAX is
 * 1024 on Linux, macOS and the BSDs). */
#define RS_SOCKET_WRITE_VEC_DGRAM_MAX 1024u

/**
 * Queues the bytes of nbufs buffers, in array order, as one write: like
 * rs_socket_write of their concatenation, without copying it. on_complete
 * runs exactly once, on the loop thread, never inside this call, with the
 * total written (the sum of the lengths) or an error; writes (vectored or
 * not) complete in FIFO order and their bytes never interleave.
 *
 * Ownership: the array bufs is copied during the call (the caller may free
 * or reuse it at once); the bytes each buffer points to are not copied and
 * must stay valid and unchanged until on_complete runs.
 *
 * Streams (TCP, LOCAL): on the wire gathered sends (sendmsg, WSASend with
 * several buffers); more buffers than one call carries are sent in several
 * calls, in order. Windows LOCAL (named pipes): WriteFile has no gather, so
 * each buffer is its own overlapped write, issued together (a pipe completes
 * them in order) and reported as one completion; nothing is copied.
 * UDP: one datagram gathered from the buffers; the 65507-byte limit applies
 * to the total, and it takes at most RS_SOCKET_WRITE_VEC_DGRAM_MAX buffers.
 *
 * Threading: the socket's loop thread only, as rs_socket_write.
 * Errors (the call changes nothing on error): RS_ERROR_INVALID_ARGUMENT
 * (NULL socket, bufs or callback; nbufs 0 or over RS_SOCKET_WRITE_VEC_MAX;
 * a buffer with a NULL base and a non-zero len; a total of 0; a total that
 * overflows size_t; a UDP write of more than RS_SOCKET_WRITE_VEC_DGRAM_MAX
 * buffers), RS_ERROR_WRONG_THREAD, RS_ERROR_INVALID_STATE (no loop, not
 * connected, closed, or shut down for writing), RS_ERROR_MESSAGE_TOO_LARGE
 * (UDP total over 65507 bytes), RS_ERROR_OUT_OF_MEMORY.
 */
RS_API int rs_socket_write_vec(rs_socket *socket, const rs_buf *bufs, size_t nbufs,
                               rs_socket_on_write_completed_fn *on_complete, void *user_data);

/**
 * The write queue size: the bytes of the writes queued on socket whose
 * completion callback has not run yet (a write counts with its full length
 * until its on_complete starts, so inside a completion callback the value
 * already excludes that write). A writer that stops writing while this is
 * above a bound of its choosing, and resumes from a completion callback,
 * keeps its memory bounded against a peer that reads slowly or not at all.
 * Writes pending at a close or a write shutdown count until their
 * completions (RS_ERROR_SOCKET_CLOSED) have run. Loop thread (the value
 * changes there). Errors: RS_ERROR_INVALID_ARGUMENT (NULL socket or out),
 * RS_ERROR_INVALID_STATE (the socket has no loop yet),
 * RS_ERROR_WRONG_THREAD (not the socket's loop thread). On error *out is
 * left unchanged.
 */
RS_API int rs_socket_get_write_queue_size(const rs_socket *socket, size_t *out);

/* ---- unconnected datagrams (a bound UDP socket, loop thread) ---- */

/**
 * rs_socket_read for a UDP socket, also reporting the datagram's sender in
 * *from (its address as the library reports addresses: a dotted quad, or
 * IPv6 text with "::ffff:a.b.c.d" for an IPv4 sender of a dual-stack socket,
 * and its port). For a bound socket that is not connected, whose readable
 * events follow the same rule as rs_socket_read's (a datagram read may be
 * followed by another: only RS_ERROR_WOULD_BLOCK drains); a connected UDP
 * socket may use it too (from is then its peer). One datagram per call; a
 * datagram longer than len is truncated to len (the rest is discarded) and
 * *amount_read is len; an empty datagram reads as 0 bytes with its sender.
 * *from and *amount_read are written only on success. Loop thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL socket, buffer, amount_read or
 * from, or len 0), RS_ERROR_INVALID_STATE (not a UDP socket, no loop,
 * closed, or shut down for reading), RS_ERROR_WRONG_THREAD,
 * RS_ERROR_WOULD_BLOCK (no datagram now), RS_ERROR_CONNECTION_REFUSED (a
 * connected socket's earlier datagram drew an ICMP port unreachable; a
 * socket that is not connected never reports it, on any backend), ...
 */
RS_API int rs_socket_read_from(rs_socket *socket, void *buffer, size_t len, size_t *amount_read,
                               rs_socket_endpoint *from);

/**
 * Queues one datagram of len bytes from data to `to`, on a bound UDP socket
 * that is not connected (assigned to its loop with
 * rs_socket_assign_to_event_loop). data is not copied and must stay valid
 * until on_complete runs; `to` is read during the call only. Completions
 * follow rs_socket_write's rules: exactly once, on the loop thread, never
 * inside this call, in the order of the writes, with len or an error (a
 * destination the system cannot reach: RS_ERROR_NETWORK_UNREACHABLE,
 * RS_ERROR_HOST_UNREACHABLE, ...). No state changes on a synchronous error.
 * An empty datagram is refused as rs_socket_write refuses len 0.
 * A connected UDP socket refuses write_to (RS_ERROR_INVALID_STATE), whatever
 * the destination: the systems do not agree on where such a datagram goes
 * (docs/sockets.md).
 * Loop thread. Errors: RS_ERROR_INVALID_ARGUMENT (NULL socket, to, data or
 * callback, len 0), RS_ERROR_INVALID_STATE (not a UDP socket, no loop, not
 * bound, connected, or closed), RS_ERROR_WRONG_THREAD,
 * RS_ERROR_INVALID_ADDRESS (not a literal of the socket's domain: an IPv6
 * address on an IPv4 socket and the reverse; an IPv4 destination of a
 * dual-stack IPv6 socket is written "::ffff:a.b.c.d"),
 * RS_ERROR_INVALID_PORT (0 or over 65535), RS_ERROR_MESSAGE_TOO_LARGE (over
 * 65507 bytes to an IPv4 or IPv4-mapped destination, over 65527 bytes to an
 * IPv6 one), RS_ERROR_OUT_OF_MEMORY.
 */
RS_API int rs_socket_write_to(rs_socket *socket, const rs_socket_endpoint *to, const void *data,
                              size_t len, rs_socket_on_write_completed_fn *on_complete,
                              void *user_data);

/** Which half of a connection rs_socket_shutdown ends. */
typedef enum rs_socket_direction {
    RS_SOCKET_DIRECTION_READ = 1,  /**< no more reading */
    RS_SOCKET_DIRECTION_WRITE = 2, /**< no more writing: the peer reads end of stream */
    RS_SOCKET_DIRECTION_BOTH = 3,  /**< both */
} rs_socket_direction;

/** Ends one direction. Loop thread (any thread before the socket has a
 * loop). Writing: shutdown(2) of the sending side, the peer reads end of
 * stream; the writes still queued end with RS_ERROR_SOCKET_CLOSED: wait for
 * their completions first to send them. Reading: kept by reseau, the same on
 * every backend: later reads fail with RS_ERROR_INVALID_STATE, no readable
 * callback comes any more, and what the peer sends stays unread in the
 * system's buffer; the peer's writes complete (until its window fills) and
 * the connection is not reset (Windows' SD_RECEIVE would reset it, so it is
 * never called). Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_WRONG_THREAD,
 * RS_ERROR_NOT_CONNECTED, RS_ERROR_PLATFORM_NOT_SUPPORTED (writing or both on
 * a LOCAL socket on Windows: a named pipe has no half-close). */
RS_API int rs_socket_shutdown(rs_socket *socket, rs_socket_direction direction);

/* ---- read stop and immediate writes (loop thread) ---- */

/**
 * Stops the readable callback (libuv's uv_read_stop). On the loop thread:
 * no readable callback of the socket starts after this returns, also when
 * called from inside that callback. What arrives meanwhile stays unread
 * (in the system's buffer; on Windows a TCP receive already posted, and
 * the one receive a UDP or LOCAL socket always keeps posted, may take up
 * to its buffer's worth, which reseau holds: nothing is lost, and
 * rs_socket_read hands it out first, in order). Reading goes on working.
 * Subscribing again reports data that waits on the next loop iteration
 * (docs/readable-events.md, rule 1). Errors, each leaving the
 * subscription as it was: RS_ERROR_INVALID_ARGUMENT (NULL),
 * RS_ERROR_WRONG_THREAD (not the socket's loop thread),
 * RS_ERROR_INVALID_STATE (no loop, closed, or not subscribed: unsubscribing
 * twice).
 */
RS_API int rs_socket_unsubscribe_from_readable_events(rs_socket *socket);

/**
 * Writes what the system takes now, synchronously, without a completion
 * callback (libuv's uv_try_write): 0 with *written set to the bytes taken,
 * between 1 and len on a stream (the rest is the caller's to send later, for
 * example with rs_socket_write), len for a datagram (sent whole or not at
 * all). data is not kept. Only while no write is queued (no rs_socket_write
 * whose completion has not run yet), so that bytes never overtake earlier
 * writes; writes queued later follow these bytes in order.
 * Loop thread. Errors (*written unchanged, nothing sent):
 * RS_ERROR_WOULD_BLOCK (the system takes nothing now, or writes are queued),
 * RS_ERROR_INVALID_ARGUMENT (NULL socket, data or written, len 0),
 * RS_ERROR_WRONG_THREAD, RS_ERROR_INVALID_STATE (no loop, not connected,
 * closed, or shut down for writing), RS_ERROR_MESSAGE_TOO_LARGE (UDP datagram
 * over 65507 bytes), RS_ERROR_PLATFORM_NOT_SUPPORTED (a LOCAL socket on
 * Windows: a named pipe open for overlapped I/O has no non-blocking write;
 * use rs_socket_write), or the connection's error
 * (RS_ERROR_CONNECTION_RESET, RS_ERROR_SOCKET_CLOSED, ...).
 */
RS_API int rs_socket_try_write(rs_socket *socket, const void *data, size_t len, size_t *written);

/* ---- options and state ---- */
/* The UDP-only options (multicast membership, multicast TTL, loopback and
 * interface, broadcast, TTL) are in reseau/udp.h. */

/** Applies options (type, domain and ipv6_dual_stack must match). Loop
 * thread once assigned.
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_OPTIONS,
 * RS_ERROR_WRONG_THREAD, RS_ERROR_INVALID_STATE (closed),
 * RS_ERROR_SOCKET_OPTION. */
RS_API int rs_socket_set_options(rs_socket *socket, const rs_socket_options *options);
/** Any thread. Errors: RS_ERROR_INVALID_ARGUMENT. */
RS_API int rs_socket_get_options(const rs_socket *socket, rs_socket_options *out);
/** Whether TCP_NODELAY is on, read back from the OS (getsockopt). Any thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_STATE (closed, or not a
 * TCP socket). */
RS_API int rs_socket_get_tcp_nodelay(const rs_socket *socket, bool *on);

/** The socket's pending error (SO_ERROR), mapped; 0 if none;
 * RS_ERROR_SOCKET_CLOSED once closed; RS_ERROR_INVALID_ARGUMENT (also
 * raised) for NULL. */
RS_API int rs_socket_get_error(rs_socket *socket);
/** False once closed (or after a failed connect) and for NULL. Any thread. */
RS_API bool rs_socket_is_open(const rs_socket *socket);

#ifdef __cplusplus
}
#endif

#endif
