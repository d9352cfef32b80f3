/*
 * Pipes, the backend-neutral part: argument, thread and state checks (so
 * both backends fail with the same codes), the edge-triggered readable rules
 * of <reseau/pipe.h>, write completions delivered from a loop task in FIFO
 * order, the cross-thread clean-up hop, and unique pipe names. The backend
 * (common/backend.h, "pipes") only moves bytes.
 *
 * Lifetime: an end's memory is freed by its loop thread once the backend has
 * released it (IOCP: every cancelled operation was dequeued) and every
 * pending write callback ran; on_complete runs just before that. Ends must
 * be cleaned up before their loop is destroyed; if the loop is destroyed
 * first, write callbacks still queued run with RS_ERROR_EVENT_LOOP_SHUTDOWN
 * (their delivery task is cancelled), on the destroying thread.
 */
#include "pipe_impl.h"

#include "alloc.h"
#include "atomics.h"
#include "backend.h"
#include "clock.h"
#include "error.h"
#include "event_loop_impl.h"
#include "library.h"
#include "thread.h"

#include <stdio.h>
#include <string.h>

#ifndef _WIN32
#include <unistd.h>
#endif

/* rs_pipe_read_end.last_read: what the last read of a readable callback did. */
enum {
    READ_NONE = 0,
    READ_FILLED,  /* returned the whole length asked: more may be waiting */
    READ_DRAINED, /* returned less, RS_ERROR_WOULD_BLOCK or end of stream */
};

/* ---- the clean-up hop, shared by both ends ---- */

struct close_call {
    void (*close_now)(void *end);
    void *end;
};

static int close_call_fn(void *arg, enum rs__call_mode mode)
{
    (void)mode; /* a clean-up does the same work whatever the loop's state */
    struct close_call *c = arg;
    c->close_now(c->end);
    return 0;
}

/*
 * On the end's loop thread, close_now runs at once. From another loop's
 * thread the close is only scheduled: waiting there could deadlock two loops
 * that clean up each other's ends. From any other thread the caller waits
 * until it ran (on the loop, or on the calling thread while the loop does
 * not run: rs__event_loop_call_and_wait), so that no callback of the end
 * starts after the call returns.
 */
static void release_handle(rs_event_loop *loop, struct rs__pipe_clean_up *c)
{
    if (!c->handle_released) {
        c->handle_released = true;
        rs__event_loop_add_pipe_ends(loop, -1);
        rs__event_loop_add_handles(loop, -1);
    }
}

static void clean_up_start(rs_event_loop *loop, struct rs__pipe_clean_up *c,
                           void (*close_now)(void *end), void *end)
{
    if (rs_event_loop_is_on_thread(loop)) {
        close_now(end);
        return;
    }
    if (rs__event_loop_current()) {
        /* The hop may still be queued when the loop is destroyed: the end
         * is the library's to finish by then (the destroy runs the hop as a
         * cancelled task, which does the same work), not a handle the
         * application still holds. */
        release_handle(loop, c);
        rs_event_loop_schedule_now(loop, &c->task);
        return;
    }
    struct close_call call = {close_now, end};
    rs__event_loop_call_and_wait(loop, close_call_fn, &call);
}

/* ---- read end ---- */

static void read_end_finish(rs_pipe_read_end *r)
{
    if (r->clean_up.on_complete) {
        r->clean_up.on_complete(r->clean_up.user_data);
    }
    rs__event_loop_add_load(r->loop, -1);
    rs__mem_release(r);
}

/* The end is freed from a task once the backend let go of it and no
 * readable callback is on the stack. */
static void read_end_maybe_finish(rs_pipe_read_end *r)
{
    if (r->clean_up.closing && r->clean_up.backend_closed && !r->in_callback) {
        rs_event_loop_schedule_now(r->loop, &r->clean_up.task);
    }
}

static void read_end_close_now(void *end)
{
    rs_pipe_read_end *r = end;
    r->clean_up.closing = true;
    release_handle(r->loop, &r->clean_up);
    r->subscribed = false;
    r->armed = false;
    if (r->check_scheduled) {
        rs_event_loop_cancel_task(r->loop, &r->check_task);
    }
    rs__backend_pipe_read_end_close(r);
}

