/*
 * libevent backend, pipes: pipe2(O_NONBLOCK | O_CLOEXEC), or on Windows a
 * loopback socket pair (rs__le_pipe_cloexec_nonblock). Each end has one
 * edge-triggered, persistent `struct event` on its loop's event_base for its
 * whole life, created and added on the loop thread the first time it is
 * needed (the read end's at its first subscription, the write end's at its
 * first short write). Without edge triggering (Windows, le_compat.h) the
 * events are one-shot instead: the read end's re-added by a read that
 * drains the pipe, the write end's by a write that finds it full. Writes
 * wait in a FIFO; the head keeps its progress across partial writes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "le_backend.h"

#include "../../common/alloc.h"
#include "../../common/error.h"
#include "../../common/pipe_impl.h"
#include "../../common/thread.h"

#include <errno.h>
#include <signal.h>
#include <time.h>

/* An end's event: persistent and edge-triggered, or one-shot without edge
 * triggering (the file comment). */
#if RS_LE_EDGE_TRIGGERED
#define RS_LE_PIPE_EVENT(what) ((what) | EV_PERSIST | EV_ET)
#else
#define RS_LE_PIPE_EVENT(what) (what)
#endif

struct le_read_end {
    int fd;
    struct event *ev;
};

struct le_write_end {
    int fd;
    size_t max_write; /* bytes offered to one write(2): the pipe's capacity */
    struct event *ev;
    struct rs__pipe_write_req *head; /* not yet fully written, FIFO */
    struct rs__pipe_write_req *tail;
};

static struct event_base *base_of(rs_event_loop *loop)
{
    struct rs__le_loop *le = loop->impl;
    return le->base;
}

/*
 * A non-blocking write(2) to a pipe never takes more than the pipe's
 * capacity, so offering it more only costs: memcheck (valgrind) checks every
 * byte of the buffer passed on each call, and a 32 MiB write offered whole
 * to each of its 512 64 KiB system calls made that quadratic (8 GiB of
 * checks). Offering the capacity makes the same system calls (a full pipe
 * still answers EAGAIN on the next one). Linux reports the capacity; the
 * fallback is the usual 64 KiB of the BSDs, macOS and Linux's default.
 */
static size_t pipe_capacity(int fd)
{
#if defined(F_GETPIPE_SZ)
    int size = fcntl(fd, F_GETPIPE_SZ);
    if (size > 0) {
        return (size_t)size;
    }
#else
    (void)fd;
#endif
    return 64 * 1024;
}

int rs__backend_pipe_open(rs_pipe_read_end *read_end, rs_pipe_write_end *write_end)
{
    struct le_read_end *r = rs__mem_calloc(1, sizeof *r);
    struct le_write_end *w = rs__mem_calloc(1, sizeof *w);
    int fds[2];
    if (!r || !w) {
        goto fail;
    }
    if (rs__le_pipe_cloexec_nonblock(fds) != 0) {
        goto fail;
    }
#if defined(F_SETNOSIGPIPE)
    /* Where the descriptor itself can be told not to raise SIGPIPE (macOS),
     * that is cheaper than masking the signal around every write. */
    fcntl(fds[1], F_SETNOSIGPIPE, 1);
#endif
    r->fd = fds[0];
    w->fd = fds[1];
    w->max_write = pipe_capacity(fds[1]);
    read_end->impl = r;
    write_end->impl = w;
    return 0;
fail:
    rs__mem_release(r);
    rs__mem_release(w);
    return -1;
}

/* ---- read end ---- */

static void on_read_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rs__pipe_read_end_on_event(arg);
}

