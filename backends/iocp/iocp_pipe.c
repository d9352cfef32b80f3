/*
 * IOCP backend, pipes: one overlapped named pipe per anonymous pipe. The
 * server end (inbound) is the read end, the client end the write end; each
 * is associated once with its own loop's completion port.
 *
 * Readable detection: one overlapped ReadFile is kept posted into a 64 KiB
 * buffer owned by the read end. Its completion is the readable sign (or,
 * with a broken-pipe status, the end of the stream); rs_pipe_read hands out
 * the buffered bytes and posts the next ReadFile once they are all taken.
 * No PeekNamedPipe polling, and one read per 64 KiB instead of a zero-byte
 * read plus a real one.
 *
 * Writes: one overlapped WriteFile per request (per 1 GiB of it), all posted
 * at once; the pipe keeps them in order, and common/ delivers the callbacks
 * in order anyway.
 *
 * Both handles are put in FILE_SKIP_COMPLETION_PORT_ON_SUCCESS mode when
 * possible: a ReadFile or WriteFile that succeeds at once then queues no
 * packet (the mode's documented contract), and its result is handed to the
 * loop (rs__iocp_complete_inline), which dispatches it through the same
 * handler as a packet, once, from its next wait (W13).
 */
#include "iocp_backend.h"

#include "../../common/alloc.h"
#include "../../common/error.h"
#include "../../common/log.h"
#include "../../common/pipe_impl.h"

#include <string.h>

enum { READ_BUFFER = 64 * 1024 };
/* WriteFile takes a DWORD length. */
#define WRITE_CHUNK ((size_t)1 << 30)

struct iocp_read_end {
    struct rs__iocp_op op; /* the one ReadFile */
    rs_pipe_read_end *end;
    HANDLE handle;
    bool skip; /* the handle is in skip-on-success mode */
    bool posted;
    bool eof;
    bool closing;
    int eof_error; /* RS_ERROR_BROKEN_PIPE, or what ended the stream otherwise */
    size_t start;
    size_t count;
    unsigned char buffer[READ_BUFFER];
};

struct iocp_write_end {
    rs_pipe_write_end *end;
    HANDLE handle;
    bool skip;
    long in_flight;
    bool closing;
};

/* One WriteFile. Its memory belongs to it until its completion was
 * dequeued, even after the write end is gone (W8). */
struct write_op {
    struct rs__iocp_op op;
    struct iocp_write_end *w;
    struct rs__pipe_write_req *req;
};

/* ---- unique names, with retry ---- */

static HANDLE create_server(const char *name)
{
    if (RS__TEST_HOOK(rs__iocp_pipe_take_collision())) {
        SetLastError(ERROR_ACCESS_DENIED);
        return INVALID_HANDLE_VALUE;
    }
    /*
     * FILE_FLAG_FIRST_PIPE_INSTANCE: creating fails with ERROR_ACCESS_DENIED
     * if any pipe of that name exists, so a squatter that created the name
     * first can never become our read end. One instance: no second server
     * can be added under our name. PIPE_REJECT_REMOTE_CLIENTS: clients on
     * other machines are refused. The explicit security descriptor keeps
     * the default one's read access for Everyone and Anonymous off
     * (iocp_security.c).
     */
    return CreateNamedPipeA(
        name, PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
        PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1, 0,
        READ_BUFFER, 0, rs__iocp_pipe_security());
}

/* A collision: the name exists (ERROR_ACCESS_DENIED, FIRST_PIPE_INSTANCE),
 * or another client connected to our instance first (ERROR_PIPE_BUSY). */
static bool is_collision(DWORD err)
{
    return err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY;
}

static int open_handles(HANDLE *server, HANDLE *client)
{
    for (int attempt = 0; attempt < RS__IOCP_PIPE_NAME_TRIES; attempt++) {
        char name[RS_PIPE_NAME_MAX];
        if (rs__pipe_unique_name(name, sizeof name) != 0) {
            return -1;
        }
        HANDLE s = create_server(name);
        if (s == INVALID_HANDLE_VALUE) {
            DWORD err = GetLastError();
            if (is_collision(err)) {
                RS__LOG(RS_LOG_DEBUG, "pipe name %s taken (%lu), trying another", name,
                        (unsigned long)err);
                continue;
            }
            return rs__iocp_raise_win32(err);
        }
        /* A new instance is listening, so the client connects at once (no
         * ConnectNamedPipe needed). SECURITY_ANONYMOUS: whoever serves this
         * name may not impersonate us. */
        HANDLE c =
            CreateFileA(name, GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                        FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_ANONYMOUS, NULL);
        if (c == INVALID_HANDLE_VALUE) {
            DWORD err = GetLastError();
            CloseHandle(s);
            if (is_collision(err)) {
                continue;
            }
            return rs__iocp_raise_win32(err);
        }
        *server = s;
        *client = c;
        return 0;
    }
    RS__LOG(RS_LOG_ERROR, "no unique pipe name after %d attempts", RS__IOCP_PIPE_NAME_TRIES);
    return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
}

