/*
 * The backend-neutral event loop: thread control (a thread of its own, or
 * runs on the caller's thread), task scheduling from any thread,
 * cancellation and the iteration skeleton. A backend supplies only the wait
 * for I/O and the wake-up (common/backend.h).
 */
#include "event_loop_impl.h"

#include "alloc.h"
#include "atomics.h"
#include "backend.h"
#include "clock.h"
#include "compat.h"
#include "error.h"
#include "host_resolver_impl.h"
#include "library.h"
#include "log.h"

#include <string.h>

/*
 * Live loops, so that destroying a loop twice (or a pointer that was never a
 * loop) fails with RS_ERROR_INVALID_ARGUMENT instead of freeing twice. Loops
 * are few and created rarely: a small array under a lock is enough.
 */
static rs__mutex live_lock = RS__MUTEX_INIT;
static rs_event_loop **live_loops;
static size_t live_count;
static size_t live_capacity;

/* Caller holds live_lock. */
static int live_add_locked(rs_event_loop *loop)
{
    if (live_count == live_capacity) {
        size_t cap = live_capacity ? live_capacity * 2 : 16;
        rs_event_loop **grown = rs__mem_acquire(cap * sizeof *grown);
        if (!grown) {
            return -1;
        }
        if (live_count) {
            memcpy(grown, live_loops, live_count * sizeof *grown);
        }
        rs__mem_release(live_loops);
        live_loops = grown;
        live_capacity = cap;
    }
    live_loops[live_count++] = loop;
    return 0;
}

static int live_add(rs_event_loop *loop)
{
    rs__mutex_lock(&live_lock);
    int rc = live_add_locked(loop);
    rs__mutex_unlock(&live_lock);
    return rc;
}

