/*
 * The backend-neutral half of sockets: argument, state and thread checks of
 * every public call (made before the backend is reached, so both backends
 * fail the same way), the state machine, the hop to the loop thread for
 * calls that are allowed from any thread and the connect timeout. The I/O
 * calls are in socket_io.c.
 */
#include "socket_impl.h"

#include "address.h"
#include "alloc.h"
#include "atomics.h"
#include "backend.h"
#include "error.h"
#include "event_loop_impl.h"
#include "library.h"
#include "log.h"

#include <assert.h>
#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 3000u

/* ---- state ---- */

/* The life-cycle table (docs/sockets.md, "Life cycle"): bit `to` of
 * transitions[from] is set when from -> to is a transition. Every socket
 * can close from every open state; CLOSED is final. */
#define TO(state) (1u << (state))
static const unsigned transitions[RS__SOCKET_CLOSED + 1] = {
    [RS__SOCKET_INIT] = TO(RS__SOCKET_BOUND) | TO(RS__SOCKET_CONNECTING) | TO(RS__SOCKET_CLOSED),
    [RS__SOCKET_BOUND] =
        TO(RS__SOCKET_LISTENING) | TO(RS__SOCKET_CONNECTING) | TO(RS__SOCKET_CLOSED),
    [RS__SOCKET_LISTENING] = TO(RS__SOCKET_CLOSED),
    [RS__SOCKET_CONNECTING] = TO(RS__SOCKET_CONNECTED) | TO(RS__SOCKET_CLOSED),
    [RS__SOCKET_CONNECTED] = TO(RS__SOCKET_CLOSED),
    [RS__SOCKET_CLOSED] = 0,
};
#undef TO

static inline bool transition_allowed(enum rs__socket_state from, enum rs__socket_state to)
{
    return from >= RS__SOCKET_INIT && from <= RS__SOCKET_CLOSED && to >= RS__SOCKET_INIT &&
           to <= RS__SOCKET_CLOSED && (transitions[from] & (1u << to)) != 0;
}

/* A plain store: a transition happens on the one thread that owns the
 * socket's state at that point (its loop thread, or the caller before it
 * has a loop); only the flags change from other threads, by CAS. */
void rs__socket_set_state(rs_socket *s, enum rs__socket_state state)
{
    assert(transition_allowed(rs__socket_state(s), state));
    rs__atomic_store(&s->state, (long)state);
}

/* start_accept and stop_accept flip RS__SOCKET_ACCEPTING from any thread
 * while the loop thread may close. */
void rs__socket_update_state_flags(rs_socket *s, long set, long clear)
{
    for (;;) {
        long old = rs__atomic_load(&s->state);
        if (rs__atomic_cas(&s->state, old, (old | set) & ~clear)) {
            return;
        }
    }
}

/* ---- the locks ---- */

/*
 * The few sections that another thread may run on a socket (the loop's
 * assignment and handle count, the lazy local address, the close and
 * destroy callbacks) take one of these, chosen by the socket's address:
 * a mutex of its own would add 40 bytes and its initialisation to every
 * connection for sections that run a handful of times in its life. A
 * holder takes no other lock but the loop's counters (atomics), so sockets
 * sharing a mutex cannot deadlock.
 */
#define SOCKET_LOCKS 32
#define LOCKS4 RS__MUTEX_INIT, RS__MUTEX_INIT, RS__MUTEX_INIT, RS__MUTEX_INIT
static rs__mutex socket_locks[SOCKET_LOCKS] = {LOCKS4, LOCKS4, LOCKS4, LOCKS4,
                                               LOCKS4, LOCKS4, LOCKS4, LOCKS4};
#undef LOCKS4

rs__mutex *rs__socket_lock(const rs_socket *s)
{
    /* Sockets are allocated at least 16 bytes apart: skip the low bits. */
    uintptr_t h = (uintptr_t)s >> 4;
    h ^= h >> 7;
    return &socket_locks[h % SOCKET_LOCKS];
}

/* An atomic read, no lock: `loop` changes under the lock, by atomic stores,
 * and is read on every call that checks threads (two or three per
 * connection). */
rs_event_loop *rs__socket_loop(const rs_socket *s)
{
    return RS__ATOMIC_LOAD_PTR(&s->loop);
}

/* Counts the socket among the loop's handles (which keep the loop's destroy
 * from freeing it under the socket) once it is something the application
 * must close: a listener, a connected or an assigned socket. A connect still
 * pending is not counted: the loop's destroy ends it. */
static void count_handle_locked(rs_socket *s)
{
    if (!s->handle_counted) {
        s->handle_counted = true;
        rs__event_loop_add_handles(s->loop, 1);
    }
}

void rs__socket_set_loop(rs_socket *s, rs_event_loop *loop, bool handle)
{
    rs__mutex_lock(rs__socket_lock(s));
    if (!s->loop) {
        RS__ATOMIC_STORE_PTR(&s->loop, loop);
        rs__socket_set_flag(s, RS__SF_LOAD_COUNTED, true);
        rs__event_loop_add_load(loop, 1);
    }
    if (handle) {
        count_handle_locked(s);
    }
    rs__mutex_unlock(rs__socket_lock(s));
}

