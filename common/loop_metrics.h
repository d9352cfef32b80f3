/*
 * Loop metrics (rs_event_loop_get_metrics): counters and times that the
 * loop's thread writes and any thread reads while the loop runs.
 *
 * One writer: only the thread acting as the loop's thread writes (its run
 * thread, or a thread destroying it or acting for it while it does not
 * run: those are ordered by the loop's thread lock and the join). So a
 * counter is bumped with a relaxed load and store, no locked instruction,
 * and a reader sees each value whole. Each counter is bumped before the
 * callback it counts is called, so a thread told by that callback (through
 * any lock or atomic) reads a count that includes it.
 *
 * Times are kept only while asked for (rs_event_loop_set_metrics_timing):
 * they cost two clock readings per blocking wait. The four times are read
 * together (a wait in progress is added to the
 * waits that ended): they are published under a sequence lock, written
 * twice per blocking wait by the loop's thread, and a reader retries while
 * a write is in progress.
 */
#ifndef RS_COMMON_LOOP_METRICS_H
#define RS_COMMON_LOOP_METRICS_H

#include "atomics.h"

#include <stdbool.h>
#include <stdint.h>

struct rs__loop_metrics {
    volatile uint64_t iterations;
    volatile uint64_t tasks_run;
    volatile uint64_t tasks_canceled;
    volatile uint64_t io_callbacks;
    volatile uint64_t bytes_read;
    volatile uint64_t bytes_written;
    volatile uint64_t wakeups;

    /* Times (common/clock.h's clock), under seq: odd while being written. */
    volatile uint64_t seq;
    volatile uint64_t run_total_ns;  /* runs that ended */
    volatile uint64_t run_start_ns;  /* the run in progress began; 0: none */
    volatile uint64_t wait_total_ns; /* waits that ended */
    volatile uint64_t wait_start_ns; /* the wait in progress began; 0: none */
    /* The largest times any reading reported (readers only). */
    volatile uint64_t reported_wait_ns;
    volatile uint64_t reported_run_ns;
    bool waiting;                /* the loop's thread: a wait is being timed */
    bool timing;                 /* the loop's thread: times are being kept */
    volatile long timing_wanted; /* rs_event_loop_set_metrics_timing, any thread */
};

static inline void rs__metrics_bump(volatile uint64_t *counter, uint64_t n)
{
    rs__atomic_store_relaxed_u64(counter, rs__atomic_load_relaxed_u64(counter) + n);
}

/* The loop's thread: a run (of its own thread or of rs_event_loop_run_here)
 * begins or ends. */
void rs__metrics_run_begin(struct rs__loop_metrics *m);
void rs__metrics_run_end(struct rs__loop_metrics *m);
/* The loop's thread: a wait that may block begins, or ends. */
void rs__metrics_wait_begin(struct rs__loop_metrics *m);
void rs__metrics_wait_end(struct rs__loop_metrics *m);

/* An I/O callback is about to be called: counts it, and ends the timing of
 * the wait that dispatched it (the rest of the wait's work is running). */
static inline void rs__metrics_io_callback(struct rs__loop_metrics *m)
{
    rs__metrics_bump(&m->io_callbacks, 1);
    if (m->waiting) {
        rs__metrics_wait_end(m);
    }
}

#endif
