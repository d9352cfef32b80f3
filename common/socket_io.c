/*
 * The backend-neutral half of socket I/O: the loop-thread checks of read,
 * write, subscribe and shutdown, the edge-triggered readable rules (when
 * on_readable is called again) and the delivery of write completions on the
 * loop's next iteration (a deferred completion), never from inside
 * rs_socket_write.
 */
#include "socket_impl.h"

#include "address.h"
#include "alloc.h"
#include "atomics.h"
#include "backend.h"
#include "error.h"
#include "event_loop_impl.h"
#include "log.h"

#include <string.h>

/* 65535 - 8 (UDP header) - 20 (IPv4 header): the largest datagram IPv4 carries. */
#define MAX_DATAGRAM 65507u

/* Checks shared by the loop-thread-only calls. */
static int check_loop_thread(const rs_socket *s)
{
    /* The common case, without the lock: on its own loop's thread, s->loop
     * was set before the loop ever saw the socket. */
    rs_event_loop *current = rs__event_loop_current();
    if (current && current == s->loop) {
        return 0;
    }
    rs_event_loop *loop = rs__socket_loop(s);
    if (!loop) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (!rs_event_loop_is_on_thread(loop)) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    return 0;
}

static bool can_read(const rs_socket *s)
{
    return rs__socket_half_open(s, RS__SOCKET_READ_SHUT) ||
           (s->options.type == RS_SOCKET_DGRAM && rs__socket_state(s) == RS__SOCKET_BOUND);
}

static void readable_task_fn(rs_task *task, void *arg, rs_task_status status);

/* A read drained the socket (or failed): nothing reported is left unread,
 * and no redelivery is owed. */
static inline void clear_readable(rs_socket *s)
{
    s->flags = (uint16_t)(s->flags & ~(unsigned)(RS__SF_READABLE_PENDING | RS__SF_REDELIVER));
}

/* Calls on_readable again on the next iteration (unless a read drains first). */
static void schedule_redeliver(rs_socket *s)
{
    if (!s->readable_task) {
        s->readable_task = rs__mem_acquire(sizeof *s->readable_task);
        if (!s->readable_task) {
            /* Without the task the socket cannot be told again: it counts
             * as drained, so the next sign of data calls on_readable. */
            RS__LOG(RS_LOG_ERROR, "socket: no memory to report readable data again");
            clear_readable(s);
            return;
        }
        rs_task_init(s->readable_task, readable_task_fn, s, "socket readable");
    }
    rs__socket_set_flag(s, RS__SF_REDELIVER, true);
    rs__socket_acquire(s);
    if (rs_event_loop_schedule_now(s->loop, s->readable_task) != 0) {
        rs__socket_release(s); /* already scheduled */
    }
}

static void deliver_readable(rs_socket *s)
{
    /* Shut down for reading: the data stays unread and unreported
     * (rs_socket_shutdown). */
    /* (A socket that can read is connected or bound, so not closed.) */
    if (!s->on_readable || rs__socket_is_destroyed(s) || !can_read(s)) {
        return;
    }
    /* A read that fills the buffer during the callback sets REDELIVER
     * again; IN_READABLE is restored afterwards (a nested delivery keeps
     * the outer one's). One update of the flags word for both. */
    unsigned flags = s->flags;
    bool outer = (flags & RS__SF_IN_READABLE) != 0;
    s->flags = (uint16_t)((flags & ~(unsigned)RS__SF_REDELIVER) | RS__SF_IN_READABLE);
    rs__socket_acquire(s);
    rs__metrics_io_callback(&s->loop->metrics);
    s->on_readable(s, 0, s->readable_user_data);
    if (outer) {
        rs__socket_release(s);
        return;
    }
    flags = s->flags & ~(unsigned)RS__SF_IN_READABLE;
    s->flags = (uint16_t)flags;
    /* Reads inside the callback only note that the last one filled the
     * buffer; the redelivery is scheduled once, here, if that is still so:
     * a callback that reads until drained (the usual loop) then costs no
     * task, and a datagram socket no task per datagram. */
    if ((flags & RS__SF_REDELIVER) && s->on_readable && !rs__socket_is_destroyed(s) &&
        rs__socket_state(s) != RS__SOCKET_CLOSED) {
        schedule_redeliver(s);
    }
    rs__socket_release(s);
}

