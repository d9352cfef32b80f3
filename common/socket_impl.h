/*
 * The socket object shared by common/socket.c and the backends: the
 * backend-neutral fields, the state machine and the calls a backend makes
 * back into common/ when I/O completes.
 *
 * Life time: a socket is reference counted. The user's reference is dropped
 * by rs_socket_destroy; every queued write, every scheduled internal task and
 * every I/O callback in progress holds one more. The memory (and the
 * backend's impl) is released when the last reference goes, so a write
 * completion that outlives rs_socket_destroy still finds its socket and
 * reports NULL to the user instead of touching freed memory.
 */
#ifndef RS_COMMON_SOCKET_IMPL_H
#define RS_COMMON_SOCKET_IMPL_H

#include "address.h"
#include "atomics.h"
#include "event_loop_impl.h"
#include "thread.h"

#include <reseau/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The life cycle (docs/sockets.md, "Life cycle"): one of these states, in
 * the low bits of rs_socket.state, changed only by rs__socket_set_state,
 * which checks each transition against the table in socket.c (debug
 * builds). A socket from rs__socket_new_accepted starts CONNECTED.
 */
enum rs__socket_state {
    RS__SOCKET_INIT = 1,   /* created, nothing done yet */
    RS__SOCKET_BOUND,      /* bind succeeded */
    RS__SOCKET_LISTENING,  /* listen succeeded (RS__SOCKET_ACCEPTING may be set) */
    RS__SOCKET_CONNECTING, /* connect started, its callback still owed */
    RS__SOCKET_CONNECTED,  /* connected, or accepted (the SHUT flags may be set) */
    RS__SOCKET_CLOSED,     /* the OS handle is gone (close, or a connect that failed) */
};
#define RS__SOCKET_STATE_MASK 0x0fL
/* Flags beside the state in rs_socket.state, read and written atomically
 * because rs_socket_start_accept / stop_accept flip ACCEPTING from any
 * thread. Entering a state clears them. */
#define RS__SOCKET_ACCEPTING 0x10L  /* LISTENING: accepting was started */
#define RS__SOCKET_READ_SHUT 0x20L  /* CONNECTED: the reading half is shut down */
#define RS__SOCKET_WRITE_SHUT 0x40L /* CONNECTED: the writing half is shut down */

/* rs_socket.flags: loop-thread booleans (before the socket has a loop, the
 * one thread that owns it). */
enum {
    RS__SF_ATTACHED = 1u << 0,         /* registered with the loop by the backend */
    RS__SF_CLOSE_NOTIFIED = 1u << 1,   /* on_close has run */
    RS__SF_LOAD_COUNTED = 1u << 2,     /* counted in loop->load */
    RS__SF_TIMEOUT_ARMED = 1u << 3,    /* timeout_task is ours to cancel */
    RS__SF_CONNECT_PENDING = 1u << 4,  /* the connect callback is still owed */
    RS__SF_READABLE_PENDING = 1u << 5, /* data (or EOF) may be waiting: no read drained it */
    RS__SF_REDELIVER = 1u << 6,        /* readable_task should call on_readable */
    RS__SF_IN_READABLE = 1u << 7,      /* on_readable is running (deliver_readable) */
    /* Accepting ran short of handles or memory and the user was told; not
     * again until a connection was accepted. */
    RS__SF_ACCEPT_SHORTAGE = 1u << 8,
    /* The peer's end of stream has arrived, or may have where the backend
     * cannot tell: a stream read shorter than asked no longer drains, the
     * read that returns the end does (docs/readable-events.md, rule 2). Set
     * by a readiness backend whose sign of the end may already be spent. */
    RS__SF_END_MAY_WAIT = 1u << 9,
    /* READABLE_PENDING was cleared by a short stream read, not proved by a
     * refused one: a readiness backend may look again when a subscription
     * starts (docs/readable-events.md, "A short read with the end behind it"). */
    RS__SF_DRAIN_UNPROVEN = 1u << 10,
};

/* One queued write. Owned by the backend from rs__backend_socket_write until
 * it calls rs__socket_write_done; then by common/ until the completion ran. */
