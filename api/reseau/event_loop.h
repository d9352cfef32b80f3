/** @file
 * reseau: event loops, tasks and event-loop groups.
 *
 * A loop made by rs_event_loop_new owns one thread, started by
 * rs_event_loop_run. A loop made by rs_event_loop_new_on_caller_thread has
 * no thread of its own: a thread of the application drives it with
 * rs_event_loop_run_here, and is the loop's thread while that call runs.
 * Either way every callback of the loop (tasks, I/O completions of the
 * sockets and pipes assigned to it) runs on the loop's thread, and "the
 * loop's thread" in every header means that thread. Tasks can be scheduled
 * and cancelled from any thread.
 */
#ifndef RESEAU_EVENT_LOOP_H
#define RESEAU_EVENT_LOOP_H

#include <reseau/common.h>

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An event loop and its thread (opaque). */
typedef struct rs_event_loop rs_event_loop;
/** A set of running event loops (opaque). */
typedef struct rs_event_loop_group rs_event_loop_group;

/** How a task's function is being called. */
typedef enum rs_task_status {
    /** The task's time came. */
    RS_TASK_STATUS_RUN = 0,
    /** Cancelled by rs_event_loop_cancel_task or by the loop's destruction. */
    RS_TASK_STATUS_CANCELED,
} rs_task_status;

struct rs_task;
/** A task's function: called exactly once per scheduling, on the loop thread. */
typedef void(rs_task_fn)(struct rs_task *task, void *arg, rs_task_status status);

/**
 * A task is owned by the caller, usually embedded in the caller's object, so
 * scheduling never allocates. Initialise it with rs_task_init; the fields
 * after `arg` belong to the library while the task is scheduled. A scheduled
 * task's memory must stay valid until its function has been called.
 *
 * Every scheduled task's function is called exactly once, on the loop thread:
 * with RS_TASK_STATUS_RUN, or with RS_TASK_STATUS_CANCELED when it was
 * cancelled or its loop was destroyed first. A task may be scheduled again
 * from inside its own function.
 */
typedef struct rs_task {
    rs_task_fn *fn;   /**< called once per scheduling */
    void *arg;        /**< passed to fn */
    const char *name; /**< for logs; may be NULL */
    /** @cond PRIVATE */
    struct rs_task *priv_next;
    struct rs_task *priv_prev;
    volatile int priv_state;
    int priv_where;
    struct rs_task *priv_child;
    struct rs_task *priv_cancel_next;
    uint64_t priv_time_ns;
    uint64_t priv_seq;
    /** @endcond */
} rs_task;

/** Any thread. Resets the private fields; never call it on a scheduled task. */
RS_API void rs_task_init(rs_task *task, rs_task_fn *fn, void *arg, const char *name);

/** Options of rs_event_loop_new. */
typedef struct rs_event_loop_options {
    /** RS_BACKEND_DEFAULT, or the backend built in; any other backend fails
     * with RS_ERROR_PLATFORM_NOT_SUPPORTED. */
    rs_backend backend;
} rs_event_loop_options;

/**
 * Creates a loop (not running). options may be NULL.
 * Errors: RS_ERROR_LIBRARY_NOT_INITIALIZED, RS_ERROR_PLATFORM_NOT_SUPPORTED,
 * RS_ERROR_OUT_OF_MEMORY, RS_ERROR_SYS_CALL_FAILURE.
 */
RS_API rs_event_loop *rs_event_loop_new(const rs_event_loop_options *options);

/** How rs_event_loop_run_here runs a loop (libuv's uv_run_mode). */
typedef enum rs_run_mode {
    /** Iterations until rs_event_loop_stop. */
    RS_RUN_DEFAULT = 0,
    /** Runs what is ready; if that ran no callback, waits until something
     * does (I/O, a task's time, a task from another thread) or the loop is
     * stopped, and runs it. */
    RS_RUN_ONCE,
    /** One iteration that never waits: runs what is ready and polls I/O. */
    RS_RUN_NOWAIT,
} rs_run_mode;

