/*
 * IOCP backend, LOCAL stream sockets as named pipes (\\.\pipe\NAME).
 *
 * A listener is a set of pipe instances: bind creates the first (with
 * FILE_FLAG_FIRST_PIPE_INSTANCE, so a taken name fails as an address in
 * use), listen more, up to the backlog (at most MAX_INSTANCES). A client's
 * CreateFile connects to any instance that is listening, even before
 * start_accept; ConnectNamedPipe then reports it.
 *
 * An instance becomes the accepted socket, which may be given any loop, and
 * a handle is associated with one completion port for its whole life (Wine
 * cannot move it: no FileReplaceCompletionInformation). So a waiting
 * instance is associated with no port: ConnectNamedPipe signals an event,
 * a thread-pool wait turns the signal into a packet on the listener's loop,
 * and the connected instance is associated only with its final loop, once
 * (W15).
 *
 * Reads go into a 64 KiB buffer the socket owns (a zero-byte read is not a
 * documented readiness signal on a pipe): the completion is "readable",
 * rs_socket_read hands the bytes out and posts the next read once the
 * buffer is empty. The end of stream is the broken pipe.
 */
#include "iocp_socket.h"

#include "../../common/alloc.h"
#include "../../common/atomics.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <string.h>

/* Instances kept listening per listener: the pipe's accept backlog (a
 * client that finds them all taken retries, see BUSY_RETRY_NS). */
#define MAX_INSTANCES 8
/* Each instance's buffer quota, per direction. */
#define PIPE_BUFFER (64u * 1024u)
/* How soon a connect that found every instance busy tries again (its
 * connect timeout still bounds the whole attempt). */
#define BUSY_RETRY_NS (5u * 1000000u)

static wchar_t *widen(const char *name)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, NULL, 0);
    if (n <= 0) {
        return rs__raise_null(RS_ERROR_FILE_INVALID_PATH);
    }
    wchar_t *w = rs__mem_calloc((size_t)n, sizeof *w);
    if (w && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, w, n) != n) {
        rs__mem_release(w);
        return rs__raise_null(RS_ERROR_FILE_INVALID_PATH);
    }
    return w;
}

/* A new instance of the listener's pipe, as an idle accept operation. */
static struct rs__iocp_sock_op *new_instance(struct rs__iocp_socket *im, bool first)
{
    struct rs__iocp_sock_op *op = rs__iocp_sock_op_new(0);
    if (!op) {
        return NULL;
    }
    /* PIPE_REJECT_REMOTE_CLIENTS: a LOCAL socket is for this machine only.
     * The explicit security descriptor: only this user, LocalSystem and
     * Administrators may connect (the default one lets Everyone and
     * Anonymous read, iocp_security.c). */
    DWORD open_mode =
        PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
    DWORD pipe_mode = PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS;
    HANDLE h = CreateNamedPipeW(im->pipe_name, open_mode, pipe_mode, PIPE_UNLIMITED_INSTANCES,
                                PIPE_BUFFER, PIPE_BUFFER, 0, rs__iocp_pipe_security());
    if (h == INVALID_HANDLE_VALUE) {
        int code = rs__iocp_error_from_pipe_create(GetLastError());
        rs__iocp_sock_op_free(op);
        return rs__raise_null(code);
    }
    op->pipe = h;
    /* Manual reset: ConnectNamedPipe resets it when it starts. */
    op->event = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!op->event) {
        int code = rs__iocp_error_from_win32(GetLastError());
        rs__iocp_sock_op_free(op);
        return rs__raise_null(code);
    }
    return op;
}

int rs__iocp_pipe_bind(rs_socket *s, const rs_socket_endpoint *local)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__os_socket_apply_options(INVALID_SOCKET, &s->options) != 0) {
        return -1;
    }
    im->pipe_name = widen(local->address);
    if (!im->pipe_name) {
        return -1;
    }
    struct rs__iocp_sock_op *op = new_instance(im, true);
    if (!op) {
        rs__mem_release(im->pipe_name);
        im->pipe_name = NULL;
        return -1;
    }
    im->idle_instances = op;
    rs__socket_set_local_path(s, local->address);
    return 0;
}

int rs__iocp_pipe_listen(rs_socket *s, int backlog)
{
    struct rs__iocp_socket *im = s->impl;
    im->backlog = backlog < MAX_INSTANCES ? backlog : MAX_INSTANCES;
    for (int i = 1; i < im->backlog; i++) {
        struct rs__iocp_sock_op *op = new_instance(im, false);
        if (!op) {
            return -1;
        }
        op->next = im->idle_instances;
        im->idle_instances = op;
    }
    return 0;
}