struct rs__socket_write {
    /* Delivers the completion on the next loop iteration: first, so that
     * the completion function finds its request by a cast. */
    struct rs__deferred done;
    struct rs__socket_write *next;
    rs_socket *socket;
    const unsigned char *data;
    size_t len; /* the total of every buffer */
    size_t written;
    /* A vectored write (rs_socket_write_vec): bufs (owned by the request,
     * copied from the caller's array, zero-length buffers left out) holds
     * nbufs >= 2 buffers and data is unused. NULL for a single buffer. */
    rs_buf *bufs;
    size_t nbufs;
    /* The buffer and offset in it where byte `written` is: where a stream
     * backend that sends in several calls resumes (rs__socket_write_advance). */
    size_t buf_index;
    size_t buf_off;
    int error;
    rs_socket_on_write_completed_fn *on_complete;
    void *user_data;
    /* rs_socket_write_to: the destination as a socket address (to_len bytes
     * of `to`, converted by rs__sockaddr_ip_from_endpoint); to_len 0 for a
     * write to the connected peer. Kept in the request because a backend
     * sends it later than the call (a full send buffer, a held send). */
    uint8_t to_len;
    struct rs__sockaddr_ip to;
};

/*
 * A socket's local or remote address, kept as the OS gave it (or as the
 * endpoint converted): its text is written only when someone asks for it
 * (rs_socket_get_bound_address / rs_socket_get_remote_address), which most
 * connections never do. IPv4 and IPv6 sockets keep the socket address
 * itself; LOCAL sockets a copy of the path on the heap (NULL: the empty
 * name of an unnamed end).
 */
union rs__socket_addr {
    struct rs__sockaddr_ip ip; /* rs_socket.local_len / remote_len bytes */
    char *path;
};

/* What only a connecting socket needs, allocated by rs_socket_connect. */
struct rs__socket_client {
    rs_task connect_task; /* starts a connect on the loop */
    rs_task timeout_task; /* the connect timeout */
    rs_socket_on_connection_result_fn *on_connect;
    void *user_data;
};

/* What only a listener needs, allocated by its first rs_socket_start_accept
 * (or rs_socket_adopt). */
struct rs__socket_listener {
    /* Re-arms accepting after a shortage (rs__socket_accept_back_off). */
    rs_task accept_retry_task;
    rs_socket_on_accept_result_fn *on_accept;
    void *user_data;
    uint8_t backoff_steps; /* retries since the shortage began */
};

/*
 * The record of every socket, kept small because a server holds one per
 * connection (docs/performance.md, "Memory per connection"): what a
 * connected or accepted socket does not use lives elsewhere (the connect
 * and listener state behind `role`, a LOCAL socket's paths on the heap),
 * and the rare cross-thread sections lock one of a fixed set of mutexes
 * chosen by the socket's address (rs__socket_lock) instead of a mutex of
 * its own.
 */
struct rs_socket {
    rs_socket_options options;
    /* Loop-thread data, here where it fills padding. */
    uint8_t spare_count; /* length of spare_writes (at most RS__SPARE_WRITES_MAX) */
    bool handle_counted; /* counted in loop->handles (under the lock, any thread) */
    uint16_t flags;      /* RS__SF_* */
    void *impl;          /* the backend's state */
    rs_event_loop *loop;
    volatile long state; /* enum rs__socket_state | RS__SOCKET_ACCEPTING / _SHUT flags */
    volatile long refs;
    volatile long destroyed;
    volatile long close_done; /* close finished: later closes return at once */

    /* NULL, or a struct rs__socket_client (a socket that connected) or a
     * struct rs__socket_listener (a listener): a socket is never both. */
    void *role;

    rs_socket_on_readable_fn *on_readable;
    void *readable_user_data;
    rs_socket_on_shutdown_complete_fn *on_close;
    void *close_user_data;
    rs_socket_on_shutdown_complete_fn *on_destroy;
    void *destroy_user_data;

    /* Calls on_readable again on the next iteration (docs/readable-events.md,
     * rule 3): allocated by the first redelivery, so that a connection that
     * never fills its read buffer (every idle one) does not carry a task. */
    rs_task *readable_task;
    /* Completed write requests kept for the next writes (loop thread):
     * a steady stream of writes then allocates nothing. */
    void *spare_writes; /* rs__spares_* (alloc.h) */
    /* Bytes of the writes whose completion has not run yet
     * (rs_socket_get_write_queue_size). */
    size_t write_queue_size;

    union rs__socket_addr local;
    union rs__socket_addr remote;
    uint8_t local_len;  /* IPv4 / IPv6: bytes of local.ip */
    uint8_t remote_len; /* IPv4 / IPv6: bytes of remote.ip */
    /* The backend has not read the local address from the OS yet: the
     * first rs_socket_get_bound_address does, or the close, unless the
     * socket is being destroyed (then nobody can ask). Read atomically
     * (any thread), changed under the lock. Saves a getsockname(2) per
     * connection that nobody asks about. */
    bool local_lazy;
    /* Read by the address getters from any thread, so not in `flags`,
     * which the loop thread changes on every read. */
    bool local_known;  /* `local` holds the bound address (or local_lazy) */
    bool remote_known; /* `remote` holds the peer's address */
};