/* ---- read end ---- */

static void on_read_done(rs_event_loop *loop, struct rs__iocp_op *op, uint32_t status,
                         size_t bytes);

static void post_read(struct iocp_read_end *r)
{
    rs__iocp_op_init(&r->op, on_read_done, r);
    /* Set before the call: the first read is posted by rs_pipe_new, on any
     * thread, and its completion may be dispatched by the loop thread
     * before ReadFile returns here. */
    r->posted = true;
    if (ReadFile(r->handle, r->buffer, READ_BUFFER, NULL, &r->op.overlapped)) {
        /* Done at once: in skip mode no packet comes. The byte count of a
         * request completed without error is the OVERLAPPED's InternalHigh
         * (OVERLAPPED's documentation). */
        if (r->skip) {
            rs__iocp_complete_inline(r->end->loop, &r->op, (DWORD)r->op.overlapped.InternalHigh);
        }
        return;
    }
    if (GetLastError() == ERROR_IO_PENDING) {
        return;
    }
    /* A ReadFile that fails at once queues no completion. */
    r->posted = false;
    r->eof = true;
    r->eof_error = rs__iocp_error_from_win32(GetLastError());
}

static void release_read_end(struct iocp_read_end *r)
{
    rs_pipe_read_end *end = r->end;
    rs__mem_release(r);
    end->impl = NULL;
    rs__pipe_read_end_on_closed(end);
}

static void on_read_done(rs_event_loop *loop, struct rs__iocp_op *op, uint32_t status, size_t bytes)
{
    struct iocp_read_end *r = op->user_data;
    r->posted = false;
    if (r->closing) {
        /* Cancelled by the clean-up (995, or Wine's 676 / STATUS_HANDLES_CLOSED)
         * or finished just before it: either way only the memory is left. */
        rs__iocp_loop_orphans_add(loop, -1);
        release_read_end(r);
        return;
    }
    if (status == 0 && bytes == 0) {
        post_read(r);
        return;
    }
    if (status == 0) {
        r->start = 0;
        r->count = bytes;
    } else {
        /* The write end closed (STATUS_PIPE_BROKEN) after everything it
         * wrote was read, or the pipe failed otherwise. */
        r->eof = true;
        r->eof_error = rs__iocp_error_from_ntstatus(status);
    }
    rs__pipe_read_end_on_event(r->end);
}

int rs__backend_pipe_watch_readable(rs_pipe_read_end *read_end)
{
    (void)read_end; /* the read is posted from the start */
    return 0;
}

int rs__backend_pipe_readable_state(rs_pipe_read_end *read_end)
{
    struct iocp_read_end *r = read_end->impl;
    if (r->count > 0) {
        return RS__PIPE_DATA;
    }
    return r->eof ? RS__PIPE_CLOSED : RS__PIPE_EMPTY;
}

int rs__backend_pipe_read(rs_pipe_read_end *read_end, void *buffer, size_t len, size_t *amount_read)
{
    struct iocp_read_end *r = read_end->impl;
    if (r->count == 0) {
        return rs__raise(r->eof ? r->eof_error : RS_ERROR_WOULD_BLOCK);
    }
    size_t n = len < r->count ? len : r->count;
    memcpy(buffer, r->buffer + r->start, n);
    r->start += n;
    r->count -= n;
    if (r->count == 0 && !r->eof) {
        post_read(r);
    }
    *amount_read = n;
    return 0;
}

void rs__backend_pipe_read_end_close(rs_pipe_read_end *read_end)
{
    struct iocp_read_end *r = read_end->impl;
    r->closing = true;
    if (r->posted) {
        /* The OVERLAPPED and buffer stay ours until the cancelled read's
         * completion is dequeued (the kernel writes them until then); closing
         * the handle does not drop that completion, it is still posted to
         * the port. Counted as an orphan (W8), so that a loop destroyed
         * right after waits for it: the end's memory and its clean-up
         * callback depend on it. */
        rs__iocp_loop_orphans_add(read_end->loop, 1);
        CancelIoEx(r->handle, &r->op.overlapped);
        CloseHandle(r->handle);
        return;
    }
    CloseHandle(r->handle);
    release_read_end(r);
}

/* ---- write end ---- */

static void release_write_end(struct iocp_write_end *w)
{
    rs_pipe_write_end *end = w->end;
    rs__mem_release(w);
    end->impl = NULL;
    rs__pipe_write_end_on_closed(end);
}