/* ---- accept ---- */

/* Thread pool: ConnectNamedPipe finished (its event is signalled). */
static VOID CALLBACK instance_signalled(PVOID arg, BOOLEAN timed_out)
{
    (void)timed_out;
    struct rs__iocp_sock_op *op = arg;
    DWORD bytes = 0;
    int error = GetOverlappedResult(op->pipe, &op->base.overlapped, &bytes, FALSE)
                    ? 0
                    : rs__iocp_error_from_win32(GetLastError());
    /* Claimed before posting: a close that finds it set leaves the op to
     * its packet. Nothing touches op after the post. */
    rs__atomic_store(&op->wait_fired, 1);
    rs__iocp_sock_op_complete(op, error);
}

static void instance_connected(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes);

/* Starts ConnectNamedPipe on an idle instance. */
static void wait_for_client(rs_socket *s, struct rs__iocp_sock_op *op)
{
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_sock_op_start(s, op, instance_connected);
    op->base.overlapped.hEvent = op->event;
    op->wait_fired = 0;
    im->accepts_posted++;
    if (ConnectNamedPipe(op->pipe, &op->base.overlapped)) {
        rs__iocp_sock_op_complete(op, 0);
        return;
    }
    DWORD err = GetLastError();
    if (err == ERROR_PIPE_CONNECTED) {
        /* The client connected between CreateNamedPipe and ConnectNamedPipe:
         * the call reports it and posts no completion (its documentation),
         * so this packet is the accept's only report. */
        rs__iocp_sock_op_complete(op, 0);
    } else if (err != ERROR_IO_PENDING) {
        rs__iocp_sock_op_complete(op, rs__iocp_error_from_win32(err));
    } else if (!RegisterWaitForSingleObject(&op->wait, op->event, instance_signalled, op, INFINITE,
                                            WT_EXECUTEONLYONCE)) {
        RS__LOG(RS_LOG_ERROR, "RegisterWaitForSingleObject failed: %lu",
                (unsigned long)GetLastError());
        op->wait = NULL;
        CancelIoEx(op->pipe, &op->base.overlapped);
        DWORD ignored;
        GetOverlappedResult(op->pipe, &op->base.overlapped, &ignored, TRUE);
        rs__iocp_sock_op_complete(op, RS_ERROR_SYS_CALL_FAILURE);
    }
}

int rs__iocp_pipe_start_accept(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    while (rs__iocp_accepting(s) && im->accepts_posted < im->backlog) {
        struct rs__iocp_sock_op *op = im->idle_instances;
        if (op) {
            im->idle_instances = op->next;
            op->next = NULL;
        } else if (!(op = new_instance(im, false))) {
            if (im->accepts_posted == 0) {
                rs__iocp_accept_failed(s, rs__last_error());
            }
            return 0;
        }
        wait_for_client(s, op);
    }
    return 0;
}

/* A pipe has one name: both ends report it, as the connecting side names
 * the path it connected to (rs__socket_new_accepted). */
static rs_socket *wrap_instance(rs_socket *listener, HANDLE pipe)
{
    struct rs__iocp_socket *im = NULL;
    if (rs__os_socket_apply_options(INVALID_SOCKET, &listener->options) != 0 ||
        !(im = rs__iocp_socket_impl_new(RS__IOCP_PIPE))) {
        CloseHandle(pipe);
        return NULL;
    }
    im->pipe = pipe;
    return rs__iocp_socket_new_accepted(listener, im);
}

static void instance_connected(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes)
{
    (void)bytes;
    struct rs__iocp_socket *im = s->impl;
    im->accepts_posted--;
    if (op->wait) {
        /* WT_EXECUTEONLYONCE still needs the wait unregistered; its callback
         * has posted already and touches op no more. */
        UnregisterWait(op->wait);
        op->wait = NULL;
    }
    if (error) {
        /* ERROR_NO_DATA: the client connected and left before the accept;
         * the instance is spent and replaced. */
        rs__iocp_sock_op_free(op);
        rs__iocp_pipe_start_accept(s);
        return;
    }
    HANDLE pipe = op->pipe;
    op->pipe = NULL;
    rs__iocp_sock_op_free(op);
    rs_socket *a = wrap_instance(s, pipe);
    if (a) {
        rs__iocp_deliver_accepted(s, a);
    } else {
        RS__LOG(RS_LOG_WARN, "accepted pipe connection dropped: %s",
                rs__error_name(rs__last_error()));
    }
    rs__iocp_pipe_start_accept(s);
}

