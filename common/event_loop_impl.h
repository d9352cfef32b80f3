/* The event loop object shared by common/ and the backends. */
#ifndef RS_COMMON_EVENT_LOOP_IMPL_H
#define RS_COMMON_EVENT_LOOP_IMPL_H

#include "compat.h"
#include "fastlock.h"
#include "scheduler.h"
#include "thread.h"

#include <reseau/event_loop.h>

/*
 * A completion the loop runs at the start of its next iteration, in the
 * order reported. Cheaper than a task (no state word, no cancellation, no
 * name): it is for completions reported on the loop thread that must not
 * run inside the call that caused them (a write's callback never runs inside
 * rs_socket_write) and that always run, with the loop's destroy too.
 */
struct rs__deferred {
    struct rs__deferred *next;
    void (*fn)(struct rs__deferred *deferred);
};

struct rs_event_loop {
    rs_backend backend;
    void *impl; /* the backend's state */

    /* Loop-thread data. */
    struct rs__scheduler scheduler;
    struct rs__deferred *deferred_head; /* FIFO, run by the next iteration */
    struct rs__deferred *deferred_tail;
    /* A deferred completion is running: a backend may hold writes issued
     * now for its own deferred flush (le_socket_io.c). */
    bool in_deferred;

    /* Cross-thread data: everything under `lock`. */
    struct {
        rs__fastlock lock;
        struct rs__task_list incoming;       /* to run now, from other threads, FIFO */
        struct rs__task_list incoming_timed; /* timed, from other threads */
        rs_task *cancel_head;                /* cancel requests from other threads */
        rs_task *cancel_tail;
    } synced;

    volatile long wake_pending;   /* a wake-up is on its way; coalesces wakes */
    volatile long stop_requested; /* the thread leaves after this iteration */
    volatile uint64_t owner_thread;
    volatile long load; /* I/O objects assigned, for group load balancing */

    /* Thread control (run / wait_for_stop), serialised by thread_lock. */
    rs__mutex thread_lock;
    rs__thread thread;
    bool thread_started;
};

/* Adjusts the load figure used by rs_event_loop_group_get_next. Any thread. */
void rs__event_loop_add_load(rs_event_loop *loop, long delta);
/* The loop whose thread is calling (while it runs the loop, or destroys it),
 * or NULL on any other thread. Inline: every read and write checks it. */
extern RS__THREAD_LOCAL rs_event_loop *rs__current_loop;
static inline rs_event_loop *rs__event_loop_current(void)
{
    return rs__current_loop;
}
/* Queues d for the next iteration. Loop thread (or the thread destroying it). */
static inline void rs__event_loop_defer(rs_event_loop *loop, struct rs__deferred *d)
{
    d->next = NULL;
    if (loop->deferred_tail) {
        loop->deferred_tail->next = d;
    } else {
        loop->deferred_head = d;
    }
    loop->deferred_tail = d;
}

/* Wakes the loop unless a wake-up is already pending. Any thread. */
void rs__event_loop_wake(rs_event_loop *loop);

#endif