/**
 * Creates a loop (not running) that has no thread of its own: a thread the
 * application owns runs it with rs_event_loop_run_here. options may be
 * NULL. Errors: as rs_event_loop_new.
 */
RS_API rs_event_loop *rs_event_loop_new_on_caller_thread(const rs_event_loop_options *options);

/**
 * Runs a loop made by rs_event_loop_new_on_caller_thread on the calling
 * thread, in mode, and returns 0 when the mode's work is done or the loop
 * was stopped (rs_event_loop_stop, from a callback or any thread). While
 * this call runs, the calling thread is the loop's thread for every rule of
 * the headers (rs_event_loop_is_on_thread is true there, the loop-thread
 * calls of sockets and pipes work there, tasks scheduled from other threads
 * wake it). Between runs the loop has no thread, as a stopped loop: calls
 * that need the loop's thread fail with RS_ERROR_WRONG_THREAD on every
 * thread (schedule a task: the next run runs it), and the calls any thread
 * may make (close, pipe clean-up, ...) run on the calling thread. Any
 * thread may run it, one run at a time. A stop made while no run is in
 * progress ends the next run before its first iteration (as uv_stop before
 * uv_run); each run consumes the stops made before it returns.
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL, a mode out of range, or a loop
 * made by rs_event_loop_new, which runs on its own thread),
 * RS_ERROR_WRONG_THREAD (called on a loop's thread: from a callback of this
 * loop or of another loop, or while destroying one), RS_ERROR_INVALID_STATE
 * (a run of this loop is in progress on another thread). A failed call
 * changes nothing.
 */
RS_API int rs_event_loop_run_here(rs_event_loop *loop, rs_run_mode mode);

/**
 * Stops the loop if it runs, waits for its thread, then calls every task
 * still scheduled with RS_TASK_STATUS_CANCELED on the calling thread, which
 * counts as the loop's thread meanwhile. Any thread but the loop's own.
 * Refused while the application still holds objects on the loop: an open
 * socket that is a listener, connected or assigned to it, a pipe end not
 * cleaned up, or a watch not stopped; the loop is then left as it was (running again if it ran) and
 * every object stays usable. A connect still pending ends with
 * RS_ERROR_EVENT_LOOP_SHUTDOWN, and so does a resolution still running.
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL, or not a live loop: already
 * destroyed), RS_ERROR_WOULD_DEADLOCK (called on the loop's own thread),
 * RS_ERROR_INVALID_STATE (sockets, pipe ends or watches still open on it).
 *
 * A loop made by rs_event_loop_new_on_caller_thread is destroyed between
 * runs, from any thread (the one that ran it included), with the same rules
 * for tasks and objects; while a run is in progress, from that run's
 * callbacks it fails with RS_ERROR_WOULD_DEADLOCK and from another thread
 * with RS_ERROR_INVALID_STATE (stop it and let rs_event_loop_run_here
 * return first); the loop is left as it was.
 */
RS_API int rs_event_loop_destroy(rs_event_loop *loop);

/**
 * Starts the loop's thread. Any thread. A stopped loop (after wait_for_stop)
 * can be run again; tasks still scheduled run after the restart. On POSIX the
 * thread runs with SIGPIPE blocked (so a signal sent to the process goes to
 * one of the application's threads), and the process's disposition of
 * SIGPIPE is never changed.
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL, or a loop made by
 * rs_event_loop_new_on_caller_thread, which has no thread to start: use
 * rs_event_loop_run_here), RS_ERROR_INVALID_STATE (already running or not
 * yet joined after stop), RS_ERROR_SYS_CALL_FAILURE.
 */
RS_API int rs_event_loop_run(rs_event_loop *loop);

/**
 * Asks the loop to stop after the current iteration. Any thread, idempotent
 * (stops before the loop gets to them count as one); a no-op on a loop with
 * its own thread that does not run. A loop run by rs_event_loop_run_here
 * returns from the run in progress, or from the next one if none is (see
 * there). Errors: RS_ERROR_INVALID_ARGUMENT.
 */
