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

#endif
