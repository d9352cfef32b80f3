/*
 * IOCP backend, sockets: creation, addresses, options, bind, listen, the
 * dispatch to the TCP, UDP and LOCAL (named pipe) halves, close, and the
 * bookkeeping of overlapped operations every kind shares (see iocp_socket.h
 * for the completion and orphan rules).
 */
#include "iocp_socket.h"

#include "../../common/address.h"
#include "../../common/alloc.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <mstcpip.h>
#include <string.h>

/* ---- operations ---- */

struct rs__iocp_sock_op *rs__iocp_sock_op_new(size_t cap)
{
    struct rs__iocp_sock_op *op = rs__mem_calloc(1, sizeof *op + cap);
    if (op) {
        op->cap = cap;
        op->accepted = INVALID_SOCKET;
    }
    return op;
}

void rs__iocp_sock_op_free(struct rs__iocp_sock_op *op)
{
    if (!op) {
        return;
    }
    if (op->accepted != INVALID_SOCKET) {
        closesocket(op->accepted);
    }
    if (op->pipe) {
        CloseHandle(op->pipe);
    }
    if (op->event) {
        CloseHandle(op->event);
    }
    rs__mem_release(op);
}

void rs__iocp_sock_op_unlink(struct rs__iocp_socket *im, struct rs__iocp_sock_op *op)
{
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        im->ops_head = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    } else {
        im->ops_tail = op->prev;
    }
    op->prev = op->next = NULL;
}

/* A socket (AFD) and a named pipe give STATUS_PIPE_DISCONNECTED different
 * meanings; an orphaned operation's error only tells success from failure. */
static int completion_error(const rs_socket *s, uint32_t status)
{
    bool pipe = !s || ((const struct rs__iocp_socket *)s->impl)->kind == RS__IOCP_PIPE;
    return pipe ? rs__iocp_error_from_ntstatus(status)
                : rs__iocp_error_from_socket_ntstatus(status);
}

static void op_completed(rs_event_loop *loop, struct rs__iocp_op *base, uint32_t status,
                         size_t bytes)
{
    (void)loop;
    struct rs__iocp_sock_op *op = (struct rs__iocp_sock_op *)base;
    rs_socket *s = op->socket;
    int error = op->posted ? op->posted_error : completion_error(s, status);
    if (!s) {
        rs__iocp_loop_orphans_add(op->loop, -1);
        if (op->req) {
            /* A write that the system took whole before the close (a send
             * that succeeded at once, its completion not yet dispatched) is
             * reported as written, as the libevent backend reports a write
             * the kernel took; anything else ended with the close. The
             * request's reference keeps the socket's state alive. */
            bool whole = error == 0 && bytes == op->chunk_len;
            rs__iocp_write_finished(op->req->socket->impl, op, whole ? 0 : RS_ERROR_SOCKET_CLOSED,
                                    bytes);
            return;
        }
        rs__iocp_sock_op_free(op);
        return;
    }
    rs__iocp_sock_op_unlink(s->impl, op);
    /* The handler may run the user's callbacks, which may destroy the socket. */
    rs__socket_acquire(s);
    op->handler(s, op, error, bytes);
    rs__socket_release(s);
}

void rs__iocp_sock_op_start(rs_socket *s, struct rs__iocp_sock_op *op, rs__iocp_sock_op_fn *handler)
{
    struct rs__iocp_socket *im = s->impl;
    /* The OVERLAPPED must be zeroed before every new operation. */
    rs__iocp_op_init(&op->base, op_completed, NULL);
    op->handler = handler;
    op->socket = s;
    op->loop = s->loop;
    op->posted = false;
    op->posted_error = 0;
    op->prev = im->ops_tail;
    op->next = NULL;
    if (im->ops_tail) {
        im->ops_tail->next = op;
    } else {
        im->ops_head = op;
    }
    im->ops_tail = op;
}

/* Takes the parts of a write that could not be issued whole (from first
 * to the tail of the queue) off the queue of writes again. */
static void drop_writes_from(struct rs__iocp_socket *im, struct rs__iocp_sock_op *first)
{
    struct rs__iocp_sock_op *prev = NULL;
    for (struct rs__iocp_sock_op *op = im->writes_head; op != first; op = op->next_write) {
        prev = op;
    }
    if (prev) {
        prev->next_write = NULL;
    } else {
        im->writes_head = NULL;
    }
    im->writes_tail = prev;
    while (first) {
        struct rs__iocp_sock_op *next = first->next_write;
        first->req = NULL;
        rs__iocp_sock_op_free(first);
        first = next;
    }
}

