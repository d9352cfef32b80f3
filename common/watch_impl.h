/*
 * Readiness watches as common/ and the backends share them. common/watch.c
 * owns the public API: validation, the process-wide list of watched sockets
 * (one watch per socket), the stop from any thread and the callback. A
 * backend owns the OS registration (through `impl`) and reports what the
 * poller saw with rs__watch_report (common/backend.h), on the watch's loop
 * thread.
 */
#ifndef RS_COMMON_WATCH_IMPL_H
#define RS_COMMON_WATCH_IMPL_H

#include <reseau/watch.h>

#include <stdbool.h>

struct rs_watch {
    rs_event_loop *loop;
    void *impl;          /* the backend's state */
    rs_os_socket socket; /* as the application gave it */

    /* Loop-thread data. */
    unsigned events; /* watched now: RS_WATCH_READABLE | RS_WATCH_WRITABLE */
    rs_watch_fn *on_event;
    void *user_data;
    bool ended;   /* an error was reported: no more callbacks */
    bool stopped; /* the backend stopped: no more callbacks */

    /* The stop: the hop from another loop's thread, then on_stopped and
     * the release, from a task of the loop. */
    rs_task stop_task;
    rs_watch_on_stopped_fn *on_stopped;
    void *stopped_user_data;
    bool handle_released; /* no longer counted among the loop's handles */

    /* Under the list's lock (watch.c): rs_watch_stop was called. */
    bool stopping;
};

#endif