int rs__backend_pipe_watch_readable(rs_pipe_read_end *read_end)
{
    struct le_read_end *r = read_end->impl;
    if (r->ev) {
        return 0;
    }
    /* Edge-triggered: one event per arrival of data (or the write end's
     * close); common/ decides which of them the user hears about. */
    r->ev = event_new(base_of(read_end->loop), r->fd, RS_LE_PIPE_EVENT(EV_READ), on_read_event,
                      read_end);
    if (!r->ev) {
        return rs__raise(RS_ERROR_OUT_OF_MEMORY);
    }
    if (event_add(r->ev, NULL) != 0) {
        event_free(r->ev);
        r->ev = NULL;
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    return 0;
}

#ifdef _WIN32
int rs__backend_pipe_readable_state(rs_pipe_read_end *read_end)
{
    /* A socket pair: a peek tells data from the end of the stream (0) in
     * one call; a reset (the write end closed with data unread) ends it too. */
    struct le_read_end *r = read_end->impl;
    char byte;
    ssize_t n = recv(r->fd, &byte, 1, MSG_PEEK);
    if (n > 0) {
        return RS__PIPE_DATA;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return RS__PIPE_EMPTY;
    }
    return RS__PIPE_CLOSED;
}
#else
int rs__backend_pipe_readable_state(rs_pipe_read_end *read_end)
{
    struct le_read_end *r = read_end->impl;
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    if (poll(&p, 1, 0) != 1) {
        return RS__PIPE_EMPTY;
    }
    if (!(p.revents & (POLLHUP | POLLERR))) {
        return (p.revents & POLLIN) ? RS__PIPE_DATA : RS__PIPE_EMPTY;
    }
    /* The write end is gone, so nothing more can arrive and the byte count
     * is final. (Asked in the other order, data written and the write end
     * closed between the two calls would read as "closed".) Some systems
     * also set POLLIN at end of file, so only the count tells. */
    int queued = 0;
    if (ioctl(r->fd, FIONREAD, &queued) == 0 && queued > 0) {
        return RS__PIPE_DATA;
    }
    return RS__PIPE_CLOSED;
}
#endif

/* A read drained the pipe: without edge triggering, the read event is
 * added again for the next arrival. */
static void pipe_drained(struct le_read_end *r)
{
#if RS_LE_EDGE_TRIGGERED
    (void)r;
#else
    if (r->ev) {
        event_add(r->ev, NULL);
    }
#endif
}

int rs__backend_pipe_read(rs_pipe_read_end *read_end, void *buffer, size_t len, size_t *amount_read)
{
    struct le_read_end *r = read_end->impl;
    for (;;) {
        ssize_t n = read(r->fd, buffer, len);
        if (n > 0) {
            if ((size_t)n < len) {
                pipe_drained(r);
            }
            *amount_read = (size_t)n;
            return 0;
        }
        if (n == 0) {
            return rs__raise(RS_ERROR_BROKEN_PIPE);
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            pipe_drained(r);
        }
        if (errno != EINTR) {
            return rs__raise(rs__le_pipe_error_from_errno(errno));
        }
    }
}

void rs__backend_pipe_read_end_close(rs_pipe_read_end *read_end)
{
    struct le_read_end *r = read_end->impl;
    if (r->ev) {
        event_free(r->ev);
    }
#ifdef _WIN32
    rs__le_win_close_read_end(r->fd);
#else
    close(r->fd);
#endif
    rs__mem_release(r);
    read_end->impl = NULL;
    rs__pipe_read_end_on_closed(read_end);
}

/* ---- write end ---- */

/*
 * write(2) to a pipe whose read end is closed raises SIGPIPE, whose default
 * action kills the process, and pipes have no MSG_NOSIGNAL. A library must
 * not change the process-wide disposition (the application may rely on
 * SIGPIPE). On the loop threads the library starts, SIGPIPE is blocked for
 * the thread's life (thread_posix.c): the write's own thread-directed
 * SIGPIPE stays pending there and is consumed after EPIPE. Anywhere else
 * (a loop being destroyed by the application's thread) the signal is
 * blocked around the write, one it raised consumed with sigtimedwait before
 * the mask is restored, and a SIGPIPE already pending left alone: it is not
 * ours. Loop threads block it for their life rather than around each write
 * because a per-write mask costs three system calls per write
 * (docs/performance.md).
 */
static ssize_t write_retrying(int fd, const void *data, size_t len)
{
    ssize_t n;
    do {
        n = write(fd, data, len);
    } while (n < 0 && errno == EINTR);
    return n;
}

#ifdef _WIN32
/* A socket send raises no signal on Windows. */
static ssize_t write_no_sigpipe(int fd, const void *data, size_t len)
{
    return write_retrying(fd, data, len);
}
#else

static void sigpipe_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGPIPE);
}