/* Caller holds live_lock. */
static size_t live_find(const rs_event_loop *loop)
{
    for (size_t i = 0; i < live_count; i++) {
        if (live_loops[i] == loop) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* Caller holds live_lock. */
static void live_remove_at(size_t i)
{
    live_loops[i] = live_loops[--live_count];
    if (live_count == 0) {
        rs__mem_release(live_loops);
        live_loops = NULL;
        live_capacity = 0;
    }
}

/* The loop whose thread this is (its run thread, or the thread destroying
 * it), so that a blocking cross-thread call can tell "some loop's thread"
 * from a plain foreign thread. */
RS__THREAD_LOCAL rs_event_loop *rs__current_loop;

void rs_task_init(rs_task *task, rs_task_fn *fn, void *arg, const char *name)
{
    rs__task_init(task, fn, arg, name);
}

void rs__task_init(rs_task *task, rs_task_fn *fn, void *arg, const char *name)
{
    if (!task) {
        return;
    }
    memset(task, 0, sizeof *task);
    task->fn = fn;
    task->arg = arg;
    task->name = name;
}

/* The loop's own thread finds itself in rs__current_loop (one thread-local read);
 * owner_thread also covers a loop destroyed from inside another loop's task. */
static inline bool on_thread(const rs_event_loop *loop)
{
    /* A thread that runs no loop (rs__current_loop NULL) is no loop's thread. */
    return rs__current_loop == loop ||
           (rs__current_loop &&
            rs__atomic_load_u64(&loop->owner_thread) == rs__thread_current_id());
}

bool rs__event_loop_is_on_thread(const rs_event_loop *loop)
{
    return loop && on_thread(loop);
}

bool rs_event_loop_is_on_thread(const rs_event_loop *loop)
{
    return rs__event_loop_is_on_thread(loop);
}

uint64_t rs_event_loop_now(const rs_event_loop *loop)
{
    return loop ? rs__clock_now_ns() : 0;
}

rs_backend rs_event_loop_backend(const rs_event_loop *loop)
{
    return loop ? loop->backend : RS_BACKEND_DEFAULT;
}

void rs__event_loop_add_load(rs_event_loop *loop, long delta)
{
    rs__atomic_add(&loop->load, delta);
}

void rs__event_loop_add_handles(rs_event_loop *loop, long delta)
{
    rs__atomic_add(&loop->handles, delta);
}

void rs__event_loop_add_pipe_ends(rs_event_loop *loop, long delta)
{
    rs__atomic_add(&loop->live_pipe_ends, delta);
}

void rs__event_loop_add_watches(rs_event_loop *loop, long delta)
{
    rs__atomic_add(&loop->live_watches, delta);
}

void rs__event_loop_wake(rs_event_loop *loop)
{
    /* A plain read first: while the flag is up (the loop is awake, or a
     * wake-up is on its way), a burst of submissions costs no locked write
     * to the line the loop thread clears. */
    if (rs__atomic_load(&loop->wake_pending) == 0 &&
        rs__atomic_exchange(&loop->wake_pending, 1) == 0) {
        rs__backend_loop_wake(loop);
    }
}

/* Wakes the loop for a flag set outside synced.lock (a stop): the empty
 * critical section orders the flag with the loop's last look before it
 * blocks, as queueing under the lock does for tasks. */
static void wake_for_flag(rs_event_loop *loop)
{
    rs__fastlock_lock(&loop->synced.lock);
    rs__fastlock_unlock(&loop->synced.lock);
    rs__event_loop_wake(loop);
}

static rs_event_loop *new_loop(const rs_event_loop_options *options, bool caller_thread)
{
    if (rs__library_check() != 0) {
        return NULL;
    }
    rs_backend backend = options ? options->backend : RS_BACKEND_DEFAULT;
    if (backend != RS_BACKEND_DEFAULT && backend != rs__backend_id()) {
        return rs__raise_null(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    rs_event_loop *loop = rs__mem_calloc(1, sizeof *loop);
    if (!loop) {
        return NULL;
    }
    loop->backend = rs__backend_id();
    loop->caller_thread = caller_thread;
    rs__scheduler_init(&loop->scheduler);
    rs__fastlock_init(&loop->synced.lock);
    rs__mutex_init(&loop->thread_lock);
    rs__mutex_init(&loop->calls_lock);
    rs__condvar_init(&loop->run_done);
    if (rs__backend_loop_init(loop) != 0) {
        goto fail;
    }
    if (live_add(loop) != 0) {
        rs__backend_loop_clean_up(loop);
        goto fail;
    }
    return loop;
fail:
    rs__condvar_clean_up(&loop->run_done);
    rs__mutex_clean_up(&loop->calls_lock);
    rs__mutex_clean_up(&loop->thread_lock);
    rs__fastlock_clean_up(&loop->synced.lock);
    rs__mem_release(loop);
    return NULL;
}

rs_event_loop *rs_event_loop_new(const rs_event_loop_options *options)
{
    return new_loop(options, false);
}

rs_event_loop *rs_event_loop_new_on_caller_thread(const rs_event_loop_options *options)
{
    return new_loop(options, true);
}

/* ---- running tasks (loop thread) ---- */

static void run_task(rs_event_loop *loop, rs_task *task, rs_task_status status)
{
    rs__metrics_bump(
        status == RS_TASK_STATUS_RUN ? &loop->metrics.tasks_run : &loop->metrics.tasks_canceled, 1);
    task->fn(task, task->arg, status);
}

/* A task taken off the scheduler runs unless a foreign cancel claimed it
 * first; then the cancel request, still queued, is what calls it. */
static void run_unlinked(rs_event_loop *loop, rs_task *task)
{
    if (rs__atomic_cas_int(&task->priv_state, RS__TASK_SCHEDULED, RS__TASK_IDLE)) {
        run_task(loop, task, RS_TASK_STATUS_RUN);
    }
}

/* Files every cross-thread submission in the scheduler: the tasks to run
 * now join its FIFO in one splice, timed ones go to the heap. Loop thread,
 * synced.lock held. Afterwards every scheduled task is in the scheduler, so
 * it can be unlinked from there. */
static void file_incoming_locked(rs_event_loop *loop)
{
    rs__scheduler_splice_now(&loop->scheduler, &loop->synced.incoming);
    rs_task *timed = loop->synced.incoming_timed.head;
    loop->synced.incoming_timed.head = loop->synced.incoming_timed.tail = NULL;
    while (timed) {
        rs_task *next = timed->priv_next;
        rs__scheduler_push_at(&loop->scheduler, timed, timed->priv_time_ns);
        timed = next;
    }
}

/* Moves cross-thread submissions into the scheduler and carries out cancel
 * requests. Loop thread. */
static void drain_synced(rs_event_loop *loop)
{
    rs__fastlock_lock(&loop->synced.lock);
    file_incoming_locked(loop);
    rs_task *cancels = loop->synced.cancel_head;
    loop->synced.cancel_head = loop->synced.cancel_tail = NULL;
    rs__fastlock_unlock(&loop->synced.lock);

    while (cancels) {
        rs_task *next = cancels->priv_cancel_next;
        cancels->priv_cancel_next = NULL;
        rs__scheduler_remove(&loop->scheduler, cancels);
        rs__atomic_store_int(&cancels->priv_state, RS__TASK_IDLE);
        run_task(loop, cancels, RS_TASK_STATUS_CANCELED);
        cancels = next;
    }
}

/* Runs the deferred completions queued so far; those they queue wait for
 * the next round. */
static void run_deferred(rs_event_loop *loop)
{
    struct rs__deferred *d = loop->deferred_head;
    loop->deferred_head = loop->deferred_tail = NULL;
    loop->in_deferred = true;
    while (d) {
        struct rs__deferred *next = d->next; /* fn may reuse d */
        d->fn(d);
        d = next;
    }
    loop->in_deferred = false;
}

/* Rounds of deferred completions one iteration runs at most. A completion
 * whose callback writes again, and is taken at once, queues another: a
 * stream writer then refills the kernel's buffer without a poll per round,
 * and a writer whose writes always complete at once (datagrams) still
 * cannot starve I/O. (libuv runs its pending callbacks up to 8 more times
 * after each poll for the same reason.) */
#define DEFERRED_ROUNDS 8

/* Starts or stops keeping times as rs_event_loop_set_metrics_timing asked:
 * a run's time counts from here. Loop thread, during a run. */
static void switch_timing(rs_event_loop *loop)
{
    struct rs__loop_metrics *m = &loop->metrics;
    if (m->timing) {
        rs__metrics_run_end(m);
        m->timing = false;
    } else {
        rs__metrics_run_begin(m);
        m->timing = true;
    }
}

/* Callbacks the loop has called: tasks and I/O callbacks. Loop thread. */
static inline uint64_t callbacks_called(const rs_event_loop *loop)
{
    const struct rs__loop_metrics *m = &loop->metrics;
    return rs__atomic_load_relaxed_u64(&m->tasks_run) +
           rs__atomic_load_relaxed_u64(&m->tasks_canceled) +
           rs__atomic_load_relaxed_u64(&m->io_callbacks);
}

/* The loop is about to wait with a timeout: lowers wake_pending, then takes
 * a last look at the cross-thread queue and the stop flag, under the lock.
 * Returns false (the flag raised again) if either has something: the wait
 * must then only poll. Loop thread.
 *
 * Why no wake-up is lost: a thread that queues work does so under the lock
 * and reads the flag after releasing it. If its critical section came
 * first, the look below sees the work. If the look came first, the clearing
 * store happens before the other thread's read of the flag (release by this
 * unlock, acquire by its lock), so it reads 0 (or a 1 raised after it by a
 * thread that then wakes the loop) and wakes the loop. A stop takes the
 * empty critical section of wake_for_flag for the same reason. */
static bool last_look_before_wait(rs_event_loop *loop)
{
    rs__atomic_store(&loop->wake_pending, 0);
    rs__fastlock_lock(&loop->synced.lock);
    bool queued = loop->synced.incoming.head || loop->synced.incoming_timed.head ||
                  loop->synced.cancel_head || rs__atomic_load(&loop->stop_requested);
    rs__fastlock_unlock(&loop->synced.lock);
    if (queued) {
        rs__atomic_store(&loop->wake_pending, 1);
    }
    return !queued;
}

/* One iteration: what is ready, then the wait for I/O. The wait blocks
 * unless work is queued or a stop was asked for, and, with poll_only, never
 * (RS_RUN_NOWAIT); with poll_unless_called_since (RS_RUN_ONCE), only while
 * the loop has called no callback since the count it points to. Inline, with
 * constant arguments for the loop's own thread. */
static inline void run_iteration(rs_event_loop *loop, bool poll_only,
                                 const uint64_t *poll_unless_called_since)
{
    struct rs__scheduler *s = &loop->scheduler;
    rs__metrics_bump(&loop->metrics.iterations, 1);
    if ((rs__atomic_load(&loop->metrics.timing_wanted) != 0) != loop->metrics.timing) {
        switch_timing(loop);
    }
    /* The flag stays up while the loop is awake: work queued meanwhile by
     * other threads is drained here, on the next iteration, without a
     * wake-up. A clear flag means the queue was empty at the last look
     * before a wait and nothing was queued since (whoever queues raises it). */
    if (rs__atomic_load(&loop->wake_pending)) {
        drain_synced(loop);
    }

    for (int round = 0; round < DEFERRED_ROUNDS && loop->deferred_head; round++) {
        run_deferred(loop);
    }
    rs_task *task;
    if (rs__scheduler_has_now(s)) {
        rs__scheduler_begin_batch(s);
        while ((task = rs__scheduler_pop_running(s))) {
            run_unlinked(loop, task);
        }
    }

    uint64_t next;
    if (rs__scheduler_next_time(s, &next)) {
        /* The clock is read only when a timer is waiting. */
        uint64_t now = rs__clock_now_ns();
        s->floor_ns = now;
        uint64_t seq_limit = s->seq;
        while ((task = rs__scheduler_pop_due(s, now, seq_limit))) {
            run_unlinked(loop, task);
        }
    }

    int64_t timeout = -1;
    if (poll_only || rs__scheduler_has_now(s) || loop->deferred_head ||
        rs__atomic_load(&loop->stop_requested) ||
        (poll_unless_called_since && callbacks_called(loop) != *poll_unless_called_since)) {
        timeout = 0;
    } else if (rs__scheduler_next_time(s, &next)) {
        uint64_t now = rs__clock_now_ns();
        timeout = next > now ? (int64_t)(next - now) : 0;
    }
    /* Only a wait that may block lowers the flag: while the loop keeps
     * finding work, other threads queue without waking it. */
    if (timeout != 0 && rs__atomic_load(&loop->wake_pending) && !last_look_before_wait(loop)) {
        timeout = 0;
    }
    /* Only a wait that may block is timed: a poll counts as running, and
     * costs no clock reading. */
    if (timeout != 0 && loop->metrics.timing) {
        rs__metrics_wait_begin(&loop->metrics);
    }
    rs__backend_loop_wait(loop, timeout);
    if (loop->metrics.waiting) {
        rs__metrics_wait_end(&loop->metrics);
    }
}

/* The calling thread becomes the loop's thread for a run. */
static void enter_run(rs_event_loop *loop)
{
    rs__atomic_store_u64(&loop->owner_thread, rs__thread_current_id());
    rs__current_loop = loop;
    if (rs__atomic_load(&loop->metrics.timing_wanted)) {
        switch_timing(loop);
    }
}

/* The run ends: the calling thread is no longer the loop's. */
static void leave_run(rs_event_loop *loop)
{
    if (loop->metrics.timing) {
        switch_timing(loop);
    }
    /* The calls still waiting were not run: their callers take them over
     * (rs__event_loop_call_and_wait). */
    rs__mutex_lock(&loop->calls_lock);
    loop->thread_running = false;
    for (struct rs__loop_call *c = loop->calls; c; c = c->next) {
        c->linked = false;
        c->stopped = true;
        rs__condvar_broadcast(&c->cond);
    }
    loop->calls = NULL;
    rs__mutex_unlock(&loop->calls_lock);
    rs__current_loop = NULL;
    rs__atomic_store_u64(&loop->owner_thread, 0);
}

static void loop_thread_main(void *arg)
{
    rs_event_loop *loop = arg;
    enter_run(loop);
    while (!rs__atomic_load(&loop->stop_requested)) {
        run_iteration(loop, false, NULL);
    }
    leave_run(loop);
}

/* ---- thread control ---- */

static void set_thread_running(rs_event_loop *loop, bool running)
{
    rs__mutex_lock(&loop->calls_lock);
    loop->thread_running = running;
    rs__mutex_unlock(&loop->calls_lock);
}

/* Starts the loop's thread. thread_lock held, no thread started. */
static int start_thread_locked(rs_event_loop *loop)
{
    rs__atomic_store(&loop->stop_requested, 0);
    set_thread_running(loop, true);
    if (rs__thread_start(&loop->thread, loop_thread_main, loop, "rs-event-loop") != 0) {
        set_thread_running(loop, false);
        return -1;
    }
    loop->thread_started = true;
    return 0;
}

/* Stops the loop's thread and waits for it. thread_lock held. Returns
 * whether it was running (and not already asked to stop). */
static bool stop_thread_locked(rs_event_loop *loop)
{
    if (!loop->thread_started) {
        return false;
    }
    bool was_running = rs__atomic_exchange(&loop->stop_requested, 1) == 0;
    if (was_running) {
        wake_for_flag(loop);
    }
    rs__thread_join(&loop->thread);
    loop->thread_started = false;
    return was_running;
}

/* The calling thread acts as the loop's thread (destroy, or a call while the
 * loop does not run); returns the loop it was before. */
static rs_event_loop *act_as_loop_thread(rs_event_loop *loop)
{
    rs__atomic_store_u64(&loop->owner_thread, rs__thread_current_id());
    rs_event_loop *outer = rs__current_loop;
    rs__current_loop = loop;
    return outer;
}

static void stop_acting(rs_event_loop *loop, rs_event_loop *outer)
{
    rs__current_loop = outer;
    rs__atomic_store_u64(&loop->owner_thread, 0);
}

int rs_event_loop_run(rs_event_loop *loop)
{
    if (!loop || loop->caller_thread) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs_event_loop_is_on_thread(loop)) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    rs__mutex_lock(&loop->thread_lock);
    if (loop->thread_started) {
        if (!rs__atomic_load(&loop->stop_requested)) {
            rs__mutex_unlock(&loop->thread_lock);
            return rs_raise(RS_ERROR_INVALID_STATE);
        }
        rs__thread_join(&loop->thread);
        loop->thread_started = false;
    }
    int rc = start_thread_locked(loop);
    rs__mutex_unlock(&loop->thread_lock);
    return rc;
}

/* ---- runs on the caller's thread ---- */

/* Runs the mode's iterations. The calling thread is the loop's. */
static void run_mode(rs_event_loop *loop, rs_run_mode mode)
{
    switch (mode) {
    case RS_RUN_DEFAULT:
        while (!rs__atomic_load(&loop->stop_requested)) {
            run_iteration(loop, false, NULL);
        }
        break;
    case RS_RUN_ONCE: {
        /* Iterations until one of them called a callback: the first waits
         * only if what was ready called none, and a wait whose wake-up
         * brought nothing to call (one left over from work already done)
         * does not end the run. */
        uint64_t before = callbacks_called(loop);
        do {
            run_iteration(loop, false, &before);
        } while (callbacks_called(loop) == before && !rs__atomic_load(&loop->stop_requested));
        break;
    }
    case RS_RUN_NOWAIT:
        run_iteration(loop, true, NULL);
        break;
    }
}

int rs_event_loop_run_here(rs_event_loop *loop, rs_run_mode mode)
{
    if (!loop || !loop->caller_thread ||
        (mode != RS_RUN_DEFAULT && mode != RS_RUN_ONCE && mode != RS_RUN_NOWAIT)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    /* From a callback (this loop's or another's), the run would nest in an
     * iteration that cannot go on until it returns. */
    if (rs__current_loop) {
        return rs_raise(RS_ERROR_WRONG_THREAD);
    }
    /* Starting and ending a run happen under thread_lock, with
     * thread_running set and cleared with running_here: a foreign thread's
     * call (rs__event_loop_call_and_wait) sees a run in progress, which runs
     * it from a task, or none, and then acts as the loop's thread itself
     * while holding the lock, so no run starts meanwhile. */
    rs__mutex_lock(&loop->thread_lock);
    if (loop->running_here) {
        rs__mutex_unlock(&loop->thread_lock);
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    loop->running_here = true;
    set_thread_running(loop, true);
    enter_run(loop);
    rs__mutex_unlock(&loop->thread_lock);

    /* A stop made before this run ends it before its first iteration; the
     * stops made during it are consumed when it returns. */
    if (rs__atomic_exchange(&loop->stop_requested, 0) == 0) {
        run_mode(loop, mode);
        rs__atomic_store(&loop->stop_requested, 0);
    }

    rs__mutex_lock(&loop->thread_lock);
    leave_run(loop);
    loop->running_here = false;
    rs__condvar_broadcast(&loop->run_done);
    rs__mutex_unlock(&loop->thread_lock);
    return 0;
}

int rs_event_loop_set_metrics_timing(rs_event_loop *loop, bool on)
{
    if (!loop) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    rs__atomic_store(&loop->metrics.timing_wanted, on ? 1 : 0);
    return 0;
}

int rs_event_loop_stop(rs_event_loop *loop)
{
    if (!loop) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs__atomic_exchange(&loop->stop_requested, 1) == 0) {
        wake_for_flag(loop);
    }
    return 0;
}

int rs_event_loop_wait_for_stop(rs_event_loop *loop)
{
    if (!loop) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs_event_loop_is_on_thread(loop)) {
        return rs_raise(RS_ERROR_WOULD_DEADLOCK);
    }
    rs__mutex_lock(&loop->thread_lock);
    if (loop->thread_started) {
        rs__thread_join(&loop->thread);
        loop->thread_started = false;
    }
    while (loop->running_here) {
        rs__condvar_wait(&loop->run_done, &loop->thread_lock);
    }
    rs__mutex_unlock(&loop->thread_lock);
    return 0;
}

/* Cancels every task: the scheduler's, the cross-thread queue's and the
 * pending cancel requests, and runs the deferred completions, until none is
 * left (a cancelled task may schedule
 * another). Calling thread acts as the loop thread. */
static void cancel_all(rs_event_loop *loop)
{
    for (;;) {
        drain_synced(loop);
        /* Deferred completions run (they cannot be cancelled) and may
         * schedule tasks: the loop goes on until both are empty. */
        if (loop->deferred_head) {
            run_deferred(loop);
            continue;
        }
        rs_task *task = rs__scheduler_pop_any(&loop->scheduler);
        if (!task) {
            rs__fastlock_lock(&loop->synced.lock);
            bool idle = !loop->synced.incoming.head && !loop->synced.incoming_timed.head &&
                        !loop->synced.cancel_head;
            rs__fastlock_unlock(&loop->synced.lock);
            if (idle) {
                return;
            }
            continue;
        }
        if (rs__atomic_cas_int(&task->priv_state, RS__TASK_SCHEDULED, RS__TASK_IDLE)) {
            run_task(loop, task, RS_TASK_STATUS_CANCELED);
        }
    }
}

int rs_event_loop_destroy(rs_event_loop *loop)
{
    if (!loop) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    rs__mutex_lock(&live_lock);
    size_t i = live_find(loop);
    if (i == SIZE_MAX) {
        rs__mutex_unlock(&live_lock);
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs_event_loop_is_on_thread(loop)) {
        rs__mutex_unlock(&live_lock);
        return rs_raise(RS_ERROR_WOULD_DEADLOCK);
    }
    live_remove_at(i);
    rs__mutex_unlock(&live_lock);

    /* The handles are counted once the thread stopped: a connect that
     * completes meanwhile turns into a handle. A loop that still holds
     * sockets or pipe ends is left as it was (as uv_loop_close refuses with
     * EBUSY): freeing it would leave them pointing at freed memory, and
     * closing them behind the application's back would leave it pointers
     * to objects it can no longer tell apart from live ones. */
    rs__mutex_lock(&loop->thread_lock);
    if (loop->running_here) {
        /* Run on another thread (on the run's own, the check above
         * refused): that thread returns into the loop, so it cannot be
         * freed under it. */
        rs__mutex_unlock(&loop->thread_lock);
        rs__mutex_lock(&live_lock);
        int added = live_add_locked(loop);
        rs__mutex_unlock(&live_lock);
        if (added != 0) {
            RS__LOG(RS_LOG_ERROR, "event loop: could not list it again after a refused destroy");
        }
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    bool was_running = stop_thread_locked(loop);
    long handles = rs__atomic_load(&loop->handles);
    if (handles != 0) {
        RS__LOG(RS_LOG_ERROR,
                "event loop: not destroyed: %ld sockets, pipe ends or watches still open on it",
                handles);
        int restarted = was_running ? start_thread_locked(loop) : 0;
        rs__mutex_unlock(&loop->thread_lock);
        if (restarted != 0) {
            RS__LOG(RS_LOG_ERROR, "event loop: could not run it again after a refused destroy");
        }
        rs__mutex_lock(&live_lock);
        int added = live_add_locked(loop);
        rs__mutex_unlock(&live_lock);
        if (added != 0) {
            RS__LOG(RS_LOG_ERROR, "event loop: could not list it again after a refused destroy");
        }
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    rs__mutex_unlock(&loop->thread_lock);

    rs_event_loop *outer = act_as_loop_thread(loop);
    rs__resolver_forget_loop(loop);
    cancel_all(loop);
    rs__backend_loop_clean_up(loop);
    /* The backend's clean-up may have collected completions that scheduled
     * their callbacks (IOCP: writes cancelled by a close): cancel those too. */
    cancel_all(loop);
    stop_acting(loop, outer);

    rs__condvar_clean_up(&loop->run_done);
    rs__mutex_clean_up(&loop->calls_lock);
    rs__mutex_clean_up(&loop->thread_lock);
    rs__fastlock_clean_up(&loop->synced.lock);
    rs__mem_release(loop);
    return 0;
}

int rs__event_loop_live_count(void)
{
    rs__mutex_lock(&live_lock);
    size_t n = live_count;
    rs__mutex_unlock(&live_lock);
    return (int)n;
}

/* ---- calls from foreign threads ---- */

static void loop_call_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct rs__loop_call *c = arg;
    rs_event_loop *loop = rs__current_loop;
    enum rs__call_mode mode = c->taken_over                  ? RS__CALL_INLINE
                              : status == RS_TASK_STATUS_RUN ? RS__CALL_TASK
                                                             : RS__CALL_LOOP_GONE;
    c->result = c->fn(c->arg, mode);
    if (c->taken_over) {
        return; /* the caller is this thread */
    }
    rs__mutex_lock(&loop->calls_lock);
    if (c->linked) {
        struct rs__loop_call **p = &loop->calls;
        while (*p != c) {
            p = &(*p)->next;
        }
        *p = c->next;
        c->linked = false;
    }
    c->done = true;
    rs__condvar_broadcast(&c->cond);
    rs__mutex_unlock(&loop->calls_lock);
}

int rs__event_loop_call_and_wait(rs_event_loop *loop, rs__loop_call_fn *fn, void *arg)
{
    struct rs__loop_call c;
    memset(&c, 0, sizeof c);
    c.fn = fn;
    c.arg = arg;
    rs__condvar_init(&c.cond);
    rs_task_init(&c.task, loop_call_task, &c, "call from a foreign thread");
    bool scheduled = false;
    for (;;) {
        rs__mutex_lock(&loop->calls_lock);
        if (loop->thread_running) {
            c.stopped = false;
            c.linked = true;
            c.next = loop->calls;
            loop->calls = &c;
            rs__mutex_unlock(&loop->calls_lock);
            if (!scheduled) {
                scheduled = true;
                rs_event_loop_schedule_now(loop, &c.task);
            }
            rs__mutex_lock(&loop->calls_lock);
            while (!c.done && !c.stopped) {
                rs__condvar_wait(&c.cond, &loop->calls_lock);
            }
            bool done = c.done;
            rs__mutex_unlock(&loop->calls_lock);
            if (done) {
                break;
            }
            continue; /* the thread left without running it */
        }
        rs__mutex_unlock(&loop->calls_lock);

        rs__mutex_lock(&loop->thread_lock);
        if ((loop->thread_started && !rs__atomic_load(&loop->stop_requested)) ||
            loop->running_here) {
            /* Run again meanwhile: the task (if scheduled) runs there. */
            rs__mutex_unlock(&loop->thread_lock);
            continue;
        }
        stop_thread_locked(loop);
        rs_event_loop *outer = act_as_loop_thread(loop);
        if (scheduled) {
            /* Still queued: cancelling it here, as the loop's thread, runs
             * it at once, as a call of this thread. */
            c.taken_over = true;
            rs_event_loop_cancel_task(loop, &c.task);
        } else {
            c.result = fn(arg, RS__CALL_INLINE);
        }
        stop_acting(loop, outer);
        rs__mutex_unlock(&loop->thread_lock);
        break;
    }
    rs__condvar_clean_up(&c.cond);
    return c.result;
}

/* ---- scheduling ---- */

/* How a task enters the loop. */
enum schedule_kind { SCHEDULE_NOW, SCHEDULE_AT, SCHEDULE_SERIALIZED };

static int schedule(rs_event_loop *loop, rs_task *task, enum schedule_kind kind, uint64_t time_ns)
{
    if (!loop || !task || !task->fn) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (kind != SCHEDULE_SERIALIZED && on_thread(loop)) {
        if (!rs__atomic_cas_int(&task->priv_state, RS__TASK_IDLE, RS__TASK_SCHEDULED)) {
            return rs_raise(RS_ERROR_INVALID_STATE);
        }
        if (kind == SCHEDULE_NOW) {
            rs__scheduler_push_now(&loop->scheduler, task);
        } else {
            rs__scheduler_push_at(&loop->scheduler, task, time_ns);
        }
        return 0;
    }
    /* Through the cross-thread queues; the loop files them on its next
     * drain. The state changes under the lock so that a cancel on the loop
     * thread sees either an idle task or one already queued. */
    rs__fastlock_lock(&loop->synced.lock);
    if (!rs__atomic_cas_int(&task->priv_state, RS__TASK_IDLE, RS__TASK_SCHEDULED)) {
        rs__fastlock_unlock(&loop->synced.lock);
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (kind == SCHEDULE_AT) {
        task->priv_time_ns = time_ns;
        rs__task_list_append(&loop->synced.incoming_timed, task);
    } else {
        task->priv_where = RS__WHERE_NOW; /* true once filed: the FIFO is spliced whole */
        rs__task_list_append(&loop->synced.incoming, task);
    }
    rs__fastlock_unlock(&loop->synced.lock);
    rs__event_loop_wake(loop);
    return 0;
}

int rs__event_loop_schedule_now(rs_event_loop *loop, rs_task *task)
{
    return schedule(loop, task, SCHEDULE_NOW, 0);
}

int rs__event_loop_schedule_at(rs_event_loop *loop, rs_task *task, uint64_t time_ns)
{
    return schedule(loop, task, SCHEDULE_AT, time_ns);
}

int rs_event_loop_schedule_now(rs_event_loop *loop, rs_task *task)
{
    return rs__event_loop_schedule_now(loop, task);
}

int rs_event_loop_schedule_at(rs_event_loop *loop, rs_task *task, uint64_t time_ns)
{
    return rs__event_loop_schedule_at(loop, task, time_ns);
}

int rs_event_loop_schedule_serialized(rs_event_loop *loop, rs_task *task)
{
    return schedule(loop, task, SCHEDULE_SERIALIZED, 0);
}

int rs_event_loop_cancel_task(rs_event_loop *loop, rs_task *task)
{
    return rs__event_loop_cancel_task(loop, task);
}

int rs__event_loop_cancel_task(rs_event_loop *loop, rs_task *task)
{
    if (!loop || !task) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (on_thread(loop)) {
        /* Not scheduled: nothing to cancel, and no lock to take (a close
         * cancels several tasks that are usually idle). */
        if (rs__atomic_load_int(&task->priv_state) != RS__TASK_SCHEDULED) {
            return 0;
        }
        rs__fastlock_lock(&loop->synced.lock);
        if (!rs__atomic_cas_int(&task->priv_state, RS__TASK_SCHEDULED, RS__TASK_IDLE)) {
            rs__fastlock_unlock(&loop->synced.lock);
            return 0; /* not scheduled, or a foreign cancel already owns it */
        }
        /* A task still in a cross-thread queue is filed first, so that it
         * can be unlinked from the scheduler like any other. */
        file_incoming_locked(loop);
        rs__fastlock_unlock(&loop->synced.lock);
        rs__scheduler_remove(&loop->scheduler, task);
        run_task(loop, task, RS_TASK_STATUS_CANCELED);
        return 0;
    }
    if (rs__atomic_cas_int(&task->priv_state, RS__TASK_SCHEDULED, RS__TASK_CANCEL_REQUESTED)) {
        rs__fastlock_lock(&loop->synced.lock);
        task->priv_cancel_next = NULL;
        if (loop->synced.cancel_tail) {
            loop->synced.cancel_tail->priv_cancel_next = task;
        } else {
            loop->synced.cancel_head = task;
        }
        loop->synced.cancel_tail = task;
        rs__fastlock_unlock(&loop->synced.lock);
        rs__event_loop_wake(loop);
    }
    return 0;
}
