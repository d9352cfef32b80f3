/* Internal to the libevent backend's sockets (le_socket.c, le_socket_io.c). */
#ifndef RS_LE_SOCKET_H
#define RS_LE_SOCKET_H

#include "le_backend.h"

#include "../../common/backend.h"

#include <stddef.h>

struct le_socket {
    /* Ordered so that the record has no padding: one per connection
     * (docs/performance.md, "Memory per connection"). */
    int fd;
    /* A stream connect that failed inside connect(2): reported once the
     * socket is attached, through the connection callback. */
    int connect_error;
    /* The socket's one registration, EV_READ | EV_WRITE | EV_PERSIST | EV_ET
     * (and EV_CLOSED where the base reports it, le_socket.c),
     * from attach to close: edge-triggered, so nothing is re-armed per
     * operation and an idle socket costs the loop nothing. A listener's is
     * EV_READ | EV_PERSIST, level-triggered, added only while accepting. */
    struct event *event; /* NULL, or event_storage once assigned and added */
#if !RS_LE_EDGE_TRIGGERED
    /* Without edge triggering (RS_LE_EDGE_TRIGGERED, le_compat.h) reads and
     * writes are one-shot events of their own, each pending only while
     * wanted, since a level-triggered one would fire on every iteration
     * while the socket stays readable or writable: the read event from
     * attach until it fires, and again after a read that drains the socket
     * (the "once until drained" rule, docs/readable-events.md), the write
     * event while a send met a full buffer or a connect is under way. The
     * write event lives in event_storage after the read event. */
    bool read_armed;
    bool write_armed;
#endif
    struct rs__socket_write *write_head; /* FIFO of writes not yet fully sent */
    struct rs__socket_write *write_tail;
    /* Stream writes issued by a deferred completion (a write callback that
     * writes again) wait for `flush`, one deferred completion of their own,
     * so that the writes of one round leave in one sendmsg(2) (le_socket_io.c). */
    rs_socket *owner; /* set with flush_queued */
    struct rs__deferred flush;
    bool flush_queued;
    bool writable;   /* no send has hit EAGAIN since the last EV_WRITE edge */
    bool peer_known; /* connect stored the peer's address already */
    /* Room for the struct event (event_get_struct_event_size() bytes, in
     * the same allocation: no malloc and free of its own per connection). */
    union {
        union rs__impl_align align; /* all a struct event needs */
        unsigned char bytes[1];
    } event_storage[];
};

/* Each le_socket, with room for its events, lives in its socket's
 * allocation (rs__backend_socket_impl_size, rs__socket_impl_room). */

#if RS_LE_EDGE_TRIGGERED
#define RS_LE_SOCKET_EVENTS 1
#else
#define RS_LE_SOCKET_EVENTS 2
#endif
/* The room one struct event takes in event_storage, rounded up so that the
 * next one is aligned. */
static inline size_t rs__le_event_room(void)
{
    size_t align = _Alignof(union rs__impl_align);
    return (event_get_struct_event_size() + align - 1) / align * align;
}
#if !RS_LE_EDGE_TRIGGERED
static inline struct event *rs__le_socket_write_event(struct le_socket *le)
{
    return (struct event *)(le->event_storage[0].bytes + rs__le_event_room());
}
/* Arms the one-shot write event (a no-op while armed). Raises on failure. */
int rs__le_socket_want_write(struct le_socket *le);
/* Arms the one-shot read event after a read drained the socket. */
void rs__le_socket_want_read(struct le_socket *le);
#endif

/* Applies options to fd; raises RS_ERROR_SOCKET_OPTION on refusal. */
int rs__le_apply_options(int fd, const rs_socket_options *options);
/* Makes fd close-on-exec, non-blocking and SIGPIPE-free where accept4 /
 * SOCK_CLOEXEC are unavailable. */
int rs__le_prepare_fd(int fd, bool flags_done);
/* getsockname(2) of fd as the socket's local address (rs__socket_set_local). */
int rs__le_set_local_from_fd(rs_socket *socket, int fd);
/* Closes the OS socket (rs__backend_socket_close): also what a failed
 * connect does before it reports. Idempotent. */
void rs__le_close_os(rs_socket *socket);

/* le_socket_io.c */
void rs__le_socket_on_event(evutil_socket_t fd, short what, void *arg);
void rs__le_socket_fail_writes(rs_socket *socket, int error_code);
/* Sends writes held for a deferred flush now (before a close or shutdown,
 * which would otherwise fail writes the kernel had room for). */
void rs__le_socket_flush_held(rs_socket *socket);

#endif
