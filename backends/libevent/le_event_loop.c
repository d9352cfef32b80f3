/*
 * libevent backend: one event_base per loop, used only by the loop thread
 * (so libevent needs no locking: evthread is never enabled). Timers live in
 * the common scheduler; libevent only sleeps until the next deadline.
 * Cross-thread wake-ups go through one eventfd (a pipe where there is no
 * eventfd), written at most once per loop iteration (common/ coalesces).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include "le_backend.h"

#include "../../common/alloc.h"
#include "../../common/clock.h"
#include "../../common/error.h"
#include "../../common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/eventfd.h>
#define RS_HAVE_EVENTFD 1
#endif

rs_backend rs__backend_id(void)
{
    return RS_BACKEND_LIBEVENT;
}

const char *rs__backend_name(void)
{
    return "libevent";
}

int rs__backend_library_init(void)
{
    return 0;
}

void rs__backend_library_clean_up(void)
{
}

static int open_wake_channel(int fds[2])
{
#if RS_HAVE_EVENTFD
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        return rs__le_raise_errno(errno);
    }
    fds[0] = fds[1] = fd;
    return 0;
#else
    if (rs__le_pipe_cloexec_nonblock(fds) != 0) {
        return -1;
    }
    return 0;
#endif
}

static void close_wake_channel(int fds[2])
{
    close(fds[0]);
    if (fds[1] != fds[0]) {
        close(fds[1]);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    /* Empty the channel; the loop drains its queues after this wait. */
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rs__le_loop *le = arg;
    le->timer_armed = false;
}

int rs__backend_loop_init(rs_event_loop *loop)
{
    struct rs__le_loop *le = rs__mem_calloc(1, sizeof *le);
    if (!le) {
        return -1;
    }
    /* No time cache: libevent would read the clock on every iteration to
     * refresh it, and reseau never reads it (the common scheduler keeps its
     * own clock, and reads it only while a timer waits). No locks: the base
     * is used by the loop thread only. */
    struct event_config *config = event_config_new();
    if (config) {
        event_config_set_flag(config, EVENT_BASE_FLAG_NO_CACHE_TIME | EVENT_BASE_FLAG_NOLOCK);
        le->base = event_base_new_with_config(config);
        event_config_free(config);
    }
    if (!le->base) {
        rs__mem_release(le);
        return rs_raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    if (open_wake_channel(le->wake_fds) != 0) {
        goto fail_base;
    }
    le->wake_event = event_new(le->base, le->wake_fds[0], EV_READ | EV_PERSIST, on_wake, le);
    le->timer_event = evtimer_new(le->base, on_timer, le);
    if (!le->wake_event || !le->timer_event || event_add(le->wake_event, NULL) != 0) {
        rs_raise(RS_ERROR_SYS_CALL_FAILURE);
        goto fail_events;
    }
    loop->impl = le;
    return 0;
fail_events:
    if (le->wake_event) {
        event_free(le->wake_event);
    }
    if (le->timer_event) {
        event_free(le->timer_event);
    }
    close_wake_channel(le->wake_fds);
fail_base:
    event_base_free(le->base);
    rs__mem_release(le);
    return -1;
}

void rs__backend_loop_clean_up(rs_event_loop *loop)
{
    struct rs__le_loop *le = loop->impl;
    event_free(le->wake_event);
    event_free(le->timer_event);
    close_wake_channel(le->wake_fds);
    event_base_free(le->base);
    rs__mem_release(le);
    loop->impl = NULL;
}

void rs__backend_loop_wake(rs_event_loop *loop)
{
    struct rs__le_loop *le = loop->impl;
#if RS_HAVE_EVENTFD
    uint64_t one = 1;
    ssize_t n = write(le->wake_fds[1], &one, sizeof one);
#else
    char one = 1;
    ssize_t n = write(le->wake_fds[1], &one, 1);
#endif
    /* EAGAIN means the channel is already full: the loop will wake anyway. */
    if (n < 0 && errno != EAGAIN) {
        RS__LOG(RS_LOG_ERROR, "event-loop wake-up write failed: %s", strerror(errno));
    }
}

void rs__backend_loop_wait(rs_event_loop *loop, int64_t timeout_ns)
{
    struct rs__le_loop *le = loop->impl;
    if (timeout_ns <= 0 && le->timer_armed) {
        /* No deadline to wait for: a pending libevent timer would make
         * every iteration read the clock. */
        evtimer_del(le->timer_event);
        le->timer_armed = false;
    }
    if (timeout_ns == 0) {
        /* EVLOOP_NONBLOCK alone goes on polling and dispatching until a
         * poll finds nothing, so I/O that keeps arriving (two sockets of
         * one loop feeding each other) would keep tasks and completions
         * waiting; with EVLOOP_ONCE it stops after one round. */
        event_base_loop(le->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
        return;
    }
    if (timeout_ns > 0) {
        /* The timer stays armed across iterations: one armed for no later
         * than this deadline is kept (waking early only costs another short
         * wait), so a pending connect timeout costs no libevent timer add
         * and delete per iteration. */
        uint64_t deadline = rs__clock_now_ns() + (uint64_t)timeout_ns;
        if (!le->timer_armed || le->timer_deadline_ns > deadline) {
            /* Round up: waking before the deadline would only cost a spin. */
            uint64_t us = ((uint64_t)timeout_ns + 999u) / 1000u;
            struct timeval tv = {(time_t)(us / 1000000u), (suseconds_t)(us % 1000000u)};
            evtimer_add(le->timer_event, &tv);
            le->timer_armed = true;
            le->timer_deadline_ns = deadline;
        }
    }
    event_base_loop(le->base, EVLOOP_ONCE);
}