void rs__socket_unset_loop(rs_socket *s)
{
    rs__mutex_lock(rs__socket_lock(s));
    if (s->flags & RS__SF_LOAD_COUNTED) {
        rs__socket_set_flag(s, RS__SF_LOAD_COUNTED, false);
        rs__event_loop_add_load(s->loop, -1);
    }
    if (s->handle_counted) {
        s->handle_counted = false;
        rs__event_loop_add_handles(s->loop, -1);
    }
    RS__ATOMIC_STORE_PTR(&s->loop, NULL);
    rs__mutex_unlock(rs__socket_lock(s));
}

/* ---- references ---- */

/* What rs__socket_alloc's socket may own besides itself. */
static void release_parts(rs_socket *s)
{
    if (s->options.domain == RS_SOCKET_LOCAL) {
        if (s->remote.path != s->local.path) {
            rs__mem_release(s->remote.path);
        }
        rs__mem_release(s->local.path);
    }
    rs__mem_release(s->role);
    rs__mem_release(s->readable_task);
}

void rs__socket_free(rs_socket *s)
{
    rs_socket_on_shutdown_complete_fn *on_destroy = s->on_destroy;
    void *user_data = s->destroy_user_data;
    rs__spares_release_all(&s->spare_writes, &s->spare_count);
    rs__backend_socket_clean_up(s);
    release_parts(s);
    rs__mem_release(s);
    if (on_destroy) {
        on_destroy(user_data);
    }
}

/* ---- creation ---- */

int rs__socket_validate_options(const rs_socket_options *o)
{
    if ((o->type != RS_SOCKET_STREAM && o->type != RS_SOCKET_DGRAM) ||
        (o->domain != RS_SOCKET_IPV4 && o->domain != RS_SOCKET_IPV6 &&
         o->domain != RS_SOCKET_LOCAL) ||
        (o->domain == RS_SOCKET_LOCAL && o->type == RS_SOCKET_DGRAM) ||
        (o->tcp_nodelay != RS_SOCKET_OPTION_DEFAULT && o->tcp_nodelay != RS_SOCKET_OPTION_ON &&
         o->tcp_nodelay != RS_SOCKET_OPTION_OFF) ||
        (o->reuse != RS_SOCKET_REUSE_DEFAULT && o->reuse != RS_SOCKET_REUSE_NONE) ||
        !memchr(o->network_interface_name, 0, sizeof o->network_interface_name)) {
        return rs_raise(RS_ERROR_INVALID_OPTIONS);
    }
    if (o->network_interface_name[0] &&
        !rs_is_network_interface_name_valid(o->network_interface_name)) {
        return rs_raise(RS_ERROR_INVALID_OPTIONS);
    }
    return 0;
}

static void connect_task_fn(rs_task *task, void *arg, rs_task_status status);
static void accept_retry_fn(rs_task *task, void *arg, rs_task_status status);
static void timeout_task_fn(rs_task *task, void *arg, rs_task_status status);

/* Where the backend's room starts: after the socket, aligned as
 * union rs__impl_align. */
#define IMPL_ALIGN _Alignof(union rs__impl_align)
#define IMPL_ROOM_OFFSET ((sizeof(rs_socket) + IMPL_ALIGN - 1) / IMPL_ALIGN * IMPL_ALIGN)

void *rs__socket_impl_room(rs_socket *socket)
{
    return (unsigned char *)socket + IMPL_ROOM_OFFSET;
}

rs_socket *rs__socket_alloc(const rs_socket_options *options, long state)
{
    size_t room = rs__backend_socket_impl_size();
    rs_socket *s = rs__mem_calloc(1, room ? IMPL_ROOM_OFFSET + room : sizeof *s);
    if (!s) {
        return NULL;
    }
    s->options = *options;
    s->refs = 1;
    s->state = state;
    return s;
}

void rs__socket_free_unused(rs_socket *s)
{
    release_parts(s);
    rs__mem_release(s);
}

rs_socket *rs_socket_new(const rs_socket_options *options)
{
    if (rs__library_check() != 0) {
        return NULL;
    }
    if (!options) {
        return rs__raise_null(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs__socket_validate_options(options) != 0) {
        return NULL;
    }
    rs_socket *s = rs__socket_alloc(options, RS__SOCKET_INIT);
    if (!s) {
        return NULL;
    }
    if (rs__backend_socket_init(s) != 0) {
        rs__socket_free_unused(s);
        return NULL;
    }
    return s;
}

/* A heap copy of a LOCAL socket's path; NULL for "" (or without memory,
 * logged: the name then reads as empty). */
static char *copy_path(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0) {
        return NULL;
    }
    char *copy = rs__mem_acquire(n + 1);
    if (!copy) {
        RS__LOG(RS_LOG_ERROR, "socket: no memory for the path of a Unix socket");
        return NULL;
    }
    memcpy(copy, path, n + 1);
    return copy;
}

/* A listener bound to one IPv4 address (not 0.0.0.0): every connection it
 * accepts has that local address. */
static bool listener_address_fixed(const rs_socket *listener)
{
    uint8_t address[4];
    uint16_t port;
    return listener->local_len != 0 &&
           rs__sockaddr_ipv4((const struct sockaddr *)listener->local.ip.u.bytes,
                             listener->local_len, address, &port) &&
           memcmp(address, "\0\0\0\0", 4) != 0;
}

/*
 * Both addresses of a connection count as known from the start. Its local
 * one: a Unix socket or named pipe has the listener's one name (reported
 * for both ends, as the connecting side names the path it connected to); a
 * listener bound to one IPv4 address gives every connection that address
 * and port; otherwise the backend either sets it or leaves it to
 * rs__backend_socket_resolve_local.
 */