/* A request is done when its last WriteFile completed; the first error
 * wins. */
static void finish_op(struct iocp_write_end *w, struct rs__pipe_write_req *req, int error)
{
    if (error && !req->backend_error) {
        req->backend_error = error;
    }
    if (req->backend_pending == 0) {
        rs__pipe_write_done(w->end, req, req->backend_error);
    }
}

static void on_write_done(rs_event_loop *loop, struct rs__iocp_op *op, uint32_t status,
                          size_t bytes)
{
    struct write_op *wop = op->user_data;
    struct iocp_write_end *w = wop->w;
    struct rs__pipe_write_req *req = wop->req;
    rs__mem_release(wop);
    if (w->closing) {
        rs__iocp_loop_orphans_add(loop, -1); /* counted by the close */
    }
    w->in_flight--;
    req->backend_pending--;
    req->written += bytes;
    finish_op(w, req, status == 0 ? 0 : rs__iocp_error_from_ntstatus(status));
    if (w->closing && w->in_flight == 0) {
        release_write_end(w);
    }
}

void rs__backend_pipe_write(rs_pipe_write_end *write_end, struct rs__pipe_write_req *req)
{
    struct iocp_write_end *w = write_end->impl;
    for (size_t offset = 0; offset < req->len;) {
        size_t chunk = req->len - offset < WRITE_CHUNK ? req->len - offset : WRITE_CHUNK;
        struct write_op *wop = rs__mem_acquire(sizeof *wop);
        if (!wop) {
            finish_op(w, req, RS_ERROR_OUT_OF_MEMORY);
            return;
        }
        rs__iocp_op_init(&wop->op, on_write_done, wop);
        wop->w = w;
        wop->req = req;
        if (WriteFile(w->handle, req->data + offset, (DWORD)chunk, NULL, &wop->op.overlapped)) {
            /* Done at once: in skip mode no packet comes (see post_read). */
            if (w->skip) {
                rs__iocp_complete_inline(w->end->loop, &wop->op,
                                         (DWORD)wop->op.overlapped.InternalHigh);
            }
        } else if (GetLastError() != ERROR_IO_PENDING) {
            /* Failed at once (ERROR_NO_DATA: the read end is closed): no
             * completion will come for it. */
            DWORD err = GetLastError();
            rs__mem_release(wop);
            finish_op(w, req, rs__iocp_error_from_win32(err));
            return;
        }
        req->backend_pending++;
        w->in_flight++;
        offset += chunk;
    }
}

void rs__backend_pipe_write_end_close(rs_pipe_write_end *write_end)
{
    struct iocp_write_end *w = write_end->impl;
    w->closing = true;
    /* Cancelled writes still complete into the port; each op is freed there
     * and the end's state once the last one came back. They are orphans
     * (W8): a loop destroyed right after waits for them, or their memory,
     * the writes' callbacks and the clean-up callback would be lost. */
    if (w->in_flight > 0) {
        rs__iocp_loop_orphans_add(write_end->loop, w->in_flight);
        CancelIoEx(w->handle, NULL);
    }
    CloseHandle(w->handle);
    if (w->in_flight == 0) {
        release_write_end(w);
    }
}

/* ---- creation ---- */

int rs__backend_pipe_open(rs_pipe_read_end *read_end, rs_pipe_write_end *write_end)
{
    struct iocp_read_end *r = rs__mem_calloc(1, sizeof *r);
    struct iocp_write_end *w = rs__mem_calloc(1, sizeof *w);
    HANDLE server = INVALID_HANDLE_VALUE;
    HANDLE client = INVALID_HANDLE_VALUE;
    if (!r || !w || open_handles(&server, &client) != 0) {
        goto fail;
    }
    /* Each handle gets its final port now: a handle's completion port cannot
     * be changed later (W15). */
    if (rs__iocp_associate(read_end->loop, server) != 0 ||
        rs__iocp_associate(write_end->loop, client) != 0) {
        goto fail;
    }
    r->end = read_end;
    r->handle = server;
    r->skip = rs__iocp_skip_on_success(server, false);
    w->end = write_end;
    w->handle = client;
    w->skip = rs__iocp_skip_on_success(client, false);
    read_end->impl = r;
    write_end->impl = w;
    post_read(r);
    return 0;
fail:
    if (server != INVALID_HANDLE_VALUE) {
        CloseHandle(server);
        CloseHandle(client);
    }
    rs__mem_release(r);
    rs__mem_release(w);
    return -1;
}

#ifdef RS_TEST_HOOKS
HANDLE rs__iocp_pipe_test_read_handle(const rs_pipe_read_end *read_end)
{
    const struct iocp_read_end *r = read_end->impl;
    return r->handle;
}
#endif
