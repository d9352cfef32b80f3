/*
 * Pipe ends as common/ and the backends share them. common/pipe.c owns the
 * public API: validation, the readable-event rules, write-completion
 * delivery and the cross-thread clean-up hop. A backend owns the OS pipe
 * (through `impl`) and reports to common/ with the rs__pipe_* functions
 * below, always on the end's loop thread.
 */
#ifndef RS_COMMON_PIPE_IMPL_H
#define RS_COMMON_PIPE_IMPL_H

#include <reseau/pipe.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a read end holds right now (rs__backend_pipe_readable_state). */
enum rs__pipe_readable_state {
    RS__PIPE_EMPTY = 0, /* nothing to read; the write end is open */
    RS__PIPE_DATA,      /* at least one byte can be read */
    RS__PIPE_CLOSED,    /* every byte was read and the write end is gone */
};

/* The part of clean-up that is the same for both ends. */
struct rs__pipe_clean_up {
    rs_task task; /* the hop to the loop, then the final step */
    rs_pipe_on_clean_up_complete_fn *on_complete;
    void *user_data;
    bool closing;        /* clean-up started: no new I/O, no more events */
    bool backend_closed; /* the backend released its state */
    /* The end no longer counts among its loop's handles (rs_event_loop_destroy
     * refuses while any is left): from the moment the clean-up is asked for,
     * even when it still has to hop to the loop. */
    bool handle_released;
};

struct rs_pipe_read_end {
    rs_event_loop *loop;
    void *impl; /* the backend's state */
    struct rs__pipe_clean_up clean_up;

    /* Readable events (loop-thread data). */
    rs_pipe_on_readable_fn *on_readable;
    void *user_data;
    rs_task check_task; /* looks at the pipe on the next iteration */
    bool check_scheduled;
    bool subscribed;
    bool armed;         /* the next sign of data produces an event */
    bool eof_delivered; /* the BROKEN_PIPE event was sent */
    bool in_callback;
    int last_read; /* during a callback: the outcome of its last read */
};

/* One rs_pipe_write request, from rs_pipe_write until its callback ran. */
struct rs__pipe_write_req {
    struct rs__pipe_write_req *next;         /* common/'s FIFO of undelivered requests */
    struct rs__pipe_write_req *backend_next; /* the backend's own queue, if it keeps one */
    const unsigned char *data;
    size_t len;
    size_t written;         /* the backend's running count */
    size_t backend_pending; /* the backend's count of OS operations in flight */
    int backend_error;      /* the backend's first error while operations remain */
    rs_pipe_on_write_completed_fn *on_complete;
    void *user_data;
    int error;
    bool done; /* the backend finished with it */
};

struct rs_pipe_write_end {
    rs_event_loop *loop;
    void *impl; /* the backend's state */
    struct rs__pipe_clean_up clean_up;

    /* Requests not yet delivered, in submission order (loop-thread data). */
    struct rs__pipe_write_req *head;
    struct rs__pipe_write_req *tail;
    rs_task deliver_task;
    bool deliver_scheduled;
    bool delivering;
    uint8_t spare_count; /* length of spare_reqs */
    void *spare_reqs;    /* delivered requests kept for the next writes (alloc.h) */
};

/* The calls a backend makes into common/ for its pipes (rs__pipe_write_done,
 * rs__pipe_read_end_on_event, rs__pipe_*_end_on_closed) are part of the
 * seam: common/backend.h. */

#endif