rs_socket *rs__socket_new_accepted(const rs_socket *listener, void *impl)
{
    rs_socket *s = rs__socket_alloc(&listener->options, RS__SOCKET_CONNECTED);
    if (!s) {
        return NULL;
    }
    s->impl = impl;
    s->local_known = true;
    s->remote_known = true;
    if (listener->options.domain == RS_SOCKET_LOCAL) {
        /* One copy stands for both ends' name (release_parts). */
        s->local.path = copy_path(listener->local.path);
        s->remote.path = s->local.path;
    } else if (listener_address_fixed(listener)) {
        s->local = listener->local;
        s->local_len = listener->local_len;
    } else {
        s->local_lazy = true; /* no other thread knows s yet */
    }
    return s;
}

void *rs__socket_discard_accepted(rs_socket *s)
{
    void *impl = s->impl;
    s->impl = NULL;
    rs__spares_release_all(&s->spare_writes, &s->spare_count);
    rs__socket_free_unused(s);
    return impl;
}

/* ---- running on the loop thread ---- */

typedef int(loop_call_fn)(rs_socket *s, enum rs__call_mode mode);

/* A call scheduled from another loop's thread, which does not wait. */
struct loop_call {
    rs_task task;
    rs_socket *socket;
    loop_call_fn *fn;
};

static void loop_call_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct loop_call *c = arg;
    rs_socket *s = c->socket;
    c->fn(s, status == RS_TASK_STATUS_RUN ? RS__CALL_TASK : RS__CALL_LOOP_GONE);
    rs__mem_release(c);
    rs__socket_release(s);
}

struct blocking_call {
    rs_socket *socket;
    loop_call_fn *fn;
};

static int blocking_call_fn(void *arg, enum rs__call_mode mode)
{
    struct blocking_call *b = arg;
    return b->fn(b->socket, mode);
}

/*
 * Runs fn on the socket's loop thread: inline when called there (or when the
 * socket has no loop); from a foreign thread as the loop's thread, waiting
 * until it ran (rs__event_loop_call_and_wait: on the calling thread when the
 * loop does not run); from another loop's thread through a task without
 * waiting, since two loops waiting on each other would deadlock.
 */
static int run_on_loop(rs_socket *s, loop_call_fn *fn)
{
    rs_event_loop *loop = rs__socket_loop(s);
    if (!loop || rs_event_loop_is_on_thread(loop)) {
        return fn(s, RS__CALL_INLINE);
    }
    if (!rs__event_loop_current()) {
        /* The loop may destroy the socket (in a callback) before the call
         * returns here: hold a reference meanwhile. */
        struct blocking_call b = {s, fn};
        rs__socket_acquire(s);
        int rc = rs__event_loop_call_and_wait(loop, blocking_call_fn, &b);
        rs__socket_release(s);
        return rc;
    }
    struct loop_call *c = rs__mem_calloc(1, sizeof *c);
    if (!c) {
        return -1;
    }
    c->socket = s;
    c->fn = fn;
    rs_task_init(&c->task, loop_call_task, c, "socket call");
    rs__socket_acquire(s); /* the task's */
    if (rs_event_loop_schedule_now(loop, &c->task) != 0) {
        rs__socket_release(s);
        rs__mem_release(c);
        return -1;
    }
    return 0;
}

/* ---- closing ---- */

static void cancel_timeout(rs_socket *s)
{
    if (rs__socket_flag(s, RS__SF_TIMEOUT_ARMED)) {
        rs__socket_set_flag(s, RS__SF_TIMEOUT_ARMED, false);
        rs_event_loop_cancel_task(s->loop, &rs__socket_client(s)->timeout_task);
    }
}

static int resolve_local_locked(rs_socket *s);

/* Reads a lazy local address before the OS socket goes, so that it can
 * still be asked for after the close. */
static void settle_local(rs_socket *s)
{
    if (!RS__ATOMIC_LOAD_BOOL(&s->local_lazy)) {
        return;
    }
    rs__mutex_lock(rs__socket_lock(s));
    if (s->local_lazy) {
        if (resolve_local_locked(s) != 0) {
            s->local_known = false;
        }
        RS__ATOMIC_STORE_BOOL(&s->local_lazy, false);
    }
    rs__mutex_unlock(rs__socket_lock(s));
}

/* The socket no longer counts among its loop's handles (the ones that make
 * rs_event_loop_destroy refuse). Any thread. */
static void release_handle(rs_socket *s)
{
    rs__mutex_lock(rs__socket_lock(s));
    if (s->handle_counted) {
        s->handle_counted = false;
        rs__event_loop_add_handles(s->loop, -1);
    }
    rs__mutex_unlock(rs__socket_lock(s));
}

/* Releases what common/ holds for an open socket whose OS socket is gone:
 * the state becomes CLOSED, and the tasks, the loop's load and the handle
 * count go. Loop thread (or no loop). */
static void release_common(rs_socket *s, enum rs__socket_state state)
{
    rs__socket_set_state(s, RS__SOCKET_CLOSED);
    rs__socket_set_flag(s, RS__SF_REDELIVER, false);
    if (s->loop) {
        if (s->readable_task) {
            rs_event_loop_cancel_task(s->loop, s->readable_task);
        }
        if (state == RS__SOCKET_LISTENING && s->role) {
            /* Its reference would keep the socket until the retry's time. */
            rs_event_loop_cancel_task(s->loop, &rs__socket_listener(s)->accept_retry_task);
        }
    }
    if (rs__socket_flag(s, RS__SF_LOAD_COUNTED)) {
        rs__socket_set_flag(s, RS__SF_LOAD_COUNTED, false);
        rs__event_loop_add_load(s->loop, -1);
    }
    release_handle(s);
}

