/*
 * Readiness watches, the backend-neutral part: argument and thread checks
 * (so both backends fail with the same codes), the process-wide list of
 * watched sockets, the stop from any thread, and the callback. The backend
 * (common/backend.h, "readiness watches") registers the socket with its
 * poller.
 *
 * The list: one watch per socket, whatever the loop, so that watching a
 * socket twice fails the same way on both backends (two epoll registrations
 * of one descriptor, or two AFD polls of one socket, would work but report
 * every event twice). It is also how a second rs_watch_stop of the same
 * watch is recognised (as rs_event_loop_destroy recognises a second destroy):
 * a watch leaves the list only when its stop has run. Watches are started
 * and stopped far less often than they report, so a plain array under a
 * mutex is enough.
 */
#include "watch_impl.h"

#include "alloc.h"
#include "backend.h"
#include "error.h"
#include "event_loop_impl.h"
#include "library.h"
#include "os_socket.h"
#include "thread.h"

#include <string.h>

/* ---- the list of watches ---- */

static rs__mutex list_lock = RS__MUTEX_INIT;
static rs_watch **list;
static size_t list_count;
static size_t list_capacity;

/* Caller holds list_lock. */
static size_t list_find(const rs_watch *watch)
{
    for (size_t i = 0; i < list_count; i++) {
        if (list[i] == watch) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* Adds watch unless its socket is listed already. Raises. */
static int list_add(rs_watch *watch)
{
    int rc = 0;
    rs__mutex_lock(&list_lock);
    for (size_t i = 0; i < list_count; i++) {
        if (list[i]->socket == watch->socket) {
            rc = rs_raise(RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED);
            goto out;
        }
    }
    if (list_count == list_capacity) {
        size_t cap = list_capacity ? list_capacity * 2 : 16;
        rs_watch **grown = rs__mem_acquire(cap * sizeof *grown);
        if (!grown) {
            rc = -1;
            goto out;
        }
        if (list_count) {
            memcpy(grown, list, list_count * sizeof *grown);
        }
        rs__mem_release(list);
        list = grown;
        list_capacity = cap;
    }
    list[list_count++] = watch;
out:
    rs__mutex_unlock(&list_lock);
    return rc;
}

static void list_remove(rs_watch *watch)
{
    rs__mutex_lock(&list_lock);
    size_t i = list_find(watch);
    if (i != SIZE_MAX) {
        list[i] = list[--list_count];
        if (list_count == 0) {
            /* Nothing stays allocated while no watch exists (the library's
             * leak check at clean-up). */
            rs__mem_release(list);
            list = NULL;
            list_capacity = 0;
        }
    }
    rs__mutex_unlock(&list_lock);
}

/* Marks a listed watch as being stopped; false if it is not listed or a
 * stop was already asked for. */
static bool list_claim_stop(rs_watch *watch)
{
    rs__mutex_lock(&list_lock);
    bool claimed = list_find(watch) != SIZE_MAX && !watch->stopping;
    if (claimed) {
        watch->stopping = true;
    }
    rs__mutex_unlock(&list_lock);
    return claimed;
}

/* ---- start and events ---- */

#define KNOWN_EVENTS (RS_WATCH_READABLE | RS_WATCH_WRITABLE)

static void stop_task_fn(rs_task *task, void *arg, rs_task_status status);

rs_watch *rs_watch_start(rs_event_loop *loop, rs_os_socket socket, unsigned events,
                         rs_watch_fn *on_event, void *user_data)
{
    if (rs__library_check() != 0) {
        return NULL;
    }
    if (!loop || !on_event || (events & ~KNOWN_EVENTS) || !rs__os_socket_in_range(socket)) {
        return rs__raise_null(RS_ERROR_INVALID_ARGUMENT);
    }
    if (!rs_event_loop_is_on_thread(loop)) {
        return rs__raise_null(RS_ERROR_WRONG_THREAD);
    }
    rs_watch *w = rs__mem_calloc(1, sizeof *w);
    if (!w) {
        return NULL;
    }
    w->loop = loop;
    w->socket = socket;
    w->on_event = on_event;
    w->user_data = user_data;
    rs_task_init(&w->stop_task, stop_task_fn, w, "watch stop");
    if (list_add(w) != 0) {
        goto fail;
    }
    if (rs__backend_watch_init(w) != 0) {
        goto fail_listed;
    }
    w->events = events;
    if (events && rs__backend_watch_update(w) != 0) {
        int err = rs_last_error();
        rs__backend_watch_stop(w);
        rs_raise(err);
        goto fail_listed;
    }
    rs__event_loop_add_handles(loop, 1);
    rs__event_loop_add_watches(loop, 1);
    rs__event_loop_add_load(loop, 1);
    return w;
fail_listed:
    list_remove(w);
fail:
    rs__mem_release(w);
    return NULL;
}

int rs_watch_set_events(rs_watch *watch, unsigned events)
{
    if (!watch || (events & ~KNOWN_EVENTS)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (!rs_event_loop_is_on_thread(watch->loop)) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    if (watch->ended || watch->stopped) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (events == watch->events) {
        return 0;
    }
    unsigned before = watch->events;
    watch->events = events;
    if (rs__backend_watch_update(watch) != 0) {
        watch->events = before;
        return -1;
    }
    return 0;
}

rs_os_socket rs_watch_socket(const rs_watch *watch)
{
    return watch ? watch->socket : RS_OS_SOCKET_INVALID;
}

void rs__watch_report(struct rs_watch *w, int error, unsigned events)
{
    if (w->stopped || w->ended) {
        return;
    }
    if (error) {
        w->ended = true;
        w->on_event(w, error, 0, w->user_data);
        return;
    }
    unsigned watched = w->events;
    if (watched & RS_WATCH_READABLE) {
        watched |= RS_WATCH_HANG_UP;
    }
    events &= watched;
    if (events) {
        w->on_event(w, 0, events, w->user_data);
    }
}

/* ---- stop ---- */

static void release_handle(rs_watch *w)
{
    if (!w->handle_released) {
        w->handle_released = true;
        rs__event_loop_add_watches(w->loop, -1);
        rs__event_loop_add_handles(w->loop, -1);
    }
}

/* On the loop's thread (or the thread acting as it): the backend stops, the
 * socket leaves the list, and the final step (on_stopped, then the release
 * of the memory) is queued: never inside rs_watch_stop, and never under a
 * callback of the watch that may still be on the stack. */
static void stop_now(rs_watch *w)
{
    w->stopped = true;
    release_handle(w);
    rs__backend_watch_stop(w);
    list_remove(w);
    rs_event_loop_schedule_now(w->loop, &w->stop_task);
}

/* First run (the watch not stopped yet): the hop from another loop's
 * thread. Then: the final step. A cancelled run (the loop is being
 * destroyed, on the destroying thread, which acts as the loop's thread) does
 * the same work. */
static void stop_task_fn(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    rs_watch *w = arg;
    if (!w->stopped) {
        stop_now(w);
        return;
    }
    rs__event_loop_add_load(w->loop, -1);
    if (w->on_stopped) {
        w->on_stopped(w->stopped_user_data);
    }
    rs__mem_release(w);
}

static int stop_call_fn(void *arg, enum rs__call_mode mode)
{
    (void)mode; /* a stop does the same work whatever the loop's state */
    stop_now(arg);
    return 0;
}

int rs_watch_stop(rs_watch *watch, rs_watch_on_stopped_fn *on_stopped, void *stopped_user_data)
{
    if (!watch || !list_claim_stop(watch)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    watch->on_stopped = on_stopped;
    watch->stopped_user_data = stopped_user_data;
    rs_event_loop *loop = watch->loop;
    if (rs_event_loop_is_on_thread(loop)) {
        stop_now(watch);
        return 0;
    }
    if (rs__event_loop_current()) {
        /* Another loop's thread: the hop may still be queued when the loop
         * is destroyed; the watch is the library's to finish by then (the
         * destroy runs the hop as a cancelled task, which does the same
         * work), not a handle the application still holds. */
        release_handle(watch);
        rs_event_loop_schedule_now(loop, &watch->stop_task);
        return 0;
    }
    rs__event_loop_call_and_wait(loop, stop_call_fn, watch);
    return 0;
}