static void readable_task_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    rs_socket *s = arg;
    if (status == RS_TASK_STATUS_RUN && rs__socket_flag(s, RS__SF_REDELIVER) &&
        rs__socket_flag(s, RS__SF_READABLE_PENDING)) {
        deliver_readable(s);
    }
    rs__socket_release(s);
}

void rs__socket_readable(rs_socket *s)
{
    /* Once until drained (docs/readable-events.md): a sign of data while
     * data already reported is unread brings no second callback, so the
     * edge-triggered epoll backend reports what a completion-based one can. */
    if (s->flags & RS__SF_READABLE_PENDING) {
        return;
    }
    s->flags = (uint16_t)(s->flags | RS__SF_READABLE_PENDING);
    deliver_readable(s);
}

int rs_socket_subscribe_to_readable_events(rs_socket *socket, rs_socket_on_readable_fn *on_readable,
                                           void *user_data)
{
    if (!socket || !on_readable) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (check_loop_thread(socket) != 0) {
        return -1;
    }
    if (!can_read(socket) || socket->on_readable) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (rs__backend_socket_subscribe(socket) != 0) {
        return -1;
    }
    socket->on_readable = on_readable;
    socket->readable_user_data = user_data;
    if (rs__socket_flag(socket, RS__SF_READABLE_PENDING)) {
        schedule_redeliver(socket);
    }
    return 0;
}

int rs_socket_read(rs_socket *socket, void *buffer, size_t len, size_t *amount_read)
{
    if (!socket || !buffer || len == 0 || !amount_read) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (check_loop_thread(socket) != 0) {
        return -1;
    }
    if (!can_read(socket)) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    size_t n = 0;
    if (rs__backend_socket_read(socket, buffer, len, &n) != 0) {
        /* The read ended what was reported: no redelivery, no look owed. */
        socket->flags =
            (uint16_t)(socket->flags & ~(unsigned)(RS__SF_READABLE_PENDING | RS__SF_REDELIVER |
                                                   RS__SF_DRAIN_UNPROVEN));
        return -1;
    }
    rs__metrics_bump(&socket->loop->metrics.bytes_read, n);
    *amount_read = n;
    /* A datagram read says nothing about the next datagram: only
     * RS_ERROR_WOULD_BLOCK proves a datagram socket drained. Nor does a
     * short stream read with the end of the stream behind it: the sign of
     * the end came with the data, and no other comes. */
    if (socket->options.type == RS_SOCKET_DGRAM || n == len ||
        rs__socket_flag(socket, RS__SF_END_MAY_WAIT)) {
        if (rs__socket_flag(socket, RS__SF_IN_READABLE)) {
            /* scheduled when the callback returns */
            rs__socket_set_flag(socket, RS__SF_REDELIVER, true);
        } else if (socket->on_readable) {
            schedule_redeliver(socket);
        }
    } else {
        /* Drained, as far as a short read can tell (DRAIN_UNPROVEN:
         * a readiness backend looks again at the next subscription). */
        socket->flags =
            (uint16_t)((socket->flags & ~(unsigned)(RS__SF_READABLE_PENDING | RS__SF_REDELIVER)) |
                       RS__SF_DRAIN_UNPROVEN);
    }
    return 0;
}

static void recycle_write(rs_socket *s, struct rs__socket_write *req)
{
    if (req->bufs) {
        rs__mem_release(req->bufs);
        req->bufs = NULL;
    }
    rs__spares_put(&s->spare_writes, &s->spare_count, RS__SPARE_WRITES_MAX, req);
}

static void write_done_fn(struct rs__deferred *done)
{
    struct rs__socket_write *req = (struct rs__socket_write *)done;
    rs_socket *s = req->socket;
    /* Before the callback: a writer that resumes from its completion sees
     * the queue without this write. */
    s->write_queue_size -= req->len;
    rs__metrics_bump(&s->loop->metrics.bytes_written, req->written);
    rs__metrics_io_callback(&s->loop->metrics);
    req->on_complete(rs__socket_is_destroyed(s) ? NULL : s, req->error, req->written,
                     req->user_data);
    recycle_write(s, req);
    rs__socket_release(s);
}

/* What every write to the peer checks after its arguments: the thread, a
 * connected write half, and a datagram's size (len bytes in all). */