static void queue_write_op(struct rs__iocp_socket *im, struct rs__iocp_sock_op *op)
{
    if (im->writes_tail) {
        im->writes_tail->next_write = op;
    } else {
        im->writes_head = op;
    }
    im->writes_tail = op;
}

/* The parts of a vectored write: each ends at chunk bytes or max_bufs
 * buffers, whichever comes first, and records where in the buffers it
 * starts. common/ leaves no empty buffer in req->bufs. */
static struct rs__iocp_sock_op *write_ops_new_vec(struct rs__iocp_socket *im,
                                                  struct rs__socket_write *req, size_t chunk,
                                                  size_t max_bufs)
{
    struct rs__iocp_sock_op *first = NULL;
    size_t index = 0;
    size_t buf_off = 0;
    for (size_t off = 0; off < req->len;) {
        struct rs__iocp_sock_op *op = rs__iocp_sock_op_new(0);
        if (!op) {
            if (first) {
                drop_writes_from(im, first);
            }
            return NULL;
        }
        op->req = req;
        op->chunk_off = off;
        op->buf_index = index;
        op->buf_off = buf_off;
        size_t bytes = 0;
        for (size_t n = 0; index < req->nbufs && n < max_bufs && bytes < chunk; n++) {
            size_t left = req->bufs[index].len - buf_off;
            size_t take = left < chunk - bytes ? left : chunk - bytes;
            bytes += take;
            if (take == left) {
                index++;
                buf_off = 0;
            } else {
                buf_off += take;
            }
        }
        op->chunk_len = bytes;
        off += bytes;
        op->last_chunk = off == req->len;
        queue_write_op(im, op);
        if (!first) {
            first = op;
        }
    }
    return first;
}

struct rs__iocp_sock_op *rs__iocp_write_ops_new(rs_socket *s, struct rs__socket_write *req,
                                                size_t max_bufs)
{
    struct rs__iocp_socket *im = s->impl;
    /* A datagram is one send (common/ bounds its size and its buffers).
     * Every part is allocated before any is issued, so that running out of
     * memory fails the call with nothing sent. */
    bool stream = s->options.type == RS_SOCKET_STREAM;
    size_t chunk = stream ? RS__IOCP_SEND_CHUNK : req->len;
    if (req->bufs) {
        return write_ops_new_vec(im, req, chunk, stream ? max_bufs : req->nbufs);
    }
    struct rs__iocp_sock_op *first = NULL;
    for (size_t off = 0; off < req->len; off += chunk) {
        struct rs__iocp_sock_op *op = rs__iocp_sock_op_new(0);
        if (!op) {
            if (first) {
                drop_writes_from(im, first);
            }
            return NULL;
        }
        op->req = req;
        op->chunk_off = off;
        op->chunk_len = req->len - off < chunk ? req->len - off : chunk;
        op->last_chunk = off + op->chunk_len == req->len;
        queue_write_op(im, op);
        if (!first) {
            first = op;
        }
    }
    return first;
}

void rs__iocp_write_finished(struct rs__iocp_socket *im, struct rs__iocp_sock_op *op, int error,
                             size_t bytes)
{
    op->finished = true;
    op->error = error;
    op->bytes = bytes;
    while (im->writes_head && im->writes_head->finished) {
        struct rs__iocp_sock_op *head = im->writes_head;
        im->writes_head = head->next_write;
        if (!im->writes_head) {
            im->writes_tail = NULL;
        }
        /* A write's parts are consecutive in the queue; the first error of
         * its parts is the write's. common/ set written and error to 0. */
        struct rs__socket_write *req = head->req;
        req->written += head->bytes;
        if (head->error && !req->error) {
            req->error = head->error;
        }
        bool last = head->last_chunk;
        head->req = NULL;
        rs__iocp_sock_op_free(head);
        if (last) {
            /* Deferred to the loop's next iteration: never a user callback
             * from here. */
            rs__socket_write_done(req, req->error);
        }
    }
}

struct rs__iocp_sock_op *rs__iocp_read_start(rs_socket *s, rs__iocp_sock_op_fn *handler)
{
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_sock_op_start(s, im->read_op, handler);
    rs__iocp_set(im, RS__IOCP_F_READ_IN_FLIGHT, true);
    return im->read_op;
}

