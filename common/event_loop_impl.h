/* The event loop object shared by common/ and the backends. */
#ifndef RS_COMMON_EVENT_LOOP_IMPL_H
#define RS_COMMON_EVENT_LOOP_IMPL_H

#include "compat.h"
#include "fastlock.h"
#include "loop_metrics.h"
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
    /* Written by the loop's thread, read by any (loop_metrics.h). */
    struct rs__loop_metrics metrics;

    /* Cross-thread data: everything under `lock`. */
    struct {
        rs__fastlock lock;
        struct rs__task_list incoming;       /* to run now, from other threads, FIFO */
        struct rs__task_list incoming_timed; /* timed, from other threads */
        rs_task *cancel_head;                /* cancel requests from other threads */
        rs_task *cancel_tail;
    } synced;

    /* Set: the loop looks at the cross-thread queue before it blocks again,
     * so a thread that queues work need not wake it. Raised by the thread
     * that finds it clear (which then wakes the loop), cleared by the loop
     * only just before a wait that may block (docs/event-loop.md,
     * "Wake-ups"). */
    volatile long wake_pending;
    volatile long stop_requested; /* the thread leaves after this iteration */
    volatile uint64_t owner_thread;
    volatile long load; /* I/O objects assigned, for group load balancing */
    /* Sockets, pipe ends and watches the application still holds (not
     * yet closed or cleaned up; a connect still pending is not counted,
     * the destroy ends it): rs_event_loop_destroy refuses while any is. */
    volatile long handles;
    /* Pipe ends and watches among the handles (for the metrics). */
    volatile long live_pipe_ends;
    volatile long live_watches;

    /* Thread control (run / wait_for_stop), serialised by thread_lock. */
    rs__mutex thread_lock;
    rs__thread thread;
    bool thread_started;
    /* Made by rs_event_loop_new_on_caller_thread: no thread of its own,
     * run by rs_event_loop_run_here. Set at creation. */
    bool caller_thread;
    /* A run of rs_event_loop_run_here is in progress (under thread_lock);
     * run_done is signalled when it ends. */
    bool running_here;
    rs__condvar run_done;

    /* Foreign threads waiting for a call to run on the loop
     * (rs__event_loop_call_and_wait), and whether the loop's thread runs
     * iterations: both under calls_lock, so that a thread that leaves the
     * loop tells every waiter whose call it did not run. */
    rs__mutex calls_lock;
    bool thread_running;
    struct rs__loop_call *calls;
};

/* How a call made with rs__event_loop_call_and_wait runs. */
enum rs__call_mode {
    RS__CALL_INLINE,    /* on the calling thread, which is (or acts as) the loop's */
    RS__CALL_TASK,      /* on the loop's thread, from a task */
    RS__CALL_LOOP_GONE, /* the loop is being destroyed (on the destroying thread) */
};

typedef int(rs__loop_call_fn)(void *arg, enum rs__call_mode mode);

/* One call of rs__event_loop_call_and_wait, on the waiter's stack. */
struct rs__loop_call {
    rs_task task;
    rs__loop_call_fn *fn;
    void *arg;
    int result;
    struct rs__loop_call *next; /* in loop->calls while linked */
    bool linked;
    bool done;
    bool stopped;    /* the loop's thread left without running it */
    bool taken_over; /* the waiter runs it itself */
    rs__condvar cond;
};

/*
 * Runs fn(arg) as the loop's thread and returns its result once it ran.
 * For a foreign thread (no loop's thread): if the loop runs, fn runs there
 * from a task and the caller waits; if the loop does not run (never run,
 * stopped, or it stops before it ran the task), fn runs on the calling
 * thread, which acts as the loop's thread meanwhile and holds the loop's
 * thread lock (the loop cannot start until fn returns). So the call returns
 * whatever the loop's state. Never from a loop's thread.
 */
int rs__event_loop_call_and_wait(rs_event_loop *loop, rs__loop_call_fn *fn, void *arg);

/* Number of loops created and not destroyed. Any thread. */
int rs__event_loop_live_count(void);

/* Counts a socket or pipe end the application holds on loop (delta +1 or
 * -1; see rs_event_loop.handles). Any thread. */
void rs__event_loop_add_handles(rs_event_loop *loop, long delta);

/* Counts a pipe end among the handles (delta +1 or -1), for the metrics:
 * called after rs__event_loop_add_handles(+1), before (-1). Any thread. */
void rs__event_loop_add_pipe_ends(rs_event_loop *loop, long delta);
/* The same for a readiness watch. */
void rs__event_loop_add_watches(rs_event_loop *loop, long delta);

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

/* Wakes the loop unless wake_pending is already set. Any thread, after
 * queueing work under synced.lock (the lock orders the queueing with the
 * loop's last look before it blocks). */
void rs__event_loop_wake(rs_event_loop *loop);

#endif