/* Releases the OS socket and everything registered on the loop for it.
 * Loop thread (or no loop). */
static void release_os(rs_socket *s)
{
    enum rs__socket_state state = rs__socket_state(s);
    if (state == RS__SOCKET_CLOSED) {
        return;
    }
    settle_local(s);
    rs__backend_socket_close(s);
    release_common(s, state);
}

static int close_now(rs_socket *s, enum rs__call_mode mode)
{
    (void)mode;
    if (rs__socket_flag(s, RS__SF_CONNECT_PENDING)) {
        /* A pending connect ends without a callback (rs_socket_close). */
        rs__socket_set_flag(s, RS__SF_CONNECT_PENDING, false);
        cancel_timeout(s);
        rs_event_loop_cancel_task(s->loop, &rs__socket_client(s)->connect_task);
    }
    release_os(s);
    if (!rs__socket_flag(s, RS__SF_CLOSE_NOTIFIED)) {
        rs__socket_set_flag(s, RS__SF_CLOSE_NOTIFIED, true);
        if (s->on_close) {
            s->on_close(s->close_user_data);
        }
    }
    rs__atomic_store(&s->close_done, 1);
    return 0;
}

/* close_now for rs_socket_destroy: nobody can ask for a lazy local address
 * afterwards, so it is dropped rather than read. */
static int close_for_destroy(rs_socket *s, enum rs__call_mode mode)
{
    /* No lock: a query racing rs_socket_destroy would use a freed socket
     * anyway. */
    RS__ATOMIC_STORE_BOOL(&s->local_lazy, false);
    return close_now(s, mode);
}

static int close_socket(rs_socket *socket, loop_call_fn *fn)
{
    if (!socket) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    /* Closed already: nothing to hop for, even if the loop no longer runs. */
    if (rs__atomic_load(&socket->close_done)) {
        return 0;
    }
    rs_event_loop *loop = rs__socket_loop(socket);
    if (loop && !rs_event_loop_is_on_thread(loop) && rs__event_loop_current()) {
        /* From another loop's thread the close is a task that may still be
         * queued when its loop is destroyed: the socket is the library's to
         * close by then (the destroy runs the task as cancelled, which closes
         * all the same), not a handle the application still holds. A connect
         * completing before the task runs counts it again, and the close
         * releases it. */
        release_handle(socket);
    }
    return run_on_loop(socket, fn);
}

int rs_socket_close(rs_socket *socket)
{
    return close_socket(socket, close_now);
}

int rs_socket_destroy(rs_socket *socket)
{
    if (!socket) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (close_socket(socket, close_for_destroy) != 0) {
        return -1;
    }
    rs__atomic_store(&socket->destroyed, 1);
    rs__socket_release(socket);
    return 0;
}

int rs_socket_set_close_callback(rs_socket *socket, rs_socket_on_shutdown_complete_fn *fn,
                                 void *user_data)
{
    if (!socket) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    rs__mutex_lock(rs__socket_lock(socket));
    socket->on_close = fn;
    socket->close_user_data = user_data;
    rs__mutex_unlock(rs__socket_lock(socket));
    return 0;
}

int rs_socket_set_destroy_callback(rs_socket *socket, rs_socket_on_shutdown_complete_fn *fn,
                                   void *user_data)
{
    if (!socket) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    rs__mutex_lock(rs__socket_lock(socket));
    socket->on_destroy = fn;
    socket->destroy_user_data = user_data;
    rs__mutex_unlock(rs__socket_lock(socket));
    return 0;
}

/* ---- addresses ---- */

int rs_socket_bind(rs_socket *socket, const rs_socket_endpoint *local)
{
    if (!socket || !local) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs__socket_state(socket) != RS__SOCKET_INIT) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (rs__endpoint_validate(local, socket->options.domain, true) != 0) {
        return -1;
    }
    if (rs__backend_socket_bind(socket, local) != 0) {
        return -1;
    }
    socket->local_known = true;
    rs__socket_set_state(socket, RS__SOCKET_BOUND);
    return 0;
}

/* The text of an address (rs__socket_addr): written here, when asked for. */
static void endpoint_text(const rs_socket *s, const union rs__socket_addr *a, uint8_t len,
                          rs_socket_endpoint *out)
{
    if (s->options.domain == RS_SOCKET_LOCAL) {
        memset(out, 0, sizeof *out);
        if (a->path) {
            size_t n = strlen(a->path);
            memcpy(out->address, a->path, n < sizeof out->address ? n : sizeof out->address - 1);
        }
        return;
    }
    if (len == 0) {
        memset(out, 0, sizeof *out);
        return;
    }
    rs__endpoint_from_sockaddr((const struct sockaddr *)a->ip.u.bytes, len, out);
}

/* Replaces a LOCAL socket's path (local or remote) by a copy of path. */
static void set_path(rs_socket *s, bool local, const char *path)
{
    char *copy = copy_path(path);
    char **slot = local ? &s->local.path : &s->remote.path;
    char *other = local ? s->remote.path : s->local.path;
    char *old = *slot;
    *slot = copy;
    if (old != other) {
        rs__mem_release(old);
    }
}

/* Keeps a socket address as given: IPv4 and IPv6 in binary, a Unix
 * socket's as its path. */
