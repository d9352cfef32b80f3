/*
 * The task scheduler of one event loop, owned by the loop thread: a FIFO of
 * tasks to run now and a min-heap of timed tasks. Neither allocates: both
 * link the caller-owned rs_task structs, so scheduling cannot fail for lack
 * of memory, even for a task handed over by another thread.
 *
 * The timed heap is a pairing heap keyed by (time, sequence number): insert
 * O(1), remove-min and remove-any O(log n) amortised, and equal times run in
 * scheduling order.
 */
#ifndef RS_COMMON_SCHEDULER_H
#define RS_COMMON_SCHEDULER_H

#include <reseau/event_loop.h>

#include <stdbool.h>

/* rs_task.priv_state: changed with atomic compare-and-swap, so that a cancel
 * from a foreign thread and the loop running the task agree on which of the
 * two calls the task's function. */
enum {
    RS__TASK_IDLE = 0,
    RS__TASK_SCHEDULED = 1,
    RS__TASK_CANCEL_REQUESTED = 2,
};

/* rs_task.priv_where: which structure links the task (loop-thread data). */
enum {
    RS__WHERE_NONE = 0,
    RS__WHERE_NOW,   /* scheduler.now */
    RS__WHERE_TIMED, /* scheduler.heap */
};

struct rs__task_list {
    rs_task *head;
    rs_task *tail;
};

struct rs__scheduler {
    /* Tasks to run now, FIFO. The tasks from the head up to batch_last are
     * this iteration's batch: starting a batch costs nothing, and a whole
     * list handed over by another thread joins the FIFO in one splice. */
    struct rs__task_list now;
    rs_task *batch_last;
    rs_task *heap; /* pairing-heap root */
    size_t timed_count;
    uint64_t seq;
    /* Times below this are raised to it: the loop sets it to the time of the
     * timer pass it is running, so a task that reschedules itself in the past
     * lands behind every task already due instead of starving them. */
    uint64_t floor_ns;
};

void rs__scheduler_init(struct rs__scheduler *s);
bool rs__scheduler_is_empty(const struct rs__scheduler *s);

/* Link a task; it must not be linked anywhere. */
void rs__scheduler_push_now(struct rs__scheduler *s, rs_task *task);
/* Appends a whole list of tasks whose priv_where is already RS__WHERE_NOW,
 * emptying it. */
void rs__scheduler_splice_now(struct rs__scheduler *s, struct rs__task_list *list);
void rs__scheduler_push_at(struct rs__scheduler *s, rs_task *task, uint64_t time_ns);
/* Unlink a task from whatever part of the scheduler holds it (no-op if none). */
void rs__scheduler_remove(struct rs__scheduler *s, rs_task *task);

/* Starts a batch: the tasks in the now-FIFO at this point; tasks scheduled
 * while the batch runs wait for the next iteration. */
static inline void rs__scheduler_begin_batch(struct rs__scheduler *s)
{
    s->batch_last = s->now.tail;
}
/* Next task of the running batch, unlinked; NULL when the batch is done. */
rs_task *rs__scheduler_pop_running(struct rs__scheduler *s);
/* Earliest timed task due at now_ns and scheduled before seq_limit, unlinked; or NULL. */
rs_task *rs__scheduler_pop_due(struct rs__scheduler *s, uint64_t now_ns, uint64_t seq_limit);
/* Any linked task, unlinked (used to cancel everything); NULL when empty. */
rs_task *rs__scheduler_pop_any(struct rs__scheduler *s);

/* True if a task waits in the now-FIFO. (Inline, like the other small
 * queries: the loop asks them on every iteration.) */
static inline bool rs__scheduler_has_now(const struct rs__scheduler *s)
{
    return s->now.head != NULL;
}
/* Time of the earliest timed task; false if there is none. */
static inline bool rs__scheduler_next_time(const struct rs__scheduler *s, uint64_t *time_ns)
{
    if (!s->heap) {
        return false;
    }
    *time_ns = s->heap->priv_time_ns;
    return true;
}

/* Intrusive FIFO helpers shared with the loop's cross-thread queue. Append
 * is inline: a task scheduled from another thread is appended under the
 * queue's lock. */
static inline void rs__task_list_append(struct rs__task_list *list, rs_task *task)
{
    task->priv_next = NULL;
    task->priv_prev = list->tail;
    if (list->tail) {
        list->tail->priv_next = task;
    } else {
        list->head = task;
    }
    list->tail = task;
}
void rs__task_list_unlink(struct rs__task_list *list, rs_task *task);
rs_task *rs__task_list_pop(struct rs__task_list *list);

#endif