void rs__iocp_sock_op_succeeded(struct rs__iocp_sock_op *op)
{
    struct rs__iocp_socket *im = op->socket->impl;
    if (rs__iocp_is(im, RS__IOCP_F_SKIP)) {
        /* The byte count of a request that completed without error is in
         * the OVERLAPPED's InternalHigh (OVERLAPPED's documentation), the
         * same number the call's own out-parameter would give. */
        rs__iocp_complete_inline(op->loop, &op->base, (DWORD)op->base.overlapped.InternalHigh);
    }
}

bool rs__iocp_take_held(struct rs__iocp_socket *im, void *buffer, size_t len, size_t *amount_read)
{
    struct rs__iocp_sock_op *op = im->read_op;
    size_t n = op->len - op->off;
    if (n > len) {
        n = len;
    }
    memcpy(buffer, op->buf + op->off, n);
    op->off += n;
    *amount_read = n;
    if (op->off < op->len) {
        return false;
    }
    rs__iocp_set(im, RS__IOCP_F_READ_READY, false);
    return true;
}

void rs__iocp_sock_op_complete(struct rs__iocp_sock_op *op, int error)
{
    op->posted = true;
    op->posted_error = error;
    /* A call that fails at once queues no packet; this one stands in for it
     * so that the result, too, is reported once and never inside the call. */
    if (rs__iocp_post_completion(op->loop, &op->base) != 0) {
        RS__LOG(RS_LOG_ERROR, "socket operation lost: its completion could not be queued: %s",
                rs__error_name(rs__last_error()));
    }
}

/* Detaches op, which is off the socket's list, from the socket; op frees
 * itself when its (cancelled) completion is dequeued. A write completes then
 * too, with RS_ERROR_SOCKET_CLOSED: until that completion the system may
 * still read the caller's buffer (WSASend's contract), so the caller must not
 * hear about it earlier. */
static void orphan(struct rs__iocp_socket *im, struct rs__iocp_sock_op *op)
{
    if (op == im->read_op) {
        im->read_op = NULL;
    }
    op->socket = NULL;
    rs__iocp_loop_orphans_add(op->loop, 1);
}

/* Orphans every operation in flight, oldest first (writes complete in
 * order). Their handle is cancelled or closed already. */
static void orphan_all(struct rs__iocp_socket *im)
{
    struct rs__iocp_sock_op *op = im->ops_head;
    im->ops_head = im->ops_tail = NULL;
    while (op) {
        struct rs__iocp_sock_op *next = op->next;
        op->prev = op->next = NULL;
        orphan(im, op);
        op = next;
    }
}

/* Cancels and orphans the writes in flight (shutdown of the sending side). */
static void cancel_writes(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    struct rs__iocp_sock_op *op = im->ops_head;
    while (op) {
        struct rs__iocp_sock_op *next = op->next;
        if (op->req) {
            CancelIoEx((HANDLE)im->sock, &op->base.overlapped);
            rs__iocp_sock_op_unlink(im, op);
            orphan(im, op);
        }
        op = next;
    }
    rs__iocp_fail_held_sends(s);
}

/* ---- addresses ---- */

int rs__iocp_getsockname(SOCKET sock, SOCKADDR_STORAGE *ss, int *len)
{
    *len = (int)sizeof *ss;
    memset(ss, 0, sizeof *ss);
    if (getsockname(sock, (struct sockaddr *)ss, len) != 0) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    return 0;
}

int rs__iocp_set_local_from_socket(rs_socket *s, SOCKET sock)
{
    SOCKADDR_STORAGE ss;
    int len = 0;
    if (rs__iocp_getsockname(sock, &ss, &len) != 0) {
        return -1;
    }
    rs__socket_set_local(s, (const struct sockaddr *)&ss, (size_t)len);
    return 0;
}

/* ---- options ---- */

/* rs__os_socket_apply_options (common/os_socket.c), shared with the libevent
 * backend built for Windows; for a LOCAL socket (a named pipe) only the
 * option-fault hook applies. */

/* ---- life cycle ---- */

struct rs__iocp_socket *rs__iocp_socket_impl_new(enum rs__iocp_kind kind)
{
    struct rs__iocp_socket *im = rs__mem_calloc(1, sizeof *im);
    if (im) {
        im->kind = kind;
        im->sock = INVALID_SOCKET;
        im->pipe = INVALID_HANDLE_VALUE;
    }
    return im;
}

/* Closes what im holds and frees it. */
static void impl_free(struct rs__iocp_socket *im)
{
    if (im->sock != INVALID_SOCKET) {
        closesocket(im->sock);
    }
    if (im->pipe != INVALID_HANDLE_VALUE) {
        CloseHandle(im->pipe);
    }
    rs__iocp_sock_op_free(im->read_op);
    rs__mem_release(im->pipe_name);
    rs__mem_release(im);
}