static int check_can_write(const rs_socket *socket, size_t len)
{
    if (check_loop_thread(socket) != 0) {
        return -1;
    }
    if (!rs__socket_half_open(socket, RS__SOCKET_WRITE_SHUT)) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (socket->options.type == RS_SOCKET_DGRAM && len > MAX_DATAGRAM) {
        return rs_raise(RS_ERROR_MESSAGE_TOO_LARGE);
    }
    return 0;
}

/* A write request for len bytes of data, taken from the socket's spares (a
 * steady stream of writes allocates nothing), in the plain state: one
 * buffer, to the peer. The vectored and addressed writes fill in their
 * parts afterwards. NULL with the error raised. */
static struct rs__socket_write *take_write(rs_socket *socket, const void *data, size_t len,
                                           rs_socket_on_write_completed_fn *on_complete,
                                           void *user_data)
{
    struct rs__socket_write *req = rs__spares_take(&socket->spare_writes, &socket->spare_count);
    if (!req) {
        if (!(req = rs__mem_acquire(sizeof *req))) {
            return NULL;
        }
        req->done.fn = write_done_fn;
    }
    req->next = NULL;
    req->socket = socket;
    req->data = data;
    req->len = len;
    req->bufs = NULL;
    req->to_len = 0;
    req->written = 0;
    req->error = 0;
    req->on_complete = on_complete;
    req->user_data = user_data;
    return req;
}

/* Hands req to the backend's FIFO; on a refusal nothing stays queued. */
static int submit_write(rs_socket *socket, struct rs__socket_write *req)
{
    rs__socket_acquire(socket);
    socket->write_queue_size += req->len;
    if (rs__backend_socket_write(socket, req) != 0) {
        socket->write_queue_size -= req->len;
        rs__socket_release(socket);
        recycle_write(socket, req);
        return -1;
    }
    return 0;
}

int rs_socket_write(rs_socket *socket, const void *data, size_t len,
                    rs_socket_on_write_completed_fn *on_complete, void *user_data)
{
    if (!socket || !data || len == 0 || !on_complete) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (check_can_write(socket, len) != 0) {
        return -1;
    }
    struct rs__socket_write *req = take_write(socket, data, len, on_complete, user_data);
    return req ? submit_write(socket, req) : -1;
}

/* ---- vectored writes ---- */

void rs__socket_write_advance(struct rs__socket_write *req, size_t n)
{
    req->written += n;
    if (!req->bufs) {
        return;
    }
    while (n > 0) {
        size_t left = req->bufs[req->buf_index].len - req->buf_off;
        if (n < left) {
            req->buf_off += n;
            return;
        }
        n -= left;
        req->buf_index++;
        req->buf_off = 0;
    }
}

/* Checks the caller's buffers: the count of non-empty ones and their total,
 * or -1 (raised) for a NULL base with a length or a total past SIZE_MAX. */
static int measure_bufs(const rs_buf *bufs, size_t nbufs, size_t *count, size_t *total)
{
    size_t n = 0;
    size_t sum = 0;
    for (size_t i = 0; i < nbufs; i++) {
        if (bufs[i].len == 0) {
            continue;
        }
        if (!bufs[i].base || bufs[i].len > SIZE_MAX - sum) {
            return rs_raise(RS_ERROR_INVALID_ARGUMENT);
        }
        sum += bufs[i].len;
        n++;
    }
    *count = n;
    *total = sum;
    return 0;
}

/*
 * The buffer array is copied (libuv's uv_write does the same), the bytes are
 * not: the caller's array is usually built on its stack for the one call.
 * A write whose buffers reduce to one non-empty buffer takes the
 * single-buffer path, so backends see a vectored request only with two
 * buffers or more and never an empty one.
 */