/* First run: the hop from another thread. Second run: the final step. A
 * cancelled run (the loop is being destroyed, and this thread acts as its
 * loop thread) does the same work. */
static void read_end_clean_up_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    rs_pipe_read_end *r = arg;
    if (!r->clean_up.closing) {
        read_end_close_now(r);
        return;
    }
    read_end_finish(r);
}

static void schedule_check(rs_pipe_read_end *r)
{
    if (!r->check_scheduled) {
        r->check_scheduled = true;
        rs_event_loop_schedule_now(r->loop, &r->check_task);
    }
}

/* Calls the readable callback if it is owed and the pipe has something to
 * say: data, or (once) the end of the stream. */
static void deliver_readable(rs_pipe_read_end *r)
{
    if (!r->subscribed || !r->armed || r->clean_up.closing || r->eof_delivered) {
        return;
    }
    int state = rs__backend_pipe_readable_state(r);
    if (state == RS__PIPE_EMPTY) {
        return;
    }
    int error = 0;
    if (state == RS__PIPE_CLOSED) {
        r->eof_delivered = true;
        error = RS_ERROR_BROKEN_PIPE;
    }
    r->armed = false;
    r->last_read = READ_NONE;
    r->in_callback = true;
    rs__metrics_io_callback(&r->loop->metrics);
    r->on_readable(r, error, r->user_data);
    r->in_callback = false;
    if (r->clean_up.closing) {
        read_end_maybe_finish(r);
        return;
    }
    /* A callback that filled its buffer may have left data behind, and no new
     * sign will come for data already there: look again next iteration. */
    if (r->subscribed && r->last_read == READ_FILLED && !r->eof_delivered) {
        r->armed = true;
        schedule_check(r);
    }
}

static void check_task_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    rs_pipe_read_end *r = arg;
    r->check_scheduled = false;
    if (status == RS_TASK_STATUS_RUN) {
        deliver_readable(r);
    }
}

void rs__pipe_read_end_on_event(rs_pipe_read_end *r)
{
    deliver_readable(r);
}

void rs__pipe_read_end_on_closed(rs_pipe_read_end *r)
{
    r->clean_up.backend_closed = true;
    read_end_maybe_finish(r);
}

int rs_pipe_clean_up_read_end(rs_pipe_read_end *read_end,
                              rs_pipe_on_clean_up_complete_fn *on_complete, void *user_data)
{
    if (!read_end) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    read_end->clean_up.on_complete = on_complete;
    read_end->clean_up.user_data = user_data;
    clean_up_start(read_end->loop, &read_end->clean_up, read_end_close_now, read_end);
    return 0;
}

/* Checks shared by the loop-thread functions of the read end. */
static int read_end_check(const rs_pipe_read_end *r)
{
    if (!rs_event_loop_is_on_thread(r->loop)) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    if (r->clean_up.closing) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    return 0;
}

int rs_pipe_subscribe_to_readable_events(rs_pipe_read_end *read_end,
                                         rs_pipe_on_readable_fn *on_readable, void *user_data)
{
    if (!read_end || !on_readable) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (read_end_check(read_end) != 0) {
        return -1;
    }
    if (read_end->subscribed) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (rs__backend_pipe_watch_readable(read_end) != 0) {
        return -1;
    }
    read_end->on_readable = on_readable;
    read_end->user_data = user_data;
    read_end->subscribed = true;
    /* Data already there gets its event right after subscribing: the check
     * runs on the next iteration, never inside this call. */
    read_end->armed = true;
    schedule_check(read_end);
    return 0;
}

int rs_pipe_unsubscribe_from_readable_events(rs_pipe_read_end *read_end)
{
    if (!read_end) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (read_end_check(read_end) != 0) {
        return -1;
    }
    if (!read_end->subscribed) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    read_end->subscribed = false;
    read_end->armed = false;
    return 0;
}