SOCKET rs__iocp_socket_open(rs_socket_domain domain, rs_socket_type type)
{
    int family = domain == RS_SOCKET_IPV4 ? AF_INET : AF_INET6;
    int proto = type == RS_SOCKET_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
    /* WSA_FLAG_NO_HANDLE_INHERIT: no child process started meanwhile may
     * inherit the socket. */
    SOCKET sock = WSASocketW(family, type == RS_SOCKET_STREAM ? SOCK_STREAM : SOCK_DGRAM, proto,
                             NULL, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (sock == INVALID_SOCKET) {
        rs__iocp_raise_wsa(WSAGetLastError());
    }
    return sock;
}

rs_socket *rs__iocp_socket_new_accepted(rs_socket *listener, struct rs__iocp_socket *im)
{
    rs_socket *a = rs__socket_new_accepted(listener, im);
    if (!a) {
        impl_free(im);
        return NULL;
    }
    rs__iocp_socket_init_tasks(a);
    return a;
}

static enum rs__iocp_kind kind_of(const rs_socket_options *o)
{
    if (o->domain == RS_SOCKET_LOCAL) {
        return RS__IOCP_PIPE;
    }
    return o->type == RS_SOCKET_STREAM ? RS__IOCP_TCP : RS__IOCP_UDP;
}

static void retry_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    rs_socket *s = arg;
    struct rs__iocp_socket *im = s->impl;
    if (status == RS_TASK_STATUS_RUN && rs__iocp_is(im, RS__IOCP_F_RETRY_ARMED)) {
        rs__iocp_set(im, RS__IOCP_F_RETRY_ARMED, false);
        if (im->kind == RS__IOCP_PIPE) {
            rs__iocp_pipe_retry(s);
        } else {
            rs__iocp_send_retry(s);
        }
    }
    rs__socket_release(s);
}

void rs__iocp_arm_retry(rs_socket *s, uint64_t delay_ns)
{
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_set(im, RS__IOCP_F_RETRY_ARMED, true);
    rs__socket_acquire(s);
    if (rs__event_loop_schedule_at(s->loop, &im->retry_task, rs__clock_now_ns() + delay_ns) != 0) {
        rs__iocp_set(im, RS__IOCP_F_RETRY_ARMED, false);
        rs__socket_release(s);
    }
}

void rs__iocp_socket_init_tasks(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    rs__task_init(&im->accept_task, rs__iocp_accept_task, s, "socket accept");
    rs__task_init(&im->retry_task, retry_task, s,
                  im->kind == RS__IOCP_PIPE ? "pipe connect retry" : "socket send retry");
}

/* The record is allocated apart (rs__iocp_socket_impl_new): an accepted
 * one exists before its socket, from the AcceptEx that fills it. */
size_t rs__backend_socket_impl_size(void)
{
    return 0;
}

int rs__backend_socket_init(rs_socket *s)
{
    const rs_socket_options *o = &s->options;
    struct rs__iocp_socket *im = rs__iocp_socket_impl_new(kind_of(o));
    if (!im) {
        return -1;
    }
    /* A LOCAL socket gets its handle from bind (a pipe instance) or connect
     * (the client end). */
    if (im->kind != RS__IOCP_PIPE) {
        im->sock = rs__iocp_socket_open(o->domain, o->type);
        if (im->sock == INVALID_SOCKET) {
            rs__mem_release(im);
            return -1;
        }
        /* IPV6_V6ONLY defaults on on Windows and off on Linux: always set,
         * so that the option means the same on every system. */
        if (o->domain == RS_SOCKET_IPV6 && rs__os_socket_set_v6only(im->sock, o) != 0) {
            impl_free(im);
            return -1;
        }
        if (im->kind == RS__IOCP_UDP) {
            rs__os_socket_udp_report_unreachable(im->sock, false);
            rs__os_socket_udp_ignore_net_reset(im->sock);
        }
    }
    s->impl = im;
    rs__iocp_socket_init_tasks(s);
    return 0;
}

void rs__backend_socket_clean_up(rs_socket *s)
{
    if (s->impl) {
        impl_free(s->impl);
        s->impl = NULL;
    }
}