/* The socket's lock: `loop` is written under it (with atomic stores, so
 * that rs__socket_loop reads it without the lock), and the handle count,
 * the lazy local address and the close and destroy callbacks change under
 * it. One of a fixed set shared by all sockets (socket.c): held for a few
 * instructions, never while another socket's is. */
rs__mutex *rs__socket_lock(const rs_socket *socket);

/* The role records (NULL before rs_socket_connect / rs_socket_start_accept). */
static inline struct rs__socket_client *rs__socket_client(const rs_socket *socket)
{
    return (struct rs__socket_client *)socket->role;
}
static inline struct rs__socket_listener *rs__socket_listener(const rs_socket *socket)
{
    return (struct rs__socket_listener *)socket->role;
}

/* ---- references (inline: several per I/O callback) ---- */
static inline void rs__socket_acquire(rs_socket *socket)
{
    rs__atomic_add(&socket->refs, 1);
}
/* Frees the socket (and calls on_destroy): its last reference is gone. */
void rs__socket_free(rs_socket *socket);
/* Drops one reference; the last frees the socket. */
static inline void rs__socket_release(rs_socket *socket)
{
    if (rs__atomic_add(&socket->refs, -1) == 0) {
        rs__socket_free(socket);
    }
}

/* ---- shared by socket.c and socket_io.c ---- */
/* The socket's loop (read under its lock: any thread). */
rs_event_loop *rs__socket_loop(const rs_socket *socket);
static inline bool rs__socket_is_destroyed(const rs_socket *socket)
{
    return rs__atomic_load(&socket->destroyed) != 0;
}
/* Enters state (the flags of the state word are cleared), which must be a
 * transition of the life-cycle table (socket.c; asserted in debug builds). */
void rs__socket_set_state(rs_socket *socket, enum rs__socket_state state);
/* Sets, then clears, flags of the state word in one atomic step, the state
 * unchanged. */
void rs__socket_update_state_flags(rs_socket *socket, long set, long clear);
/* rs_socket_new's checks of options (raises RS_ERROR_INVALID_OPTIONS). */
int rs__socket_validate_options(const rs_socket_options *options);
/* A socket in state with no OS socket yet (NULL, raised, without memory). */
rs_socket *rs__socket_alloc(const rs_socket_options *options, long state);
/* Frees a socket of rs__socket_alloc that never had an OS socket. */
void rs__socket_free_unused(rs_socket *s);
/* Gives the socket its loop (once), counting it in the loop's load and,
 * with handle, among the handles its destroy waits for; unset undoes it. */
void rs__socket_set_loop(rs_socket *s, rs_event_loop *loop, bool handle);
void rs__socket_unset_loop(rs_socket *s);
/* Gives a listener its listener record (rs_socket_adopt: the one of
 * rs_socket_start_accept); -1 (RS_ERROR_OUT_OF_MEMORY raised) without memory. */
int rs__socket_init_listener(rs_socket *s);

/* The state word: the state and its flags (any thread). */
static inline long rs__socket_state_word(const rs_socket *socket)
{
    return rs__atomic_load(&socket->state);
}
static inline enum rs__socket_state rs__socket_state(const rs_socket *socket)
{
    return (enum rs__socket_state)(rs__socket_state_word(socket) & RS__SOCKET_STATE_MASK);
}
/* Connected with the reading (RS__SOCKET_READ_SHUT) or writing
 * (RS__SOCKET_WRITE_SHUT) half still open. */
static inline bool rs__socket_half_open(const rs_socket *socket, long shut_flag)
{
    long word = rs__socket_state_word(socket);
    return (word & RS__SOCKET_STATE_MASK) == RS__SOCKET_CONNECTED && !(word & shut_flag);
}

/* The loop-thread booleans of rs_socket.flags. */
static inline bool rs__socket_flag(const rs_socket *socket, unsigned flag)
{
    return (socket->flags & flag) != 0;
}
static inline void rs__socket_set_flag(rs_socket *socket, unsigned flag, bool on)
{
    socket->flags = (uint16_t)(on ? socket->flags | flag : socket->flags & ~flag);
}

/* The calls a backend makes into common/ for its sockets (accepted
 * connections, connect and write completions, readability, addresses) are
 * part of the seam: common/backend.h. */

/* ---- fault injection (tests; common/test_hooks.c, test build only) ----
 * The next `count` option applications fail as if the OS had refused the
 * option (rs__socket_take_option_fault, common/backend.h, which a backend
 * calls through RS__TEST_HOOK: common/test_hooks.h). */
void rs__socket_inject_option_faults(long count);

#endif
