#include "scheduler.h"

#include "compat.h"

#include <stddef.h>

/*
 * Pairing heap links, reusing the task's list pointers (a task is in one
 * structure at a time): priv_child is the first child, priv_next the next
 * sibling, priv_prev the previous sibling or, for a first child, the parent.
 */

static bool before(const rs_task *a, const rs_task *b)
{
    return a->priv_time_ns < b->priv_time_ns ||
           (a->priv_time_ns == b->priv_time_ns && a->priv_seq < b->priv_seq);
}

static rs_task *meld(rs_task *a, rs_task *b)
{
    if (!a) {
        return b;
    }
    if (!b) {
        return a;
    }
    if (before(b, a)) {
        rs_task *t = a;
        a = b;
        b = t;
    }
    /* b becomes a's first child. */
    b->priv_prev = a;
    b->priv_next = a->priv_child;
    if (a->priv_child) {
        a->priv_child->priv_prev = b;
    }
    a->priv_child = b;
    a->priv_next = NULL;
    a->priv_prev = NULL;
    return a;
}

/* Standard two-pass merge of a sibling list: pair left to right, then fold
 * right to left. The first pass links pairs into a reversed chain through
 * priv_next so no extra memory is needed. */
static rs_task *merge_siblings(rs_task *first)
{
    rs_task *pairs = NULL;
    while (first) {
        rs_task *a = first;
        rs_task *b = a->priv_next;
        first = b ? b->priv_next : NULL;
        a->priv_next = a->priv_prev = NULL;
        if (b) {
            b->priv_next = b->priv_prev = NULL;
        }
        rs_task *m = meld(a, b);
        m->priv_next = pairs;
        pairs = m;
    }
    rs_task *root = NULL;
    while (pairs) {
        rs_task *next = pairs->priv_next;
        pairs->priv_next = NULL;
        root = meld(pairs, root);
        pairs = next;
    }
    return root;
}

static void clear_links(rs_task *t)
{
    t->priv_next = t->priv_prev = t->priv_child = NULL;
    t->priv_where = RS__WHERE_NONE;
}

static void heap_remove(struct rs__scheduler *s, rs_task *t)
{
    if (t == s->heap) {
        s->heap = merge_siblings(t->priv_child);
    } else {
        /* Detach t (with its subtree) from its parent or left sibling. */
        rs_task *prev = t->priv_prev;
        if (prev->priv_child == t) {
            prev->priv_child = t->priv_next;
        } else {
            prev->priv_next = t->priv_next;
        }
        if (t->priv_next) {
            t->priv_next->priv_prev = prev;
        }
        t->priv_next = t->priv_prev = NULL;
        s->heap = meld(s->heap, merge_siblings(t->priv_child));
    }
    s->timed_count--;
    clear_links(t);
}

/* The head's priv_prev is never read (stale after the head before it
 * left): taking the head, the common case, writes nothing in the next
 * task, whose cache line another thread may have written last. */
void rs__task_list_unlink(struct rs__task_list *list, rs_task *task)
{
    rs_task *next = task->priv_next;
    if (task == list->head) {
        list->head = next;
        if (!next) {
            list->tail = NULL;
        }
    } else {
        rs_task *prev = task->priv_prev;
        prev->priv_next = next;
        if (next) {
            next->priv_prev = prev;
        } else {
            list->tail = prev;
        }
    }
}

rs_task *rs__task_list_pop(struct rs__task_list *list)
{
    rs_task *t = list->head;
    if (t) {
        rs__task_list_unlink(list, t);
    }
    return t;
}

void rs__scheduler_init(struct rs__scheduler *s)
{
    s->now.head = s->now.tail = NULL;
    s->batch_last = NULL;
    s->heap = NULL;
    s->timed_count = 0;
    s->seq = 0;
    s->floor_ns = 0;
}

bool rs__scheduler_is_empty(const struct rs__scheduler *s)
{
    return !s->now.head && !s->heap;
}

void rs__scheduler_push_now(struct rs__scheduler *s, rs_task *task)
{
    task->priv_child = NULL;
    task->priv_where = RS__WHERE_NOW;
    rs__task_list_append(&s->now, task);
}

void rs__scheduler_splice_now(struct rs__scheduler *s, struct rs__task_list *list)
{
    if (!list->head) {
        return;
    }
    list->head->priv_prev = s->now.tail;
    if (s->now.tail) {
        s->now.tail->priv_next = list->head;
    } else {
        s->now.head = list->head;
    }
    s->now.tail = list->tail;
    list->head = list->tail = NULL;
}

void rs__scheduler_push_at(struct rs__scheduler *s, rs_task *task, uint64_t time_ns)
{
    task->priv_next = task->priv_prev = task->priv_child = NULL;
    task->priv_time_ns = time_ns < s->floor_ns ? s->floor_ns : time_ns;
    task->priv_seq = s->seq++;
    task->priv_where = RS__WHERE_TIMED;
    s->heap = meld(s->heap, task);
    s->timed_count++;
}

void rs__scheduler_remove(struct rs__scheduler *s, rs_task *task)
{
    switch (task->priv_where) {
    case RS__WHERE_NOW:
        if (task == s->batch_last) {
            /* The batch is a prefix of the FIFO: it now ends one earlier
             * (or is empty: the head's priv_prev is stale). */
            s->batch_last = task == s->now.head ? NULL : task->priv_prev;
        }
        rs__task_list_unlink(&s->now, task);
        break;
    case RS__WHERE_TIMED:
        heap_remove(s, task);
        return;
    default:
        return;
    }
    clear_links(task);
}

rs_task *rs__scheduler_pop_running(struct rs__scheduler *s)
{
    rs_task *t = s->now.head;
    if (!t || !s->batch_last) {
        return NULL;
    }
    if (t == s->batch_last) {
        s->batch_last = NULL;
    }
    rs__task_list_unlink(&s->now, t);
    t->priv_where = RS__WHERE_NONE;
    if (s->now.head) {
        /* The next task's line is usually still in the cache of the thread
         * that scheduled it: start moving it while this one runs. */
        RS__PREFETCH_FOR_WRITE(s->now.head);
    }
    return t;
}

rs_task *rs__scheduler_pop_due(struct rs__scheduler *s, uint64_t now_ns, uint64_t seq_limit)
{
    rs_task *t = s->heap;
    if (!t || t->priv_time_ns > now_ns || t->priv_seq >= seq_limit) {
        return NULL;
    }
    heap_remove(s, t);
    return t;
}

rs_task *rs__scheduler_pop_any(struct rs__scheduler *s)
{
    rs_task *t = s->now.head;
    if (t) {
        rs__scheduler_remove(s, t);
    }
    if (!t && s->heap) {
        t = s->heap;
        heap_remove(s, t);
    }
    return t;
}