int rs__backend_socket_bind(rs_socket *s, const rs_socket_endpoint *local)
{
    struct rs__iocp_socket *im = s->impl;
    const rs_socket_options *o = &s->options;
    if (im->kind == RS__IOCP_PIPE) {
        return rs__iocp_pipe_bind(s, local);
    }
    SOCKADDR_STORAGE ss;
    size_t len = 0;
    if (rs__sockaddr_from_endpoint(o->domain, local, &ss, &len) != 0 ||
        rs__os_socket_apply_options(im->sock, o) != 0) {
        return -1;
    }
    /* RS_SOCKET_REUSE_DEFAULT sets nothing on Windows. SO_REUSEADDR would
     * let another socket bind the same port and take its connections.
     * SO_EXCLUSIVEADDRUSE forbids that, but then, as its documentation
     * warns, a listener that accepted connections and closed cannot be
     * followed by another on the same port until those connections are
     * inactive (TIME_WAIT included): a restarted server would fail with
     * RS_ERROR_ADDRESS_IN_USE for minutes. Without either option a Windows
     * listener rebinds despite TIME_WAIT, and enhanced socket security
     * (Windows Server 2003 and later) keeps processes of other users from
     * binding the port with SO_REUSEADDR (docs/windows.md). */
    if (bind(im->sock, (struct sockaddr *)&ss, (int)len) != 0) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    rs__iocp_set(im, RS__IOCP_F_BOUND, true);
    return rs__iocp_set_local_from_socket(s, im->sock);
}

int rs__backend_socket_listen(rs_socket *s, int backlog)
{
    struct rs__iocp_socket *im = s->impl;
    if (im->kind == RS__IOCP_PIPE) {
        return rs__iocp_pipe_listen(s, backlog);
    }
    if (listen(im->sock, backlog) != 0) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    im->backlog = backlog;
    return 0;
}

/* ConnectEx requires a bound socket: the wildcard address of its family,
 * port 0, lets the system pick the source as connect() would. */
static int bind_wildcard(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    SOCKADDR_STORAGE ss;
    memset(&ss, 0, sizeof ss);
    int len;
    if (s->options.domain == RS_SOCKET_IPV4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        len = (int)sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_any;
        len = (int)sizeof *sin6;
    }
    if (bind(im->sock, (struct sockaddr *)&ss, len) != 0) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    rs__iocp_set(im, RS__IOCP_F_BOUND, true);
    return 0;
}

int rs__backend_socket_connect(rs_socket *s, const rs_socket_endpoint *remote)
{
    struct rs__iocp_socket *im = s->impl;
    if (im->kind == RS__IOCP_PIPE) {
        return rs__iocp_pipe_connect(s, remote);
    }
    /* The socket address common/ parsed (s->remote). */
    memcpy(&im->remote, s->remote.ip.u.bytes, s->remote_len);
    im->remote_len = (int)s->remote_len;
    if (rs__os_socket_apply_options(im->sock, &s->options) != 0) {
        return -1;
    }
    if (im->kind == RS__IOCP_UDP) {
        return rs__iocp_udp_connect(s);
    }
    if (!rs__iocp_is(im, RS__IOCP_F_BOUND) && bind_wildcard(s) != 0) {
        return -1;
    }
    return 0;
}

int rs__iocp_socket_associate(rs_socket *s, HANDLE handle)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__iocp_associate(s->loop, handle) != 0) {
        return -1;
    }
    rs__iocp_set(im, RS__IOCP_F_ASSOCIATED, true);
    /* A TCP connection sets its mode before its first read or write
     * (rs__iocp_socket_skip_mode): one that only connects and closes never
     * pays the system call. */
    bool connection = im->kind == RS__IOCP_TCP && rs__socket_state(s) != RS__SOCKET_LISTENING;
    if (!connection) {
        rs__iocp_socket_skip_mode(s);
    }
    return 0;
}

void rs__iocp_socket_skip_mode(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (!rs__iocp_is(im, RS__IOCP_F_SKIP_DECIDED)) {
        /* Skip-on-success where allowed; every call site then handles a
         * success at once with rs__iocp_sock_op_succeeded (iocp_socket.h). */
        rs__iocp_set(im, RS__IOCP_F_SKIP_DECIDED, true);
        HANDLE h = im->kind == RS__IOCP_PIPE ? im->pipe : (HANDLE)im->sock;
        rs__iocp_set(im, RS__IOCP_F_SKIP, rs__iocp_skip_on_success(h, im->kind != RS__IOCP_PIPE));
    }
}