static void consume_sigpipe(const sigset_t *pipe_set)
{
    static const struct timespec zero = {0, 0};
    while (sigtimedwait(pipe_set, NULL, &zero) < 0 && errno == EINTR) {
    }
}

static ssize_t write_no_sigpipe(int fd, const void *data, size_t len)
{
#if defined(F_SETNOSIGPIPE)
    return write_retrying(fd, data, len);
#else
    sigset_t pipe_set;
    if (rs__thread_sigpipe_blocked()) {
        ssize_t n = write_retrying(fd, data, len);
        if (n < 0 && errno == EPIPE) {
            sigpipe_set(&pipe_set);
            consume_sigpipe(&pipe_set);
            errno = EPIPE;
        }
        return n;
    }
    sigpipe_set(&pipe_set);
    sigset_t pending, old;
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write_retrying(fd, data, len);
    int err = errno;
    if (n < 0 && err == EPIPE && !was_pending) {
        consume_sigpipe(&pipe_set);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return n;
#endif
}
#endif

static void on_write_event(evutil_socket_t fd, short what, void *arg);

/* Writes from the head of the queue until the pipe is full or the queue
 * empty. Loop thread. */
static void pump(rs_pipe_write_end *write_end)
{
    struct le_write_end *w = write_end->impl;
    while (w->head) {
        struct rs__pipe_write_req *req = w->head;
        size_t len = req->len - req->written;
        if (len > w->max_write) {
            len = w->max_write;
        }
        ssize_t n = write_no_sigpipe(w->fd, req->data + req->written, len);
        int error = 0;
        if (n >= 0) {
            req->written += (size_t)n;
            if (req->written < req->len) {
                continue;
            }
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!w->ev) {
                w->ev = event_new(base_of(write_end->loop), w->fd, RS_LE_PIPE_EVENT(EV_WRITE),
                                  on_write_event, write_end);
                if (!w->ev || event_add(w->ev, NULL) != 0) {
                    error = RS_ERROR_SYS_CALL_FAILURE;
                }
            } else if (!RS_LE_EDGE_TRIGGERED && event_add(w->ev, NULL) != 0) {
                error = RS_ERROR_SYS_CALL_FAILURE; /* one-shot: added again */
            }
            if (!error) {
                return; /* the event fires when the reader made room */
            }
        } else {
            error = rs__le_pipe_error_from_errno(errno);
        }
        w->head = req->backend_next;
        if (!w->head) {
            w->tail = NULL;
        }
        rs__pipe_write_done(write_end, req, error);
    }
}

static void on_write_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

void rs__backend_pipe_write(rs_pipe_write_end *write_end, struct rs__pipe_write_req *req)
{
    struct le_write_end *w = write_end->impl;
    bool idle = w->head == NULL;
    if (w->tail) {
        w->tail->backend_next = req;
    } else {
        w->head = req;
    }
    w->tail = req;
    /* Behind other requests it waits for the write event; alone, it is
     * written at once (the callback still comes from a task). */
    if (idle) {
        pump(write_end);
    }
}

void rs__backend_pipe_write_end_close(rs_pipe_write_end *write_end)
{
    struct le_write_end *w = write_end->impl;
    if (w->ev) {
        event_free(w->ev);
    }
    close(w->fd);
    struct rs__pipe_write_req *req = w->head;
    rs__mem_release(w);
    write_end->impl = NULL;
    while (req) {
        struct rs__pipe_write_req *next = req->backend_next;
        rs__pipe_write_done(write_end, req, RS_ERROR_BROKEN_PIPE);
        req = next;
    }
    rs__pipe_write_end_on_closed(write_end);
}