static void store_address(rs_socket *s, bool local, const struct sockaddr *sa, size_t len)
{
    if (s->options.domain == RS_SOCKET_LOCAL) {
        rs_socket_endpoint ep;
        rs__endpoint_from_sockaddr(sa, len, &ep);
        set_path(s, local, ep.address);
        return;
    }
    union rs__socket_addr *a = local ? &s->local : &s->remote;
    if (len > sizeof a->ip.u.bytes) {
        len = 0; /* no IPv4 or IPv6 address: reported empty */
    }
    memcpy(a->ip.u.bytes, sa, len);
    if (local) {
        s->local_len = (uint8_t)len;
    } else {
        s->remote_len = (uint8_t)len;
    }
}

void rs__socket_set_local(rs_socket *s, const struct sockaddr *sa, size_t len)
{
    store_address(s, true, sa, len);
    RS__ATOMIC_STORE_BOOL(&s->local_lazy, false);
    s->local_known = true;
}

void rs__socket_set_local_path(rs_socket *s, const char *path)
{
    set_path(s, true, path);
    s->local_known = true;
}

void rs__socket_set_local_lazy(rs_socket *s)
{
    s->local_known = true;
    RS__ATOMIC_STORE_BOOL(&s->local_lazy, true);
}

void rs__socket_set_remote(rs_socket *s, const struct sockaddr *sa, size_t len)
{
    store_address(s, false, sa, len);
}

/* Under the lock, local_lazy set: asks the backend for the address. */
static int resolve_local_locked(rs_socket *s)
{
    struct rs__sockaddr_ip ss;
    size_t len = 0;
    if (rs__backend_socket_resolve_local(s, &ss, &len) != 0) {
        return -1;
    }
    store_address(s, true, (const struct sockaddr *)ss.u.bytes, len);
    return 0;
}

int rs_socket_get_bound_address(const rs_socket *socket, rs_socket_endpoint *out)
{
    if (!socket || !out) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (!socket->local_known) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (RS__ATOMIC_LOAD_BOOL(&socket->local_lazy)) {
        /* Read from the OS on first use: the socket is only logically
         * const. The lock keeps the close from closing the descriptor
         * under the query. */
        rs_socket *s = (rs_socket *)socket;
        rs__mutex_lock(rs__socket_lock(s));
        if (s->local_lazy) {
            if (resolve_local_locked(s) != 0) {
                rs__mutex_unlock(rs__socket_lock(s));
                return -1;
            }
            RS__ATOMIC_STORE_BOOL(&s->local_lazy, false);
        }
        rs__mutex_unlock(rs__socket_lock(s));
    }
    endpoint_text(socket, &socket->local, socket->local_len, out);
    return 0;
}

int rs_socket_get_remote_address(const rs_socket *socket, rs_socket_endpoint *out)
{
    if (!socket || !out) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (!socket->remote_known) {
        return rs_raise(RS_ERROR_NOT_CONNECTED);
    }
    endpoint_text(socket, &socket->remote, socket->remote_len, out);
    return 0;
}

/* ---- stream server ---- */

int rs_socket_listen(rs_socket *socket, int backlog)
{
    if (!socket || backlog < 1) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (socket->options.type != RS_SOCKET_STREAM || rs__socket_state(socket) != RS__SOCKET_BOUND) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (rs__backend_socket_listen(socket, backlog) != 0) {
        return -1;
    }
    rs__socket_set_state(socket, RS__SOCKET_LISTENING);
    return 0;
}

/* The listener record, made by the first start_accept (any thread, so
 * under the lock) or by adopt: a listener that never accepts needs none. */
static int make_listener(rs_socket *s)
{
    if (RS__ATOMIC_LOAD_PTR(&s->role)) {
        return 0;
    }
    struct rs__socket_listener *l = rs__mem_calloc(1, sizeof *l);
    if (!l) {
        return -1;
    }
    rs_task_init(&l->accept_retry_task, accept_retry_fn, s, "socket accept retry");
    rs__mutex_lock(rs__socket_lock(s));
    if (!s->role) {
        RS__ATOMIC_STORE_PTR(&s->role, (void *)l);
        l = NULL;
    }
    rs__mutex_unlock(rs__socket_lock(s));
    rs__mem_release(l);
    return 0;
}

int rs__socket_init_listener(rs_socket *s)
{
    return make_listener(s);
}

/* Brings the backend in line with RS__SOCKET_ACCEPTING: whichever of
 * start_accept and stop_accept came last wins. */
static int accept_sync(rs_socket *s, enum rs__call_mode mode)
{
    if (mode == RS__CALL_LOOP_GONE || rs__socket_state(s) == RS__SOCKET_CLOSED) {
        return 0;
    }
    if (!rs__socket_flag(s, RS__SF_ATTACHED)) {
        if (rs__backend_socket_attach(s) != 0) {
            int err = rs_last_error();
            rs__socket_update_state_flags(s, 0, RS__SOCKET_ACCEPTING);
            if (mode == RS__CALL_INLINE) {
                return -1;
            }
            rs__metrics_io_callback(&s->loop->metrics);
            struct rs__socket_listener *l = rs__socket_listener(s);
            l->on_accept(s, err, NULL, l->user_data);
            return 0;
        }
        rs__socket_set_flag(s, RS__SF_ATTACHED, true);
    }
    if (rs__socket_state_word(s) & RS__SOCKET_ACCEPTING) {
        return rs__backend_socket_start_accept(s);
    }
    rs__backend_socket_stop_accept(s);
    return 0;
}