int rs__backend_socket_attach(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    /* The one read operation a reading socket reuses for its life is
     * allocated here, where a failure still reaches the caller: reposting it
     * after a read drained the socket has nobody to report to. */
    if (rs__socket_state(s) != RS__SOCKET_LISTENING && !im->read_op) {
        if (im->kind == RS__IOCP_TCP) {
            if (rs__iocp_tcp_new_read_op(s) != 0) {
                return -1;
            }
        } else if (!(im->read_op = rs__iocp_sock_op_new(
                         im->kind == RS__IOCP_UDP ? RS__IOCP_UDP_READ_CAP : RS__IOCP_READ_BUF))) {
            return -1;
        }
    }
    switch (im->kind) {
    case RS__IOCP_TCP:
        return rs__iocp_tcp_attach(s);
    case RS__IOCP_UDP:
        return rs__iocp_udp_attach(s);
    case RS__IOCP_PIPE:
        return rs__iocp_pipe_attach(s);
    }
    return rs__raise(RS_ERROR_INVALID_STATE);
}

/* ---- accepting (TCP and LOCAL) ---- */

bool rs__iocp_accepting(const rs_socket *s)
{
    return rs__socket_accepting(s);
}

bool rs__iocp_accept_failed(rs_socket *s, int error)
{
    if (rs__accept_error_kind(error) == RS__ACCEPT_ERROR_LISTENER) {
        rs__backend_socket_stop_accept(s); /* accepting ends: stopped before the report */
    }
    return rs__socket_accepted(s, error, NULL);
}

void rs__iocp_connect_failed(rs_socket *s, int error)
{
    rs__backend_socket_close(s); /* the OS socket goes before the report */
    rs__socket_connect_done(s, error);
}

bool rs__iocp_deliver_accepted(rs_socket *listener, rs_socket *a)
{
    struct rs__iocp_socket *im = listener->impl;
    if (!im->ready_head && rs__iocp_accepting(listener)) {
        return rs__socket_accepted(listener, 0, a);
    }
    struct rs__iocp_socket *aim = a->impl;
    aim->ready_next = NULL;
    if (im->ready_tail) {
        ((struct rs__iocp_socket *)im->ready_tail->impl)->ready_next = a;
    } else {
        im->ready_head = a;
    }
    im->ready_tail = a;
    return rs__iocp_accepting(listener);
}

void rs__iocp_schedule_accept_task(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    rs__socket_acquire(s);
    if (rs__event_loop_schedule_now(s->loop, &im->accept_task) != 0) {
        rs__socket_release(s); /* scheduled already */
    }
}

void rs__iocp_accept_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    rs_socket *s = arg;
    struct rs__iocp_socket *im = s->impl;
    if (status == RS_TASK_STATUS_RUN) {
        while (im->ready_head && rs__iocp_accepting(s)) {
            rs_socket *a = im->ready_head;
            struct rs__iocp_socket *aim = a->impl;
            im->ready_head = aim->ready_next;
            if (!im->ready_head) {
                im->ready_tail = NULL;
            }
            aim->ready_next = NULL;
            if (!rs__socket_accepted(s, 0, a)) {
                break;
            }
        }
        int error = im->accept_error;
        im->accept_error = 0;
        if (error && rs__iocp_accepting(s) && !rs__iocp_accept_failed(s, error)) {
            rs__socket_release(s);
            return;
        }
        /* After an error, posting again is left to the completions of the
         * accepts still posted or to the back-off (iocp_socket_tcp.c):
         * retrying here would spin while the handles are short. */
        if (rs__iocp_accepting(s) && !error) {
            if (im->kind == RS__IOCP_PIPE) {
                rs__iocp_pipe_start_accept(s);
            } else {
                rs__iocp_tcp_start_accept(s);
            }
        }
    }
    rs__socket_release(s);
}

int rs__backend_socket_start_accept(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    /* Connections accepted while accepting was stopped come first, from a
     * task (never inside start_accept). */
    if (im->ready_head) {
        rs__iocp_schedule_accept_task(s);
    }
    if (im->kind == RS__IOCP_PIPE) {
        return rs__iocp_pipe_start_accept(s);
    }
    return rs__iocp_tcp_start_accept(s);
}

void rs__backend_socket_stop_accept(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    /* The posted accepts stay: what they accept meanwhile waits in the
     * ready list for the next start_accept, so no connection is lost. */
    rs__event_loop_cancel_task(s->loop, &im->accept_task);
}

/* ---- I/O ---- */

