/*
 * The backend contract: every function a backend (backends/iocp,
 * backends/libevent) defines, and nothing else. common/ calls these; a
 * backend calls back into common/ only through the internal headers of
 * common/. Each backend compiles exactly this list.
 *
 * Threading: "loop thread" means the thread running the loop (or the thread
 * destroying it); "any thread" functions must be safe concurrently with the
 * loop thread.
 */
#ifndef RS_COMMON_BACKEND_H
#define RS_COMMON_BACKEND_H

#include <reseau/event_loop.h>
#include <reseau/pipe.h>

#include <stddef.h>
#include <stdint.h>

/* ---- identity ---- */
rs_backend rs__backend_id(void);
const char *rs__backend_name(void);

/* ---- library ---- */

/* Called under the library lock on the 0 -> 1 init transition (Windows:
 * WSAStartup 2.2 + version check + extension functions). Raises and
 * returns -1 on failure, having undone its own work. */
int rs__backend_library_init(void);
/* Called under the library lock on the 1 -> 0 transition. */
void rs__backend_library_clean_up(void);

/* ---- event loop ---- */

/* Creates the loop's OS state (completion port / event_base and wake-up
 * channel) and stores it in loop->impl. Any thread. Raises on failure. */
int rs__backend_loop_init(rs_event_loop *loop);
/* Frees what rs__backend_loop_init created. The loop thread has exited. */
void rs__backend_loop_clean_up(rs_event_loop *loop);
/* Makes a blocked rs__backend_loop_wait return soon. Any thread. common/
 * coalesces: it calls this at most once per loop iteration. */
void rs__backend_loop_wake(rs_event_loop *loop);
/* Loop thread: waits for I/O readiness/completions or a wake-up for at most
 * timeout_ns (negative: no limit; 0: poll) and runs the I/O callbacks that
 * became ready. */
void rs__backend_loop_wait(rs_event_loop *loop, int64_t timeout_ns);

/* ---- pipes ----
 * common/pipe.c validates arguments, threads and states, keeps the readable
 * rules and delivers every callback; the backend moves bytes and reports
 * back through common/pipe_impl.h (rs__pipe_write_done,
 * rs__pipe_read_end_on_event, rs__pipe_*_end_on_closed). Except for open,
 * these run on the end's loop thread, and never after the end's close.
 */
struct rs__pipe_write_req;

/* Creates the OS pipe and stores the backend's state of each end in its
 * `impl`; the ends' other fields are set. Any thread. Raises and returns -1
 * on failure, having undone its own work. */
int rs__backend_pipe_open(rs_pipe_read_end *read_end, rs_pipe_write_end *write_end);
/* Starts reporting readable signs with rs__pipe_read_end_on_event (at the
 * first subscription; idempotent). Raises on failure. */
int rs__backend_pipe_watch_readable(rs_pipe_read_end *read_end);
/* What the read end holds now (enum rs__pipe_readable_state). */
int rs__backend_pipe_readable_state(rs_pipe_read_end *read_end);
/* Reads up to len (> 0) bytes: 0 with *amount_read > 0, or raises
 * RS_ERROR_WOULD_BLOCK, RS_ERROR_BROKEN_PIPE (end of stream) or the mapped
 * OS error. */
int rs__backend_pipe_read(rs_pipe_read_end *read_end, void *buffer, size_t len,
                          size_t *amount_read);
/* Queues req behind the requests already given, FIFO. Its outcome, success
 * or failure, is reported by rs__pipe_write_done, possibly before this
 * returns. */
void rs__backend_pipe_write(rs_pipe_write_end *write_end, struct rs__pipe_write_req *req);
/* Stops all I/O of the end and closes its OS handle; requests not finished
 * are reported done (their error does not matter: common/ reports
 * RS_ERROR_BROKEN_PIPE). Then, once the backend holds nothing of the end
 * (possibly inside this call), rs__pipe_*_end_on_closed. */
void rs__backend_pipe_read_end_close(rs_pipe_read_end *read_end);
void rs__backend_pipe_write_end_close(rs_pipe_write_end *write_end);

#endif