int rs_socket_start_accept(rs_socket *socket, rs_event_loop *loop,
                           rs_socket_on_accept_result_fn *on_accept, void *user_data)
{
    if (!socket || !loop || !on_accept) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    long state = rs__socket_state_word(socket);
    if (state != RS__SOCKET_LISTENING) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    rs_event_loop *current = rs__socket_loop(socket);
    if (current && current != loop) {
        return rs_raise(RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
    }
    if (make_listener(socket) != 0) {
        return -1;
    }
    struct rs__socket_listener *l = rs__socket_listener(socket);
    l->on_accept = on_accept;
    l->user_data = user_data;
    if (!rs__atomic_cas(&socket->state, state, state | RS__SOCKET_ACCEPTING)) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    rs__socket_set_loop(socket, loop, true);
    return run_on_loop(socket, accept_sync);
}

int rs_socket_stop_accept(rs_socket *socket)
{
    if (!socket) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    long state = rs__socket_state_word(socket);
    if (!(state & RS__SOCKET_ACCEPTING) ||
        !rs__atomic_cas(&socket->state, state, state & ~RS__SOCKET_ACCEPTING)) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    return run_on_loop(socket, accept_sync);
}

enum rs__accept_error_kind rs__accept_error_kind(int error_code)
{
    switch (error_code) {
    /* The connection was reset, aborted or lost between its handshake and
     * the accept: accept(2) reports such errors of the new connection
     * itself (ECONNABORTED, and on Linux the pending network errors), and
     * a failed AcceptEx reports ERROR_NETNAME_DELETED, WSAECONNRESET,
     * WSAECONNABORTED, or under Wine WSAENOTCONN (docs/windows.md W18). */
    case RS_ERROR_CONNECTION_RESET:
    case RS_ERROR_CONNECTION_ABORTED:
    case RS_ERROR_NOT_CONNECTED:
    case RS_ERROR_NETWORK_UNREACHABLE:
    case RS_ERROR_HOST_UNREACHABLE:
    case RS_ERROR_TIMEOUT:
        return RS__ACCEPT_ERROR_CONNECTION;
    case RS_ERROR_TOO_MANY_HANDLES:
    case RS_ERROR_NO_BUFFER_SPACE:
    case RS_ERROR_OUT_OF_MEMORY:
        return RS__ACCEPT_ERROR_SHORTAGE;
    default:
        return RS__ACCEPT_ERROR_LISTENER;
    }
}

bool rs__socket_accepting(const rs_socket *s)
{
    return (rs__socket_state_word(s) & RS__SOCKET_ACCEPTING) && !rs__socket_is_destroyed(s);
}

static void accept_retry_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    rs_socket *s = arg;
    if (status == RS_TASK_STATUS_RUN && rs__socket_accepting(s) &&
        rs__backend_socket_start_accept(s) != 0) {
        RS__LOG(RS_LOG_ERROR, "accepting could not resume: %s", rs_error_name(rs_last_error()));
    }
    rs__socket_release(s);
}

void rs__socket_accept_back_off(rs_socket *s)
{
    /* 10, 20, 40, 80, then 100 ms: a shortage that lasts costs ten tries a
     * second, not one per loop iteration, and connections still waiting are
     * taken at most 100 ms after handles free up. */
    struct rs__socket_listener *l = rs__socket_listener(s);
    uint64_t ms = RS__ACCEPT_RETRY_MIN_MS << (l->backoff_steps < 4 ? l->backoff_steps : 4);
    if (ms > RS__ACCEPT_RETRY_MAX_MS) {
        ms = RS__ACCEPT_RETRY_MAX_MS;
    }
    if (l->backoff_steps < UINT8_MAX) {
        l->backoff_steps++;
    }
    rs__socket_acquire(s);
    if (rs_event_loop_schedule_at(s->loop, &l->accept_retry_task,
                                  rs_event_loop_now(s->loop) + ms * 1000000u) != 0) {
        rs__socket_release(s); /* a retry is scheduled already */
    }
}

void rs__socket_accept_shortage_over(rs_socket *listener)
{
    rs__socket_set_flag(listener, RS__SF_ACCEPT_SHORTAGE, false);
    rs__socket_listener(listener)->backoff_steps = 0;
}

bool rs__socket_accepted(rs_socket *listener, int error_code, rs_socket *new_socket)
{
    /* The backend asked rs__socket_accepting first: accepting goes on. */
    assert(rs__socket_accepting(listener));
    if (error_code != 0) {
        switch (rs__accept_error_kind(error_code)) {
        case RS__ACCEPT_ERROR_CONNECTION:
            RS__LOG(RS_LOG_DEBUG, "pending connection lost before its accept: %s",
                    rs_error_name(error_code));
            return true;
        case RS__ACCEPT_ERROR_SHORTAGE:
            /* Once per shortage: the backend retries ten times a second, and
             * the user needs to know that it began, not of each retry. */
            if (rs__socket_flag(listener, RS__SF_ACCEPT_SHORTAGE)) {
                return true;
            }
            rs__socket_set_flag(listener, RS__SF_ACCEPT_SHORTAGE, true);
            RS__LOG(RS_LOG_WARN, "accepting short of resources: %s", rs_error_name(error_code));
            break;
        case RS__ACCEPT_ERROR_LISTENER:
            /* The backend stopped accepting before it reported. */
            rs__socket_update_state_flags(listener, 0, RS__SOCKET_ACCEPTING);
            break;
        }
    }
    rs__metrics_io_callback(&listener->loop->metrics);
    struct rs__socket_listener *l = rs__socket_listener(listener);
    l->on_accept(listener, error_code, new_socket, l->user_data);
    return rs__socket_accepting(listener);
}

