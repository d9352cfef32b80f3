/*
 * libevent backend: readiness watches. One event per watched descriptor,
 * persistent (EV_PERSIST) and level-triggered (no EV_ET): libevent calls it
 * on every dispatch while the descriptor is ready, which is the documented
 * rule of <reseau/watch.h>. A change of events re-assigns the event (it is
 * deleted first, so no report of an event no longer watched follows).
 *
 * Hang-up: with READABLE, the event also asks for EV_CLOSED where the base
 * can tell it (EV_FEATURE_EARLY_CLOSE: epoll's EPOLLRDHUP on Linux);
 * elsewhere (kqueue, select on Windows) the peer's close is only readable
 * (recv returns 0).
 */
#include "le_backend.h"

#include "../../common/alloc.h"
#include "../../common/error.h"

#include <event2/event_struct.h>

#include <errno.h>

struct le_watch {
    struct event event;
    short what; /* the event's flags while it is pending in the base, else 0 */
};

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct rs_watch *w = arg;
    unsigned events = 0;
    if (what & EV_READ) {
        events |= RS_WATCH_READABLE;
    }
    if (what & EV_WRITE) {
        events |= RS_WATCH_WRITABLE;
    }
    if (what & EV_CLOSED) {
        /* The peer's hang-up leaves the stream readable (end of stream). */
        events |= RS_WATCH_READABLE | RS_WATCH_HANG_UP;
    }
    /* The callback may stop the watch, which frees the event: libevent
     * touches an event no more once its callback was called. */
    rs__watch_report(w, 0, events);
}

int rs__backend_watch_init(struct rs_watch *w)
{
    if (rs__os_socket_check_open(w->socket) != 0) {
        return -1;
    }
    struct le_watch *lw = rs__mem_calloc(1, sizeof *lw);
    if (!lw) {
        return -1;
    }
    w->impl = lw;
    return 0;
}

static int add(struct rs_watch *w, short what)
{
    struct le_watch *lw = w->impl;
    struct rs__le_loop *le = w->loop->impl;
    if (event_assign(&lw->event, le->base, w->socket, what, on_event, w) != 0 ||
        event_add(&lw->event, NULL) != 0) {
        return -1;
    }
    lw->what = what;
    return 0;
}

int rs__backend_watch_update(struct rs_watch *w)
{
    struct le_watch *lw = w->impl;
    struct rs__le_loop *le = w->loop->impl;
    short before = lw->what;
    if (before) {
        event_del(&lw->event);
        lw->what = 0;
    }
    if (!w->events) {
        return 0;
    }
    short what = EV_PERSIST;
    if (w->events & RS_WATCH_READABLE) {
        what |= EV_READ;
        if (event_base_get_features(le->base) & EV_FEATURE_EARLY_CLOSE) {
            what |= EV_CLOSED;
        }
    }
    if (w->events & RS_WATCH_WRITABLE) {
        what |= EV_WRITE;
    }
    errno = 0;
    if (add(w, what) != 0) {
        /* The poller refused the descriptor (libevent leaves its errno);
         * the previous registration, if any, is restored. */
        int err = errno ? errno : EINVAL;
        if (before) {
            add(w, before);
        }
        return rs__le_raise_errno(err);
    }
    return 0;
}

void rs__backend_watch_stop(struct rs_watch *w)
{
    struct le_watch *lw = w->impl;
    if (lw->what) {
        event_del(&lw->event);
    }
    rs__mem_release(lw);
    w->impl = NULL;
}