/* ---- client ---- */

static HANDLE open_pipe(const wchar_t *name)
{
    /* SECURITY_IDENTIFICATION: the server may learn who connected but not
     * act as the client. */
    return CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                       FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                       NULL);
}

int rs__iocp_pipe_connect(rs_socket *s, const rs_socket_endpoint *remote)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__os_socket_apply_options(INVALID_SOCKET, &s->options) != 0) {
        return -1;
    }
    wchar_t *name = widen(remote->address);
    if (!name) {
        return -1;
    }
    HANDLE h = open_pipe(name);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        /* Every instance is taken: the attempt goes on from the loop, within
         * the connect timeout, as a Unix socket connect waits for room in
         * the backlog. */
        if (err == ERROR_PIPE_BUSY) {
            rs__mem_release(im->pipe_name);
            im->pipe_name = name;
            rs__iocp_set(im, RS__IOCP_F_PIPE_BUSY, true);
            return 0;
        }
        rs__mem_release(name);
        return rs__raise(rs__iocp_error_from_pipe_open(err));
    }
    rs__mem_release(name);
    im->pipe = h;
    rs__iocp_set(im, RS__IOCP_F_PIPE_BUSY, false);
    return 0;
}

static void post_read(rs_socket *s);

/* The client end is open: register it and report the connection. */
static void client_connected(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__iocp_socket_associate(s, im->pipe) != 0) {
        rs__iocp_connect_failed(s, rs__last_error());
        return;
    }
    rs__socket_set_local_path(s, ""); /* a client end has no name of its own */
    post_read(s);
    rs__socket_connect_done(s, 0);
}

void rs__iocp_pipe_retry(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    HANDLE h = open_pipe(im->pipe_name);
    if (h != INVALID_HANDLE_VALUE) {
        im->pipe = h;
        rs__iocp_set(im, RS__IOCP_F_PIPE_BUSY, false);
        client_connected(s);
        return;
    }
    DWORD err = GetLastError();
    if (err == ERROR_PIPE_BUSY) {
        rs__iocp_arm_retry(s, BUSY_RETRY_NS);
    } else {
        rs__iocp_connect_failed(s, rs__iocp_error_from_pipe_open(err));
    }
}

int rs__iocp_pipe_attach(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    enum rs__socket_state state = rs__socket_state(s);
    /* A listener's instances are never associated (see above). */
    if (state == RS__SOCKET_LISTENING) {
        return 0;
    }
    if (state == RS__SOCKET_CONNECTING) {
        if (rs__iocp_is(im, RS__IOCP_F_PIPE_BUSY)) {
            rs__iocp_arm_retry(s, BUSY_RETRY_NS);
        } else {
            client_connected(s);
        }
        return 0;
    }
    if (im->pipe == INVALID_HANDLE_VALUE) {
        return rs__raise(RS_ERROR_INVALID_STATE);
    }
    if (rs__iocp_socket_associate(s, im->pipe) != 0) {
        return -1;
    }
    post_read(s);
    return 0;
}

/* ---- reads and writes ---- */

static void received(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes)
{
    struct rs__iocp_socket *im = s->impl;
    rs__iocp_set(im, RS__IOCP_F_READ_IN_FLIGHT, false);
    if (error == 0 && bytes == 0) {
        /* A zero-length write of the peer: nothing to report. */
        post_read(s);
        return;
    }
    rs__iocp_set(im, RS__IOCP_F_READ_READY, true);
    op->len = bytes;
    op->off = 0;
    op->error = error;
    rs__socket_readable(s);
}

static void post_read(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    if (!rs__iocp_is(im, RS__IOCP_F_ASSOCIATED) ||
        rs__iocp_any(im, RS__IOCP_F_READ_IN_FLIGHT | RS__IOCP_F_READ_READY | RS__IOCP_F_EOF) ||
        im->pipe == INVALID_HANDLE_VALUE) {
        return;
    }
    struct rs__iocp_sock_op *op = rs__iocp_read_start(s, received);
    if (ReadFile(im->pipe, op->buf, (DWORD)op->cap, NULL, &op->base.overlapped)) {
        rs__iocp_sock_op_succeeded(op);
    } else {
        DWORD err = GetLastError();
        if (err != ERROR_IO_PENDING) {
            rs__iocp_sock_op_complete(op, rs__iocp_error_from_win32(err));
        }
    }
}

