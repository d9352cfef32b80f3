/** @file
 * reseau: readiness watch of a socket the application owns.
 *
 * A library that hands out its own sockets and asks "tell me when this one is
 * readable or writable" (a DNS resolver, a database driver, an HTTP client's
 * multi interface) is driven from a loop through a watch: the application
 * keeps the socket, reads and writes it itself, and the loop calls it back
 * with the events that are ready. This is libuv's uv_poll_t and aws-c-io's
 * subscribe_to_io_events.
 *
 * How: libevent backend: one event per watched descriptor (epoll / kqueue /
 * poll underneath), level-triggered. IOCP backend: one IOCTL_AFD_POLL at a
 * time per watch on the socket's base provider handle (SIO_BASE_HANDLE),
 * through a handle to the AFD driver associated with the loop's completion
 * port, re-armed after each completion: the mechanism of libuv's uv_poll and
 * of wepoll (docs/watch.md). The socket need not be associated with any
 * completion port, nor set to any mode: reseau changes nothing on it.
 *
 * Semantics (both backends): level-triggered, as poll(2). While a watched
 * condition holds, the callback is called again on every loop iteration:
 * read until RS_ERROR_WOULD_BLOCK / EWOULDBLOCK, and watch WRITABLE only
 * while there is something to write (rs_watch_set_events). A pending error on
 * the socket (a refused connect, a reset) shows as READABLE and WRITABLE, as
 * poll(2) reports it: the next recv / send, or SO_ERROR, tells which error.
 * The peer's hang-up (it closed, or shut down its sending side) is reported
 * as RS_WATCH_READABLE | RS_WATCH_HANG_UP to a watch of READABLE, where the
 * system's poller tells it apart (epoll on Linux, AFD on Windows; elsewhere
 * it shows as READABLE only, and recv returns 0).
 *
 * Threading: rs_watch_start and rs_watch_set_events run on the loop's thread
 * (elsewhere: RS_ERROR_WRONG_THREAD; schedule a task to start a watch from
 * another thread). Every callback runs on the loop's thread, never inside
 * rs_watch_start or rs_watch_set_events. rs_watch_stop is safe from any
 * thread: see there.
 *
 * Lifetime: stop every watch before destroying its loop
 * (rs_event_loop_destroy fails with RS_ERROR_INVALID_STATE while a watch on
 * the loop has not been stopped), and stop a watch before closing its
 * socket: a descriptor number closed while watched may be reused by the
 * system for another file. The socket stays the application's throughout:
 * reseau never closes it.
 */
#ifndef RESEAU_WATCH_H
#define RESEAU_WATCH_H

#include <reseau/event_loop.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A readiness watch of one socket (opaque). */
typedef struct rs_watch rs_watch;

/** The events of a watch: a bit set. */
typedef enum rs_watch_event {
    /** Data (or a connection to accept, or the end of the stream) can be
     * read without blocking. */
    RS_WATCH_READABLE = 1u << 0,
    /** Data can be written without blocking (a connect in progress has
     * finished, successfully or not). */
    RS_WATCH_WRITABLE = 1u << 1,
    /** Reported only, with READABLE: the peer closed or shut down its
     * sending side. */
    RS_WATCH_HANG_UP = 1u << 2,
} rs_watch_event;

/**
 * Called on the loop's thread. error 0: `events` holds the watched
 * conditions that are ready now (never 0). error non-zero: the watch ended
 * and `events` is 0; no callback follows, and the watch must still be
 * stopped. The errors: RS_ERROR_SOCKET_CLOSED (Windows: the socket was
 * closed while watched), or a mapped OS error of the poller. The callback
 * may stop the watch (then no callback follows), change its events, and
 * start or stop other watches.
 */
typedef void(rs_watch_fn)(rs_watch *watch, int error, unsigned events, void *user_data);

/** Told that a stopped watch is gone (rs_watch_stop). */
typedef void(rs_watch_on_stopped_fn)(void *user_data);

/**
 * Starts watching `socket`, an open socket the application owns (TCP or
 * UDP; on POSIX a Unix-domain socket too), for `events` (RS_WATCH_READABLE
 * and/or RS_WATCH_WRITABLE; 0 starts a paused watch). The first callback
 * comes from a later loop iteration. Loop thread only.
 * Errors: RS_ERROR_LIBRARY_NOT_INITIALIZED; RS_ERROR_INVALID_ARGUMENT (NULL
 * loop or on_event, an unknown bit in events, RS_OS_SOCKET_INVALID, or a
 * handle that is not open: closed, or never was); RS_ERROR_NOT_A_SOCKET
 * (an open handle or descriptor that is not a socket: a file, a pipe);
 * RS_ERROR_WRONG_THREAD (not the loop's thread);
 * RS_ERROR_EVENT_LOOP_ALREADY_ASSIGNED (the socket is already watched, by
 * this loop or another, and that watch was not stopped);
 * RS_ERROR_PLATFORM_NOT_SUPPORTED (Windows: a layered service provider
 * hides the socket's base handle, so the AFD driver cannot poll it);
 * RS_ERROR_OUT_OF_MEMORY; RS_ERROR_SYS_CALL_FAILURE and mapped OS errors.
 * A failed start changes nothing, on the socket or the loop.
 */
RS_API rs_watch *rs_watch_start(rs_event_loop *loop, rs_os_socket socket, unsigned events,
                                rs_watch_fn *on_event, void *user_data);

/**
 * Replaces the watched events (0 pauses the watch; it stays started). Takes
 * effect at once: no callback reports an event that is no longer watched.
 * Loop thread only. Errors: RS_ERROR_INVALID_ARGUMENT (NULL, an unknown
 * bit), RS_ERROR_WRONG_THREAD, RS_ERROR_INVALID_STATE (the watch ended with
 * an error, or is being stopped), and the poller's mapped OS errors (the
 * watch then keeps its previous events).
 */
RS_API int rs_watch_set_events(rs_watch *watch, unsigned events);

/**
 * Stops the watch and releases it: `watch` is not to be used after this
 * call. Any thread:
 * - on the loop's thread (inside the watch's own callback too): at once; no
 *   callback of the watch starts after the call returns.
 * - on a thread that runs no loop: waits until the loop's thread has stopped
 *   the watch (when the loop does not run, stops it on the calling thread,
 *   which acts as the loop's thread meanwhile); no callback of the watch
 *   starts after the call returns. This is the rule of rs_socket_close and
 *   rs_pipe_*_clean_up from a foreign thread.
 * - on another loop's thread: returns at once (waiting there could deadlock
 *   two loops that stop each other's watches); callbacks may still come
 *   until the stop has run on the watch's loop, which on_stopped tells.
 * In every case the socket may be closed, or watched again, once the call
 * returned (from a loop thread of another loop: once on_stopped ran).
 * on_stopped, if not NULL, is called once with stopped_user_data on the
 * loop's thread after the last callback of the watch, from a later loop
 * iteration (never inside this call), or, if the loop is destroyed first,
 * on the thread destroying it.
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL, or a watch already stopped:
 * stopping twice changes nothing).
 */
RS_API int rs_watch_stop(rs_watch *watch, rs_watch_on_stopped_fn *on_stopped,
                         void *stopped_user_data);

/** The socket a watch watches (RS_OS_SOCKET_INVALID for NULL). Any thread. */
RS_API rs_os_socket rs_watch_socket(const rs_watch *watch);

#ifdef __cplusplus
}
#endif

#endif