int rs_pipe_read(rs_pipe_read_end *read_end, void *buffer, size_t len, size_t *amount_read)
{
    if (!read_end || !buffer || !amount_read || len == 0) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (read_end_check(read_end) != 0) {
        return -1;
    }
    *amount_read = 0;
    int rc = rs__backend_pipe_read(read_end, buffer, len, amount_read);
    rs__metrics_bump(&read_end->loop->metrics.bytes_read, *amount_read);
    int error = rc == 0 ? 0 : rs_last_error();
    if (rc == 0 && *amount_read == len) {
        read_end->last_read = READ_FILLED;
        return 0;
    }
    read_end->last_read = READ_DRAINED;
    if (rc == 0 || error == RS_ERROR_WOULD_BLOCK || error == RS_ERROR_BROKEN_PIPE) {
        read_end->armed = true;
        /* After RS_ERROR_WOULD_BLOCK the pipe is empty and new data is a new
         * sign from the backend. After a short read or the end of the stream
         * the sign that matters (the write end went away) may already have
         * been consumed: look once more. */
        if (error != RS_ERROR_WOULD_BLOCK && read_end->subscribed) {
            schedule_check(read_end);
        }
    }
    return rc;
}

/* ---- write end ---- */

static void write_end_finish(rs_pipe_write_end *w)
{
    if (w->clean_up.on_complete) {
        w->clean_up.on_complete(w->clean_up.user_data);
    }
    rs__event_loop_add_load(w->loop, -1);
    rs__spares_release_all(&w->spare_reqs, &w->spare_count);
    rs__mem_release(w);
}

static void schedule_delivery(rs_pipe_write_end *w)
{
    if (w->deliver_scheduled || w->delivering) {
        return;
    }
    w->deliver_scheduled = true;
    rs_event_loop_schedule_now(w->loop, &w->deliver_task);
}

/*
 * Runs the callbacks of finished requests, oldest first, stopping at the
 * first unfinished one (FIFO even if the OS finishes out of order) and at
 * the last request queued when it started (a callback that writes again
 * cannot keep the loop here). After clean-up the callbacks get a NULL end.
 */
static void deliver_task_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    rs_pipe_write_end *w = arg;
    w->deliver_scheduled = false;
    w->delivering = true;
    struct rs__pipe_write_req *last = w->tail;
    while (w->head && w->head->done) {
        struct rs__pipe_write_req *req = w->head;
        w->head = req->next;
        if (!w->head) {
            w->tail = NULL;
        }
        int error = status == RS_TASK_STATUS_RUN ? req->error : RS_ERROR_EVENT_LOOP_SHUTDOWN;
        bool was_last = req == last;
        rs__metrics_bump(&w->loop->metrics.bytes_written, req->written);
        rs__metrics_io_callback(&w->loop->metrics);
        req->on_complete(w->clean_up.closing ? NULL : w, error, req->written, req->user_data);
        rs__spares_put(&w->spare_reqs, &w->spare_count, RS__SPARE_WRITES_MAX, req);
        if (was_last) {
            break;
        }
    }
    w->delivering = false;
    if (w->clean_up.closing && w->clean_up.backend_closed && !w->head) {
        write_end_finish(w);
        return;
    }
    if (w->head && w->head->done) {
        schedule_delivery(w);
    }
}

void rs__pipe_write_done(rs_pipe_write_end *w, struct rs__pipe_write_req *req, int error)
{
    /* After clean-up started, whatever the OS said (cancelled, closed
     * handle), an unfinished write failed because the pipe went away. */
    req->error = error != 0 && w->clean_up.closing ? RS_ERROR_BROKEN_PIPE : error;
    req->done = true;
    if (req == w->head) {
        schedule_delivery(w);
    }
}

void rs__pipe_write_end_on_closed(rs_pipe_write_end *w)
{
    w->clean_up.backend_closed = true;
    schedule_delivery(w);
}

static void write_end_close_now(void *end)
{
    rs_pipe_write_end *w = end;
    w->clean_up.closing = true;
    release_handle(w->loop, &w->clean_up);
    rs__backend_pipe_write_end_close(w);
}

static void write_end_clean_up_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    rs_pipe_write_end *w = arg;
    write_end_close_now(w);
}

int rs_pipe_clean_up_write_end(rs_pipe_write_end *write_end,
                               rs_pipe_on_clean_up_complete_fn *on_complete, void *user_data)
{
    if (!write_end) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    write_end->clean_up.on_complete = on_complete;
    write_end->clean_up.user_data = user_data;
    clean_up_start(write_end->loop, &write_end->clean_up, write_end_close_now, write_end);
    return 0;
}