int rs__backend_socket_subscribe(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (im->kind == RS__IOCP_TCP) {
        /* A TCP read is posted only from here (or a first rs_socket_read):
         * a connection nobody reads costs no receive. */
        rs__iocp_set(im, RS__IOCP_F_WANT_READ, true);
        rs__iocp_tcp_post_read(s);
    }
    return 0;
}

/* A TCP read already posted stays posted: cancelling it could lose what it
 * received. What it receives (up to the socket's read buffer; nothing in
 * zero-byte mode) is held for the next read, and no further read is posted
 * until the socket is subscribed again or read. UDP and LOCAL sockets always
 * keep one receive posted (one datagram, or up to 64 KiB of the pipe): it
 * is held the same way. */
void rs__backend_socket_unsubscribe(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_set(im, RS__IOCP_F_WANT_READ, false);
}

int rs__backend_socket_read(rs_socket *s, void *buffer, size_t len, size_t *amount_read)
{
    struct rs__iocp_socket *im = s->impl;
    switch (im->kind) {
    case RS__IOCP_TCP:
        return rs__iocp_tcp_read(s, buffer, len, amount_read);
    case RS__IOCP_UDP:
        return rs__iocp_udp_read(s, buffer, len, amount_read);
    case RS__IOCP_PIPE:
        return rs__iocp_pipe_read(s, buffer, len, amount_read);
    }
    return rs__raise(RS_ERROR_INVALID_STATE);
}

int rs__backend_socket_write(rs_socket *s, struct rs__socket_write *req)
{
    struct rs__iocp_socket *im = s->impl;
    if (im->kind == RS__IOCP_PIPE) {
        return rs__iocp_pipe_write(s, req);
    }
    return rs__iocp_wsa_write(s, req);
}