/* ---- client ---- */

/* The socket's loop is being destroyed under a pending connect. */
static void connect_lost_loop(rs_socket *s)
{
    rs__socket_set_flag(s, RS__SF_CONNECT_PENDING, false);
    release_os(s);
    rs__mutex_lock(rs__socket_lock(s));
    RS__ATOMIC_STORE_PTR(&s->loop, NULL);
    rs__mutex_unlock(rs__socket_lock(s));
    if (!rs__socket_is_destroyed(s)) {
        struct rs__socket_client *c = rs__socket_client(s);
        c->on_connect(s, RS_ERROR_EVENT_LOOP_SHUTDOWN, c->user_data);
    }
}

static void connect_finish(rs_socket *s, int error_code, bool os_closed);

static void timeout_task_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    rs_socket *s = arg;
    if (rs__socket_flag(s, RS__SF_TIMEOUT_ARMED)) {
        rs__socket_set_flag(s, RS__SF_TIMEOUT_ARMED, false);
        if (status == RS_TASK_STATUS_RUN) {
            connect_finish(s, RS_ERROR_TIMEOUT, false);
        } else {
            connect_lost_loop(s);
        }
    }
    rs__socket_release(s);
}

static void connect_task_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    rs_socket *s = arg;
    if (!rs__socket_flag(s, RS__SF_CONNECT_PENDING)) {
        rs__socket_release(s);
        return;
    }
    if (status != RS_TASK_STATUS_RUN) {
        connect_lost_loop(s);
        rs__socket_release(s);
        return;
    }
    uint32_t ms =
        s->options.connect_timeout_ms ? s->options.connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    rs__socket_set_flag(s, RS__SF_TIMEOUT_ARMED, true);
    rs__socket_acquire(s);
    rs_event_loop_schedule_at(s->loop, &rs__socket_client(s)->timeout_task,
                              rs_event_loop_now(s->loop) + (uint64_t)ms * 1000000u);
    if (!rs__socket_flag(s, RS__SF_ATTACHED)) {
        if (rs__backend_socket_attach(s) != 0) {
            connect_finish(s, rs_last_error(), false);
            rs__socket_release(s);
            return;
        }
        rs__socket_set_flag(s, RS__SF_ATTACHED, true);
    }
    if (s->options.type == RS_SOCKET_DGRAM) {
        connect_finish(s, 0, false);
    }
    rs__socket_release(s);
}