int rs_pipe_write(rs_pipe_write_end *write_end, const void *data, size_t len,
                  rs_pipe_on_write_completed_fn *on_complete, void *user_data)
{
    if (!write_end || !data || !on_complete || len == 0) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (!rs_event_loop_is_on_thread(write_end->loop)) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    if (write_end->clean_up.closing) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    struct rs__pipe_write_req *req =
        rs__spares_take(&write_end->spare_reqs, &write_end->spare_count);
    if (req) {
        memset(req, 0, sizeof *req);
    } else if (!(req = rs__mem_calloc(1, sizeof *req))) {
        return -1;
    }
    req->data = data;
    req->len = len;
    req->on_complete = on_complete;
    req->user_data = user_data;
    if (write_end->tail) {
        write_end->tail->next = req;
    } else {
        write_end->head = req;
    }
    write_end->tail = req;
    rs__backend_pipe_write(write_end, req);
    return 0;
}

/* ---- creation ---- */

int rs_pipe_new(rs_event_loop *read_loop, rs_pipe_read_end **read_end, rs_event_loop *write_loop,
                rs_pipe_write_end **write_end)
{
    if (rs__library_check() != 0) {
        return -1;
    }
    if (!read_loop || !read_end || !write_loop || !write_end) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    rs_pipe_read_end *r = rs__mem_calloc(1, sizeof *r);
    rs_pipe_write_end *w = rs__mem_calloc(1, sizeof *w);
    if (!r || !w) {
        rs__mem_release(r);
        rs__mem_release(w);
        return -1;
    }
    r->loop = read_loop;
    rs_task_init(&r->clean_up.task, read_end_clean_up_task, r, "pipe read-end clean-up");
    rs_task_init(&r->check_task, check_task_fn, r, "pipe readable check");
    w->loop = write_loop;
    rs_task_init(&w->clean_up.task, write_end_clean_up_task, w, "pipe write-end clean-up");
    rs_task_init(&w->deliver_task, deliver_task_fn, w, "pipe write completions");
    if (rs__backend_pipe_open(r, w) != 0) {
        rs__mem_release(r);
        rs__mem_release(w);
        return -1;
    }
    rs__event_loop_add_load(read_loop, 1);
    rs__event_loop_add_load(write_loop, 1);
    rs__event_loop_add_handles(read_loop, 1);
    rs__event_loop_add_handles(write_loop, 1);
    rs__event_loop_add_pipe_ends(read_loop, 1);
    rs__event_loop_add_pipe_ends(write_loop, 1);
    *read_end = r;
    *write_end = w;
    return 0;
}

rs_event_loop *rs_pipe_read_end_loop(const rs_pipe_read_end *read_end)
{
    return read_end ? read_end->loop : NULL;
}

rs_event_loop *rs_pipe_write_end_loop(const rs_pipe_write_end *write_end)
{
    return write_end ? write_end->loop : NULL;
}

/* ---- names ---- */

/* splitmix64's finaliser: spreads the clock's low bits over the whole word. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

int rs_pipe_unique_name(char *buffer, size_t len)
{
    return rs__pipe_unique_name(buffer, len);
}

int rs__pipe_unique_name(char *buffer, size_t len)
{
    static volatile long counter;
    if (!buffer || len < RS_PIPE_NAME_MAX) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
#ifdef _WIN32
    unsigned long pid = (unsigned long)GetCurrentProcessId();
#else
    unsigned long pid = (unsigned long)getpid();
#endif
    uint64_t thread = rs__thread_current_id();
    unsigned long n = (unsigned long)rs__atomic_add(&counter, 1);
    /* The process id, thread and counter make the name unique within this
     * machine's live processes; the mixed clock and stack address make a name
     * that another program could predict (to squat on it) unlikely. */
    uint64_t salt =
        mix64(rs__clock_now_ns() ^ (uint64_t)(uintptr_t)&n ^ ((uint64_t)n << 40) ^ thread);
    snprintf(buffer, len, "\\\\.\\pipe\\reseau-%lu-%llx-%lu-%016llx", pid,
             (unsigned long long)thread, n, (unsigned long long)salt);
    return 0;
}