int rs_socket_write_vec(rs_socket *socket, const rs_buf *bufs, size_t nbufs,
                        rs_socket_on_write_completed_fn *on_complete, void *user_data)
{
    if (!socket || !bufs || nbufs == 0 || nbufs > RS_SOCKET_WRITE_VEC_MAX || !on_complete) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    size_t count = 0;
    size_t total = 0;
    if (measure_bufs(bufs, nbufs, &count, &total) != 0) {
        return -1;
    }
    if (total == 0) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (socket->options.type == RS_SOCKET_DGRAM && nbufs > RS_SOCKET_WRITE_VEC_DGRAM_MAX) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (count == 1) {
        size_t i = 0;
        while (bufs[i].len == 0) {
            i++;
        }
        return rs_socket_write(socket, bufs[i].base, bufs[i].len, on_complete, user_data);
    }
    if (check_can_write(socket, total) != 0) {
        return -1;
    }
    rs_buf *copy = rs__mem_acquire(count * sizeof *copy);
    if (!copy) {
        return -1;
    }
    for (size_t i = 0, j = 0; i < nbufs; i++) {
        if (bufs[i].len != 0) {
            copy[j++] = bufs[i];
        }
    }
    struct rs__socket_write *req = take_write(socket, NULL, total, on_complete, user_data);
    if (!req) {
        rs__mem_release(copy);
        return -1;
    }
    req->bufs = copy;
    req->nbufs = count;
    req->buf_index = 0;
    req->buf_off = 0;
    return submit_write(socket, req);
}

int rs_socket_get_write_queue_size(const rs_socket *socket, size_t *out)
{
    if (!socket || !out) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (check_loop_thread(socket) != 0) {
        return -1;
    }
    *out = socket->write_queue_size;
    return 0;
}

/*
 * The reading half is shut down by reseau itself, on both backends: reads
 * and readable events stop, and whatever the peer sends stays in the
 * kernel's buffer unread (the peer's writes complete until the window
 * fills). The OS call is not made for it because its outcome differs:
 * Windows' shutdown(SD_RECEIVE) resets the connection when data is waiting
 * or arrives later (shutdown's documentation), while Linux's SHUT_RD keeps
 * the connection and reports end of stream. The writing half is the OS's
 * shutdown(SD_SEND / SHUT_WR): the FIN is the part the peer must see.
 */