int rs_socket_connect(rs_socket *socket, const rs_socket_endpoint *remote, rs_event_loop *loop,
                      rs_socket_on_connection_result_fn *on_result, void *user_data)
{
    if (!socket || !remote || !loop || !on_result) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    enum rs__socket_state state = rs__socket_state(socket);
    if (state != RS__SOCKET_INIT && state != RS__SOCKET_BOUND) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    rs_event_loop *current = rs__socket_loop(socket);
    if (current && current != loop) {
        return rs_raise(RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
    }
    /* A socket that already has a loop (a bound UDP socket assigned to it)
     * may be reading there: its connect belongs on that thread too. */
    if (current && !rs_event_loop_is_on_thread(current)) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    rs_socket_domain domain = socket->options.domain;
    /* An IP address is parsed once, here: the validation gives the socket
     * address the backend connects to (rs__backend_socket_connect). */
    struct rs__sockaddr_ip addr;
    size_t addr_len = 0;
    if ((domain == RS_SOCKET_LOCAL
             ? rs__endpoint_validate(remote, domain, false)
             : rs__endpoint_validate_ip(remote, domain, false, &addr, &addr_len)) != 0) {
        return -1;
    }
    /* Allocated before the connect starts, so that running short of memory
     * leaves the socket as it was (a socket that failed to connect at once
     * may still bind and listen: it keeps no client record). */
    struct rs__socket_client *c = rs__mem_calloc(1, sizeof *c);
    char *path = NULL;
    if (!c || (domain == RS_SOCKET_LOCAL && !(path = copy_path(remote->address)))) {
        rs__mem_release(c); /* validated: a LOCAL path is not empty */
        return -1;
    }
    rs_task_init(&c->connect_task, connect_task_fn, socket, "socket connect");
    rs_task_init(&c->timeout_task, timeout_task_fn, socket, "socket connect timeout");
    /* The peer's address is the endpoint's, as a socket address (so that
     * "fe80::1%lo" reads back as "fe80::1%1"), unless the backend stores
     * another as it connects (rs__socket_set_remote). */
    if (domain == RS_SOCKET_LOCAL) {
        socket->remote_len = 0;
    } else {
        socket->remote.ip = addr;
        socket->remote_len = (uint8_t)addr_len;
    }
    if (rs__backend_socket_connect(socket, remote) != 0) {
        rs__mem_release(path);
        rs__mem_release(c);
        return -1;
    }
    socket->role = c;
    if (domain == RS_SOCKET_LOCAL) {
        char *old = socket->remote.path;
        socket->remote.path = path;
        if (old != socket->local.path) {
            rs__mem_release(old);
        }
    }
    socket->remote_known = socket->options.type == RS_SOCKET_DGRAM;
    c->on_connect = on_result;
    c->user_data = user_data;
    rs__socket_set_flag(socket, RS__SF_CONNECT_PENDING, true);
    rs__socket_set_state(socket, RS__SOCKET_CONNECTING);
    rs__socket_set_loop(socket, loop, false);
    rs__socket_acquire(socket);
    if (rs_event_loop_schedule_now(loop, &c->connect_task) != 0) {
        /* Only a task still scheduled fails here: a connect is already running. */
        rs__socket_release(socket);
        return -1;
    }
    return 0;
}

/* Ends a pending connect: connected (error_code 0) or failed, the OS
 * socket then closed here unless the backend closed it (os_closed). */
static void connect_finish(rs_socket *s, int error_code, bool os_closed)
{
    if (!rs__socket_flag(s, RS__SF_CONNECT_PENDING)) {
        return;
    }
    rs__socket_set_flag(s, RS__SF_CONNECT_PENDING, false);
    cancel_timeout(s);
    if (error_code == 0) {
        rs__socket_set_state(s, RS__SOCKET_CONNECTED);
        s->remote_known = true;
        rs__mutex_lock(rs__socket_lock(s));
        count_handle_locked(s);
        rs__mutex_unlock(rs__socket_lock(s));
    } else if (os_closed) {
        release_common(s, RS__SOCKET_CONNECTING);
    } else {
        release_os(s);
    }
    if (!rs__socket_is_destroyed(s)) {
        rs__socket_acquire(s);
        rs__metrics_io_callback(&s->loop->metrics);
        struct rs__socket_client *c = rs__socket_client(s);
        c->on_connect(s, error_code, c->user_data);
        rs__socket_release(s);
    }
}

void rs__socket_connect_done(rs_socket *s, int error_code)
{
    connect_finish(s, error_code, error_code != 0);
}

/* ---- I/O ---- */

static int attach_call(rs_socket *s, enum rs__call_mode mode)
{
    if (mode == RS__CALL_LOOP_GONE || rs__socket_flag(s, RS__SF_ATTACHED) ||
        rs__socket_state(s) == RS__SOCKET_CLOSED) {
        return 0;
    }
    if (rs__backend_socket_attach(s) != 0) {
        if (mode == RS__CALL_INLINE) {
            return -1;
        }
        RS__LOG(RS_LOG_ERROR, "socket: registering with its event loop failed: %s",
                rs_error_name(rs_last_error()));
        release_os(s);
        return 0;
    }
    rs__socket_set_flag(s, RS__SF_ATTACHED, true);
    return 0;
}

int rs_socket_assign_to_event_loop(rs_socket *socket, rs_event_loop *loop)
{
    if (!socket || !loop) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs__socket_loop(socket)) {
        return rs_raise(RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
    }
    enum rs__socket_state state = rs__socket_state(socket);
    bool connected = rs__socket_half_open(socket, RS__SOCKET_READ_SHUT) ||
                     rs__socket_half_open(socket, RS__SOCKET_WRITE_SHUT);
    bool bound_dgram = socket->options.type == RS_SOCKET_DGRAM && state == RS__SOCKET_BOUND;
    if (!connected && !bound_dgram) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    rs__socket_set_loop(socket, loop, true);
    return run_on_loop(socket, attach_call);
}

rs_event_loop *rs_socket_get_event_loop(const rs_socket *socket)
{
    if (!socket) {
        return rs__raise_null(RS_ERROR_INVALID_ARGUMENT);
    }
    return rs__socket_loop(socket);
}

/* ---- options and state ---- */

int rs_socket_set_options(rs_socket *socket, const rs_socket_options *options)
{
    if (!socket || !options) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    /* IPV6_V6ONLY can only change before bind(2) (RFC 3493 section 5.3):
     * the socket keeps what it was created with. */
    if (options->type != socket->options.type || options->domain != socket->options.domain ||
        options->ipv6_dual_stack != socket->options.ipv6_dual_stack ||
        rs__socket_validate_options(options) != 0) {
        return rs_raise(RS_ERROR_INVALID_OPTIONS);
    }
    rs_event_loop *loop = rs__socket_loop(socket);
    if (loop && !rs_event_loop_is_on_thread(loop)) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    if (rs__socket_state(socket) == RS__SOCKET_CLOSED) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (rs__backend_socket_set_options(socket, options) != 0) {
        return -1;
    }
    socket->options = *options;
    return 0;
}

int rs_socket_get_options(const rs_socket *socket, rs_socket_options *out)
{
    if (!socket || !out) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    *out = socket->options;
    return 0;
}

int rs_socket_get_tcp_nodelay(const rs_socket *socket, bool *on)
{
    if (!socket || !on) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    /* TCP_NODELAY exists only on TCP sockets. */
    if (rs__socket_state(socket) == RS__SOCKET_CLOSED || socket->options.type != RS_SOCKET_STREAM ||
        socket->options.domain == RS_SOCKET_LOCAL) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    return rs__backend_socket_get_tcp_nodelay(socket, on);
}

int rs_socket_get_error(rs_socket *socket)
{
    if (!socket) {
        rs_raise(RS_ERROR_INVALID_ARGUMENT);
        return RS_ERROR_INVALID_ARGUMENT;
    }
    if (rs__socket_state(socket) == RS__SOCKET_CLOSED) {
        return RS_ERROR_SOCKET_CLOSED;
    }
    return rs__backend_socket_get_error(socket);
}

bool rs_socket_is_open(const rs_socket *socket)
{
    return socket && rs__socket_state(socket) != RS__SOCKET_CLOSED;
}
