/*
 * libevent backend: one event_base per loop, used only by the loop thread
 * (so libevent needs no locking: evthread is never enabled). Timers live in
 * the common scheduler; libevent only sleeps until the next deadline.
 * Cross-thread wake-ups go through one eventfd (a pipe where there is no
 * eventfd), written only when the loop may be waiting (common/ coalesces).
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
#include <string.h>
#include <time.h>

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
#ifdef _WIN32
    return rs__le_win_startup();
#else
    return 0;
#endif
}

void rs__backend_library_clean_up(void)
{
#ifdef _WIN32
    rs__le_win_cleanup();
#endif
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
    rs_event_loop *loop = arg;
    /* Empty the channel and count the wake-ups it held; the loop drains its
     * queues after this wait. */
#if RS_HAVE_EVENTFD
    /* One read returns the eventfd's counter (the writes since the last
     * read) and resets it to 0 (eventfd(2), without EFD_SEMAPHORE). */
    uint64_t count;
    if (read(fd, &count, sizeof count) == (ssize_t)sizeof count) {
        rs__metrics_bump(&loop->metrics.wakeups, count);
    }
#else
    char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        rs__metrics_bump(&loop->metrics.wakeups, (uint64_t)n);
    }
#endif
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
        int flags = EVENT_BASE_FLAG_NO_CACHE_TIME | EVENT_BASE_FLAG_NOLOCK;
#ifdef _WIN32
        /* Without it, libevent's Windows clock ticks at the scheduler's 16 ms
         * (GetTickCount64) and timers fire up to that late. */
        flags |= EVENT_BASE_FLAG_PRECISE_TIMER;
#endif
        event_config_set_flag(config, flags);
        le->base = event_base_new_with_config(config);
        event_config_free(config);
    }
    if (!le->base) {
        rs__mem_release(le);
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    le->early_close = (event_base_get_features(le->base) & EV_FEATURE_EARLY_CLOSE) != 0;
    if (open_wake_channel(le->wake_fds) != 0) {
        goto fail_base;
    }
    le->wake_event = event_new(le->base, le->wake_fds[0], EV_READ | EV_PERSIST, on_wake, loop);
    le->timer_event = evtimer_new(le->base, on_timer, le);
    if (!le->wake_event || !le->timer_event || event_add(le->wake_event, NULL) != 0) {
        rs__raise(RS_ERROR_SYS_CALL_FAILURE);
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

/* A dispatch that fails is retried after a pause of 10, 20, 40, 80, then
 * 100 ms while it keeps failing (never longer than the wait asked for). */
#define WAIT_RETRY_MIN_MS 10u
#define WAIT_RETRY_MAX_MS 100u
/* While it keeps failing, every this many failures are logged again. */
#define WAIT_FAILURE_LOG_EVERY 100u

/*
 * event_base_loop failed: the poller's wait (epoll_wait, poll, ...) failed
 * with something other than EINTR, and libevent returns at once without
 * sleeping. Retrying at once would spin the loop at 100% CPU for as long as
 * the failure lasts: the loop pauses instead (nanosleep: the poller it would
 * sleep in is what fails), logs the first failure and then every
 * WAIT_FAILURE_LOG_EVERY-th, and its timers and tasks keep running between
 * the tries.
 */
static void wait_failed(struct rs__le_loop *le, int err, int64_t timeout_ns)
{
    uint32_t n = le->wait_failures;
    if (le->wait_failures < UINT32_MAX) {
        le->wait_failures++;
    }
    if (n % WAIT_FAILURE_LOG_EVERY == 0) {
        RS__LOG(RS_LOG_ERROR, "event dispatch failed: %s (%u in a row); retrying after a pause",
                strerror(err), (unsigned)n + 1);
    }
    uint64_t pause_ns = (uint64_t)(WAIT_RETRY_MIN_MS << (n < 4 ? n : 4)) * 1000000u;
    if (pause_ns > WAIT_RETRY_MAX_MS * 1000000ull) {
        pause_ns = WAIT_RETRY_MAX_MS * 1000000ull;
    }
    if (timeout_ns >= 0 && (uint64_t)timeout_ns < pause_ns) {
        pause_ns = (uint64_t)timeout_ns;
    }
    if (pause_ns > 0) {
#ifdef _WIN32
        Sleep((DWORD)((pause_ns + 999999u) / 1000000u));
#else
        struct timespec ts = {(time_t)(pause_ns / 1000000000u), (long)(pause_ns % 1000000000u)};
        nanosleep(&ts, NULL);
#endif
    }
}

static void dispatch(struct rs__le_loop *le, int flags, int64_t timeout_ns)
{
    if (event_base_loop(le->base, flags) < 0) {
        wait_failed(le, errno, timeout_ns);
    } else if (le->wait_failures) {
        RS__LOG(RS_LOG_WARN, "event dispatch works again after %u failures",
                (unsigned)le->wait_failures);
        le->wait_failures = 0;
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
        dispatch(le, EVLOOP_NONBLOCK | EVLOOP_ONCE, 0);
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
            struct timeval tv;
            tv.tv_sec = (time_t)(us / 1000000u);
            tv.tv_usec = (long)(us % 1000000u);
            evtimer_add(le->timer_event, &tv);
            le->timer_armed = true;
            le->timer_deadline_ns = deadline;
        }
    }
    dispatch(le, EVLOOP_ONCE, timeout_ns);
}