int rs_socket_shutdown(rs_socket *socket, rs_socket_direction direction)
{
    if (!socket ||
        (direction != RS_SOCKET_DIRECTION_READ && direction != RS_SOCKET_DIRECTION_WRITE &&
         direction != RS_SOCKET_DIRECTION_BOTH)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    rs_event_loop *loop = rs__socket_loop(socket);
    if (loop && !rs_event_loop_is_on_thread(loop)) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    if (!rs__socket_half_open(socket, RS__SOCKET_READ_SHUT) &&
        !rs__socket_half_open(socket, RS__SOCKET_WRITE_SHUT)) {
        return rs_raise(RS_ERROR_NOT_CONNECTED);
    }
    if ((direction & RS_SOCKET_DIRECTION_WRITE) &&
        rs__backend_socket_shutdown(socket, RS_SOCKET_DIRECTION_WRITE) != 0) {
        return -1;
    }
    long shut = 0;
    if (direction & RS_SOCKET_DIRECTION_READ) {
        shut |= RS__SOCKET_READ_SHUT;
    }
    if (direction & RS_SOCKET_DIRECTION_WRITE) {
        shut |= RS__SOCKET_WRITE_SHUT;
    }
    rs__socket_update_state_flags(socket, shut, 0);
    return 0;
}

/* ---- read stop and immediate writes ---- */

/*
 * The pipes' rule: no readable callback after this returns on the loop
 * thread (deliver_readable and the redelivery task both look at
 * on_readable first), and what arrives meanwhile stays unread. The
 * backends keep reporting readability, which common/ only notes
 * (readable_pending), so the next subscription reports data that waits
 * (docs/readable-events.md, rule 1).
 */
int rs_socket_unsubscribe_from_readable_events(rs_socket *socket)
{
    if (!socket) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (check_loop_thread(socket) != 0) {
        return -1;
    }
    if (!socket->on_readable || rs__socket_state(socket) == RS__SOCKET_CLOSED) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    socket->on_readable = NULL;
    socket->readable_user_data = NULL;
    rs__backend_socket_unsubscribe(socket);
    return 0;
}

/*
 * libuv's uv_try_write: what the kernel takes now, with no request and no
 * callback. Only while nothing is queued (the completions of every earlier
 * write have run): bytes sent past queued ones would overtake them.
 */
int rs_socket_try_write(rs_socket *socket, const void *data, size_t len, size_t *written)
{
    if (!socket || !data || len == 0 || !written) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (check_can_write(socket, len) != 0) {
        return -1;
    }
    if (socket->write_queue_size != 0) {
        return rs_raise(RS_ERROR_WOULD_BLOCK);
    }
    size_t n = 0;
    if (rs__backend_socket_try_write(socket, data, len, &n) != 0) {
        return -1;
    }
    rs__metrics_bump(&socket->loop->metrics.bytes_written, n);
    *written = n;
    return 0;
}

/* ---- unconnected datagrams: read_from and write_to ----
 *
 * A bound UDP socket that is not connected serves any number of peers: each
 * read reports the datagram's sender and each write names its destination.
 * The readable rules are those of rs_socket_read (a datagram read may be
 * followed by another; only RS_ERROR_WOULD_BLOCK drains). write_to is
 * refused on a connected socket: Linux sends such a datagram to the
 * destination given, while Winsock documents the destination of a send on
 * a connected socket as ignored or refused (sendto / WSASendTo), so no rule
 * but refusing holds on both backends.
 */

/* 65535 - 8 (UDP header): the largest payload of an IPv6 datagram without a
 * jumbogram (the IPv6 header is not counted in the payload length). */
#define MAX_DATAGRAM_IPV6 65527u

/* The largest datagram the protocol carries to `to` (validated for domain):
 * an IPv4-mapped destination of a dual-stack socket travels as IPv4. */
static size_t max_datagram_to(rs_socket_domain domain, const rs_socket_endpoint *to)
{
    if (domain == RS_SOCKET_IPV4) {
        return MAX_DATAGRAM;
    }
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t bytes[16];
    uint32_t scope_id = 0;
    if (rs_parse_ipv6_scoped_address(to->address, bytes, &scope_id) == 0 &&
        memcmp(bytes, mapped, sizeof mapped) == 0) {
        return MAX_DATAGRAM;
    }
    return MAX_DATAGRAM_IPV6;
}

int rs_socket_read_from(rs_socket *socket, void *buffer, size_t len, size_t *amount_read,
                        rs_socket_endpoint *from)
{
    if (!socket || !buffer || len == 0 || !amount_read || !from) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (socket->options.type != RS_SOCKET_DGRAM) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (check_loop_thread(socket) != 0) {
        return -1;
    }
    if (!can_read(socket)) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    size_t n = 0;
    rs_socket_endpoint sender;
    if (rs__backend_socket_read_from(socket, buffer, len, &n, &sender) != 0) {
        clear_readable(socket);
        return -1;
    }
    rs__metrics_bump(&socket->loop->metrics.bytes_read, n);
    *amount_read = n;
    *from = sender;
    /* As rs_socket_read: another datagram may wait. */
    if (rs__socket_flag(socket, RS__SF_IN_READABLE)) {
        rs__socket_set_flag(socket, RS__SF_REDELIVER, true);
    } else if (socket->on_readable) {
        schedule_redeliver(socket);
    }
    return 0;
}

int rs_socket_write_to(rs_socket *socket, const rs_socket_endpoint *to, const void *data,
                       size_t len, rs_socket_on_write_completed_fn *on_complete, void *user_data)
{
    if (!socket || !to || !data || len == 0 || !on_complete) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (socket->options.type != RS_SOCKET_DGRAM) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (check_loop_thread(socket) != 0) {
        return -1;
    }
    /* Bound, not connected, not closed: a socket on a loop that is neither
     * connected nor listening is a bound datagram socket. */
    if (rs__socket_state(socket) != RS__SOCKET_BOUND) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    rs_socket_domain domain = socket->options.domain;
    if (rs__endpoint_validate(to, domain, false) != 0) {
        return -1;
    }
    if (len > max_datagram_to(domain, to)) {
        return rs_raise(RS_ERROR_MESSAGE_TOO_LARGE);
    }
    struct rs__sockaddr_ip dest;
    size_t dest_len = 0;
    if (rs__sockaddr_ip_from_endpoint(domain, to, &dest, &dest_len) != 0) {
        return -1;
    }
    struct rs__socket_write *req = take_write(socket, data, len, on_complete, user_data);
    if (!req) {
        return -1;
    }
    req->to = dest;
    req->to_len = (uint8_t)dest_len;
    return submit_write(socket, req);
}