RS_API int rs_event_loop_stop(rs_event_loop *loop);

/**
 * Waits until the loop's thread has exited (after rs_event_loop_stop); for a
 * loop run by rs_event_loop_run_here, until no run is in progress. Returns
 * at once if the loop does not run. Never on the loop's own thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_WOULD_DEADLOCK (own thread).
 */
RS_API int rs_event_loop_wait_for_stop(rs_event_loop *loop);

/**
 * Schedules task to run on the loop's next iteration. Any thread. From the
 * loop thread it runs after the tasks already queued, from other threads it
 * wakes the loop. Errors: RS_ERROR_INVALID_ARGUMENT (NULL loop, task or fn),
 * RS_ERROR_INVALID_STATE (task already scheduled).
 */
RS_API int rs_event_loop_schedule_now(rs_event_loop *loop, rs_task *task);

/**
 * Schedules task to run at or after time_ns on the loop's clock
 * (rs_event_loop_now); a time in the past runs on the next iteration. Tasks
 * with equal times run in scheduling order. Any thread. Errors: as
 * rs_event_loop_schedule_now.
 */
RS_API int rs_event_loop_schedule_at(rs_event_loop *loop, rs_task *task, uint64_t time_ns);

/**
 * Schedules task to run now, in strict submission order with every other
 * serialized task of this loop whatever thread scheduled it (one FIFO shared by
 * all threads). Any thread. Errors: as rs_event_loop_schedule_now.
 */
RS_API int rs_event_loop_schedule_serialized(rs_event_loop *loop, rs_task *task);

/**
 * Cancels a scheduled task: its function is called with
 * RS_TASK_STATUS_CANCELED on the loop thread (inline when called there, on the
 * loop's next iteration otherwise). A task that is not scheduled (never was,
 * already ran, or is running now) is left alone and 0 is returned. Any thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT.
 */
RS_API int rs_event_loop_cancel_task(rs_event_loop *loop, rs_task *task);

/** True when called on the loop's thread (or during destroy, on the
 * destroying thread); for a loop run by rs_event_loop_run_here, on the
 * thread of the run in progress, and on no thread between runs. Any thread. */
RS_API bool rs_event_loop_is_on_thread(const rs_event_loop *loop);

/** Monotonic clock of the loop, in nanoseconds. Any thread. 0 for NULL. */
RS_API uint64_t rs_event_loop_now(const rs_event_loop *loop);

/**
 * What a loop has done since it was created (rs_event_loop_get_metrics).
 * Counters only grow and are always kept. The two times are kept while
 * asked for (rs_event_loop_set_metrics_timing) and the loop runs (its own
 * thread, or a run of rs_event_loop_run_here), not while it is stopped or
 * between runs; otherwise they stand still (0 if never asked for).
 */
typedef struct rs_event_loop_metrics {
    /** Iterations: each runs what is ready, then waits for or polls I/O. */
    uint64_t iterations;
    /** Nanoseconds blocked waiting for I/O, a task's time or a wake-up: from
     * the poller's call until it returns or calls the first I/O callback. */
    uint64_t wait_ns;
    /** Nanoseconds running (callbacks, tasks and the loop's own work): time
     * the loop ran minus wait_ns. run_ns / (run_ns + wait_ns) over an
     * interval is the loop's load. */
    uint64_t run_ns;
    /** Task functions called with RS_TASK_STATUS_RUN (the library's own
     * tasks included: a call from a foreign thread may run as one). */
    uint64_t tasks_run;
    /** Task functions called with RS_TASK_STATUS_CANCELED. */
    uint64_t tasks_canceled;
    /** Calls of socket and pipe I/O callbacks: connect results, accepts,
     * readable and write completions (not close or clean-up callbacks). */
    uint64_t io_callbacks;
    /** Bytes returned by the reads of sockets and pipe ends of this loop. */
    uint64_t bytes_read;
    /** Bytes written by writes completed (and immediate writes) on sockets
     * and pipe ends of this loop. */
    uint64_t bytes_written;
    /** Sockets the application holds on the loop (listening, connected or
     * assigned, not yet closed; a connect still pending is not counted). */
    uint64_t live_sockets;
    /** Pipe ends on the loop not yet cleaned up. */
    uint64_t live_pipe_ends;
    /** Readiness watches (watch.h) on the loop not yet stopped. */
    uint64_t live_watches;
    /** Wake-ups the loop received: signals sent to it by a task or cancel
     * from another thread, or by a stop, while it might be waiting (counted
     * as the loop receives them). Work queued by other threads while the
     * loop is busy costs none: wake-ups are coalesced until the loop is
     * about to wait again. */
    uint64_t wakeups;
} rs_event_loop_metrics;