int rs__backend_socket_try_write(rs_socket *s, const void *data, size_t len, size_t *written)
{
    struct rs__iocp_socket *im = s->impl;
    if (im->kind == RS__IOCP_PIPE) {
        /* A named pipe opened for overlapped I/O has no non-blocking write
         * (PIPE_NOWAIT is documented as kept for LAN Manager 2.0
         * compatibility only, and applies to the whole handle): every write
         * is an overlapped operation with a completion. */
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    return rs__iocp_wsa_try_write(s, data, len, written);
}

int rs__backend_socket_shutdown(rs_socket *s, rs_socket_direction direction)
{
    (void)direction; /* always the writing half (common/backend.h) */
    struct rs__iocp_socket *im = s->impl;
    if (im->kind == RS__IOCP_PIPE) {
        /* A named pipe has no half-close: only closing the handle ends it. */
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    /* Writes still queued end with the sending side (socket.h). A posted
     * send is already the kernel's: cancel it before the FIN is queued. */
    cancel_writes(s);
    if (shutdown(im->sock, SD_SEND) != 0) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    return 0;
}

/* ---- close and state ---- */

/* Closes the accepted sockets nobody took: never delivered, they have no
 * loop, and nothing of them is in flight. */
static void drop_ready(struct rs__iocp_socket *im)
{
    rs_socket *a = im->ready_head;
    im->ready_head = im->ready_tail = NULL;
    while (a) {
        struct rs__iocp_socket *aim = a->impl;
        rs_socket *next = aim->ready_next;
        aim->ready_next = NULL;
        rs__backend_socket_close(a);
        impl_free(rs__socket_discard_accepted(a));
        a = next;
    }
}

/* TCP: bytes received that the application has not read, held by a
 * buffered read, or brought by one whose completion is not dequeued yet. */
static bool unread_bytes_held(const struct rs__iocp_socket *im)
{
    const struct rs__iocp_sock_op *op = im->read_op;
    if (im->kind != RS__IOCP_TCP || !op) {
        return false;
    }
    if (rs__iocp_is(im, RS__IOCP_F_READ_READY)) {
        return op->off < op->len;
    }
    return rs__iocp_is(im, RS__IOCP_F_READ_IN_FLIGHT) &&
           !rs__iocp_is(im, RS__IOCP_F_READ_CLAIMED) &&
           HasOverlappedIoCompleted(&op->base.overlapped) && op->base.overlapped.Internal == 0 &&
           op->base.overlapped.InternalHigh > 0;
}

void rs__backend_socket_close(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (s->loop) {
        rs__event_loop_cancel_task(s->loop, &im->accept_task);
        if (rs__iocp_is(im, RS__IOCP_F_RETRY_ARMED)) {
            rs__iocp_set(im, RS__IOCP_F_RETRY_ARMED, false);
            rs__event_loop_cancel_task(s->loop, &im->retry_task);
        }
    }
    if (im->kind == RS__IOCP_PIPE) {
        rs__iocp_pipe_close(s);
    } else if (im->sock != INVALID_SOCKET) {
        /* Cancelled operations still complete, and the orphans free
         * themselves then. closesocket alone is documented to cancel them,
         * but Wine 8 leaves sends waiting for buffer space pending
         * (docs/windows.md); CancelIoEx first completes every one of them. A receive alone needs no
         * CancelIoEx: closesocket completes it (cancelled, or 676 under Wine), and the call would
         * cost a system call on every close. */
        bool others = false;
        for (struct rs__iocp_sock_op *op = im->ops_head; op && !others; op = op->next) {
            others = op != im->read_op;
        }
        if (others) {
            CancelIoEx((HANDLE)im->sock, NULL);
        }
        if (unread_bytes_held(im)) {
            /* A POSIX close(2) with received bytes unread resets the
             * connection (RFC 2525 2.17), and so does Windows' closesocket
             * while the bytes are in the socket's buffer; bytes a buffered
             * read moved into reseau's memory would otherwise end in a
             * graceful close. An abortive close (SO_LINGER on, timeout 0:
             * closesocket's documentation) tells the peer as POSIX does. */
            struct linger abortive = {1, 0};
            setsockopt(im->sock, SOL_SOCKET, SO_LINGER, (const char *)&abortive, sizeof abortive);
        }
        closesocket(im->sock);
        im->sock = INVALID_SOCKET;
        rs__iocp_fail_held_sends(s);
        for (struct rs__iocp_sock_op *op = im->ops_head; op; op = op->next) {
            if (op->stalled) {
                op->stalled = false;
                rs__iocp_sock_op_complete(op, RS_ERROR_CANCELED);
            }
        }
    }
    if (im->buffered_loop) {
        /* A socket closed without a loop (its loop was destroyed under it)
         * keeps its place: that loop is gone. */
        if (im->buffered_loop == s->loop) {
            rs__iocp_loop_return_read_buffer(im->buffered_loop, im->read_tier);
        }
        im->buffered_loop = NULL;
    }
    orphan_all(im);
    /* A completed read held for rs_socket_read is no longer in flight. */
    rs__iocp_sock_op_free(im->read_op);
    im->read_op = NULL;
    rs__iocp_set(im, RS__IOCP_F_READ_IN_FLIGHT, false);
    rs__iocp_set(im, RS__IOCP_F_READ_READY, false);
    drop_ready(im);
}

int rs__backend_socket_set_options(rs_socket *s, const rs_socket_options *options)
{
    struct rs__iocp_socket *im = s->impl;
    return rs__os_socket_apply_options(im->sock, options);
}

int rs__backend_socket_get_tcp_nodelay(const rs_socket *s, bool *on)
{
    const struct rs__iocp_socket *im = s->impl;
    if (im->kind == RS__IOCP_PIPE) {
        /* As getsockopt(TCP_NODELAY) on a Unix socket (EOPNOTSUPP). */
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    DWORD value = 0;
    int len = (int)sizeof value;
    if (getsockopt(im->sock, IPPROTO_TCP, TCP_NODELAY, (char *)&value, &len) != 0) {
        return rs__iocp_raise_wsa(WSAGetLastError());
    }
    *on = value != 0;
    return 0;
}

int rs__backend_socket_resolve_local(const rs_socket *s, struct rs__sockaddr_ip *out, size_t *len)
{
    const struct rs__iocp_socket *im = s->impl;
    SOCKADDR_STORAGE ss;
    int ss_len = 0;
    if (im->kind == RS__IOCP_PIPE || rs__iocp_getsockname(im->sock, &ss, &ss_len) != 0) {
        return im->kind == RS__IOCP_PIPE ? rs__raise(RS_ERROR_INVALID_STATE) : -1;
    }
    if ((size_t)ss_len > sizeof out->u.bytes) {
        return rs__raise(RS_ERROR_INVALID_STATE);
    }
    memcpy(out->u.bytes, &ss, (size_t)ss_len);
    *len = (size_t)ss_len;
    return 0;
}

int rs__backend_socket_get_error(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (im->kind == RS__IOCP_PIPE) {
        return 0;
    }
    int value = 0;
    int len = (int)sizeof value;
    if (getsockopt(im->sock, SOL_SOCKET, SO_ERROR, (char *)&value, &len) != 0) {
        return rs__iocp_error_from_wsa(WSAGetLastError());
    }
    return rs__iocp_error_from_wsa(value);
}