int rs__iocp_pipe_read(rs_socket *s, void *buffer, size_t len, size_t *amount_read)
{
    struct rs__iocp_socket *im = s->impl;
    if (rs__iocp_is(im, RS__IOCP_F_EOF)) {
        return rs__raise(RS_ERROR_SOCKET_CLOSED);
    }
    if (!rs__iocp_is(im, RS__IOCP_F_READ_READY)) {
        post_read(s);
        return rs__raise(RS_ERROR_WOULD_BLOCK);
    }
    struct rs__iocp_sock_op *op = im->read_op;
    if (op->error) {
        /* The writer closed its end: the stream ended after every byte. */
        if (op->error == RS_ERROR_BROKEN_PIPE) {
            rs__iocp_set(im, RS__IOCP_F_EOF, true);
            return rs__raise(RS_ERROR_SOCKET_CLOSED);
        }
        return rs__raise(op->error);
    }
    if (rs__iocp_take_held(im, buffer, len, amount_read)) {
        post_read(s);
    }
    return 0;
}

static void pipe_written(rs_socket *s, struct rs__iocp_sock_op *op, int error, size_t bytes)
{
    rs__iocp_write_completed(s, op, rs__iocp_error_for_pipe_socket(error), bytes);
}

int rs__iocp_pipe_write(rs_socket *s, struct rs__socket_write *req)
{
    struct rs__iocp_socket *im = s->impl;
    if (!rs__iocp_is(im, RS__IOCP_F_ASSOCIATED) || im->pipe == INVALID_HANDLE_VALUE) {
        return rs__raise(RS_ERROR_INVALID_STATE);
    }
    /* WriteFile takes a DWORD length: a longer write goes in parts. It has
     * no gather either: a vectored write is one WriteFile per buffer, all
     * issued now, rather than a copy into one buffer, which would double
     * the memory of a large write; the parts complete in order and the
     * queue of writes reports them as the one write. */
    struct rs__iocp_sock_op *first = rs__iocp_write_ops_new(s, req, 1);
    if (!first) {
        return -1;
    }
    for (struct rs__iocp_sock_op *op = first; op; op = op->next_write) {
        rs__iocp_sock_op_start(s, op, pipe_written);
        /* Overlapped writes on one pipe handle complete in the order issued. */
        const unsigned char *data =
            req->bufs ? (const unsigned char *)req->bufs[op->buf_index].base + op->buf_off
                      : req->data + op->chunk_off;
        if (WriteFile(im->pipe, data, (DWORD)op->chunk_len, NULL, &op->base.overlapped)) {
            rs__iocp_sock_op_succeeded(op);
        } else {
            DWORD err = GetLastError();
            if (err != ERROR_IO_PENDING) {
                rs__iocp_sock_op_complete(op, rs__iocp_error_from_win32(err));
            }
        }
    }
    return 0;
}

/* ---- close ---- */

/* Ends a listener's waiting instance. One whose packet is posted (or will
 * be) stays in the socket's list to be orphaned; the others are cancelled
 * and freed here, once the kernel is done with their OVERLAPPED. */
static bool close_instance(struct rs__iocp_socket *im, struct rs__iocp_sock_op *op)
{
    if (!op->wait) {
        return false; /* completed at once: its packet is queued */
    }
    /* INVALID_HANDLE_VALUE: return only once a running callback is done, so
     * wait_fired is final. */
    UnregisterWaitEx(op->wait, INVALID_HANDLE_VALUE);
    op->wait = NULL;
    if (rs__atomic_load(&op->wait_fired)) {
        return false;
    }
    im->accepts_posted--;
    CancelIoEx(op->pipe, &op->base.overlapped);
    DWORD ignored;
    GetOverlappedResult(op->pipe, &op->base.overlapped, &ignored, TRUE);
    return true;
}

void rs__iocp_pipe_close(rs_socket *s)
{
    struct rs__iocp_socket *im = s->impl;
    struct rs__iocp_sock_op *op = im->ops_head;
    while (op) {
        struct rs__iocp_sock_op *next = op->next;
        if (op->event && close_instance(im, op)) {
            rs__iocp_sock_op_unlink(im, op);
            rs__iocp_sock_op_free(op);
        }
        op = next;
    }
    while (im->idle_instances) {
        op = im->idle_instances;
        im->idle_instances = op->next;
        rs__iocp_sock_op_free(op);
    }
    if (im->pipe != INVALID_HANDLE_VALUE) {
        /* Pending reads and writes complete as cancelled; the orphans free
         * themselves then. */
        CancelIoEx(im->pipe, NULL);
        CloseHandle(im->pipe);
        im->pipe = INVALID_HANDLE_VALUE;
    }
}