/**
 * Starts (on) or stops keeping the loop's wait and run times, which cost
 * two clock readings per blocking wait (libuv's UV_METRICS_IDLE_TIME); off
 * when a loop is made. Takes effect from the loop's next iteration (or run).
 * Any thread. Errors: RS_ERROR_INVALID_ARGUMENT (NULL).
 */
RS_API int rs_event_loop_set_metrics_timing(rs_event_loop *loop, bool on);

/**
 * Copies the loop's metrics into *metrics, whose size the caller gives
 * (sizeof(rs_event_loop_metrics) as it was compiled: fields a later version
 * appends are then neither read nor written; bytes the library does not know
 * are zeroed). Any thread, without stopping or slowing the loop: counters
 * are atomic, each value whole and at least what any callback the caller
 * has synchronised with had done; the times are one consistent reading.
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL, or size smaller than this
 * version's struct).
 */
RS_API int rs_event_loop_get_metrics(const rs_event_loop *loop, rs_event_loop_metrics *metrics,
                                     size_t size);

/** The backend a loop runs on. */
RS_API rs_backend rs_event_loop_backend(const rs_event_loop *loop);

/** Number of CPUs this process may run on (its affinity mask), at least 1. */
RS_API unsigned rs_usable_cpu_count(void);

/** Told that a group's loops are all destroyed. */
typedef void(rs_event_loop_group_shutdown_fn)(void *user_data);

/** Options of rs_event_loop_group_new. */
typedef struct rs_event_loop_group_options {
    /** 0: one loop per CPU the process may run on (rs_usable_cpu_count). */
    unsigned loop_count;
    /** As rs_event_loop_options.backend. */
    rs_backend backend;
    /** Called once every loop has been destroyed, after the last release, on
     * the thread that destroyed them. May be NULL. */
    rs_event_loop_group_shutdown_fn *on_shutdown;
    /** Passed to on_shutdown. */
    void *shutdown_user_data;
} rs_event_loop_group_options;

/**
 * Creates loop_count loops and runs them. The group starts with one reference.
 * Errors: as rs_event_loop_new, RS_ERROR_INVALID_ARGUMENT (NULL options,
 * loop_count over 4096).
 */
RS_API rs_event_loop_group *rs_event_loop_group_new(const rs_event_loop_group_options *options);

/** Adds a reference. Any thread. Returns group (NULL for NULL). */
RS_API rs_event_loop_group *rs_event_loop_group_acquire(rs_event_loop_group *group);

/**
 * Drops a reference. The last release destroys the loops: synchronously when
 * called from a thread that is not one of the group's loops, otherwise on a
 * new thread (so a loop never waits for itself). Any thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT.
 */
RS_API int rs_event_loop_group_release(rs_event_loop_group *group);

/** Number of loops in the group (0 for NULL). Any thread. */
RS_API size_t rs_event_loop_group_count(const rs_event_loop_group *group);
/** The loop at index, or NULL (RS_ERROR_INVALID_ARGUMENT) when out of range. */
RS_API rs_event_loop *rs_event_loop_group_get_loop(const rs_event_loop_group *group, size_t index);
/** A loop for new work: the less loaded of two random picks. Any thread. */
RS_API rs_event_loop *rs_event_loop_group_get_next(rs_event_loop_group *group);

#ifdef __cplusplus
}
#endif

#endif
