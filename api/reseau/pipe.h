/** @file
 * reseau: anonymous one-way byte pipes whose two ends live on event loops
 * (the same loop or two different ones).
 *
 * POSIX: pipe2(O_NONBLOCK | O_CLOEXEC) (no name: only this process holds
 * it). Windows: an overlapped named pipe with a unique name
 * (rs_pipe_unique_name), created with FILE_FLAG_FIRST_PIPE_INSTANCE,
 * PIPE_REJECT_REMOTE_CLIENTS and a DACL naming the creating process's user,
 * LocalSystem and Administrators only, retried with a fresh name on a
 * collision.
 *
 * Threading: each end belongs to its loop. read, write, subscribe and
 * unsubscribe run on that loop's thread (elsewhere: RS_ERROR_WRONG_THREAD).
 * Every callback runs on the end's loop thread, never inside the call that
 * started it. Cleaning up an end is safe from any thread: from a foreign
 * thread it hops to the end's loop and waits, or, when that loop does not
 * run, closes the end on the calling thread (acting as the loop's thread):
 * it returns whatever the loop's state; from another loop's thread it
 * completes asynchronously (never waits for another loop).
 *
 * Lifetime: clean up both ends before destroying their loops
 * (rs_event_loop_destroy fails with RS_ERROR_INVALID_STATE while an end on
 * the loop has not been cleaned up). An end's
 * on_complete runs last, after every callback of that end, when the library
 * holds nothing of it any more.
 */
#ifndef RESEAU_PIPE_H
#define RESEAU_PIPE_H

#include <reseau/event_loop.h>

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The reading end of a pipe (opaque). */
typedef struct rs_pipe_read_end rs_pipe_read_end;
/** The writing end of a pipe (opaque). */
typedef struct rs_pipe_write_end rs_pipe_write_end;

/**
 * Readable (error_code 0), or RS_ERROR_BROKEN_PIPE once the write end is
 * closed and every byte written before was read. Edge-triggered, as for
 * sockets: once when data arrives; right after subscribing if data is
 * already there (on the next loop iteration, never inside the subscribe
 * call); again after a read that drained the pipe (RS_ERROR_WOULD_BLOCK,
 * RS_ERROR_BROKEN_PIPE or fewer bytes than asked) once new data arrives; on
 * the next iteration if the callback's last read filled its buffer; not
 * again, even when more data arrives, while nothing drained the pipe.
 * RS_ERROR_BROKEN_PIPE comes once and is the last event.
 */
typedef void(rs_pipe_on_readable_fn)(rs_pipe_read_end *read_end, int error_code, void *user_data);
/**
 * Exactly once per write, with the bytes written. write_end is NULL if the
 * end was cleaned up before the callback ran; error_code is then
 * RS_ERROR_BROKEN_PIPE, or 0 if the write had finished before the clean-up.
 * If the loop is destroyed while the callback is still owed:
 * RS_ERROR_EVENT_LOOP_SHUTDOWN (on the destroying thread).
 */
typedef void(rs_pipe_on_write_completed_fn)(rs_pipe_write_end *write_end, int error_code,
                                            size_t bytes_written, void *user_data);
/** An end's clean-up finished (on the end's loop thread). */
typedef void(rs_pipe_on_clean_up_complete_fn)(void *user_data);

/**
 * Creates a pipe. *read_end lives on read_loop, *write_end on write_loop.
 * Any thread. Errors: RS_ERROR_LIBRARY_NOT_INITIALIZED,
 * RS_ERROR_INVALID_ARGUMENT (a NULL argument), RS_ERROR_TOO_MANY_HANDLES,
 * RS_ERROR_OUT_OF_MEMORY, RS_ERROR_SYS_CALL_FAILURE (Windows: no unique name
 * could be created after a bounded number of collisions).
 */
RS_API int rs_pipe_new(rs_event_loop *read_loop, rs_pipe_read_end **read_end,
                       rs_event_loop *write_loop, rs_pipe_write_end **write_end);

/**
 * Frees the read end. Any thread (see the threading rule above); safe inside
 * its own readable callback. No readable callback starts after it returns
 * (from a foreign thread: after the loop finished it). on_complete, if not
 * NULL, runs on the loop thread when the end is gone. Call it once per end;
 * after it, the end's other functions fail with RS_ERROR_INVALID_STATE
 * until it is gone (inside a callback that cleaned it up).
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL).
 */
RS_API int rs_pipe_clean_up_read_end(rs_pipe_read_end *read_end,
                                     rs_pipe_on_clean_up_complete_fn *on_complete, void *user_data);
/**
 * Frees the write end. Writes still pending complete with RS_ERROR_BROKEN_PIPE
 * (write_end NULL in the callback), on the loop thread, after the clean-up
 * and before on_complete. The read end then sees RS_ERROR_BROKEN_PIPE after
 * the data already written. Any thread; safe inside its own write callback.
 * Errors: RS_ERROR_INVALID_ARGUMENT.
 */
RS_API int rs_pipe_clean_up_write_end(rs_pipe_write_end *write_end,
                                      rs_pipe_on_clean_up_complete_fn *on_complete,
                                      void *user_data);

/**
 * Loop thread. Errors: RS_ERROR_INVALID_ARGUMENT (NULL), RS_ERROR_WRONG_THREAD,
 * RS_ERROR_INVALID_STATE (already subscribed, or being cleaned up).
 * Argument errors are reported before thread errors, thread errors before
 * state errors, on both backends. POSIX only, when the loop cannot watch the
 * pipe (the first subscription registers it with libevent):
 * RS_ERROR_OUT_OF_MEMORY, RS_ERROR_SYS_CALL_FAILURE; on Windows the read is
 * posted when the pipe is made, so subscribing cannot fail so.
 */
RS_API int rs_pipe_subscribe_to_readable_events(rs_pipe_read_end *read_end,
                                                rs_pipe_on_readable_fn *on_readable,
                                                void *user_data);
/** Loop thread. Errors: RS_ERROR_INVALID_ARGUMENT, RS_ERROR_WRONG_THREAD,
 * RS_ERROR_INVALID_STATE (not subscribed, or being cleaned up). */
RS_API int rs_pipe_unsubscribe_from_readable_events(rs_pipe_read_end *read_end);

/**
 * Reads up to len bytes without blocking. Loop thread. Errors:
 * RS_ERROR_WOULD_BLOCK (nothing now), RS_ERROR_BROKEN_PIPE (write end closed
 * and everything read), RS_ERROR_INVALID_ARGUMENT (NULL, len 0),
 * RS_ERROR_WRONG_THREAD, RS_ERROR_INVALID_STATE (being cleaned up).
 */
RS_API int rs_pipe_read(rs_pipe_read_end *read_end, void *buffer, size_t len, size_t *amount_read);

/**
 * Queues len bytes of data (not copied: valid until on_complete). FIFO;
 * on_complete runs exactly once on the loop thread, never inside this call.
 * A write to a pipe whose read end is gone completes with
 * RS_ERROR_BROKEN_PIPE (on POSIX without raising SIGPIPE). On Windows a
 * write is sent in chunks, each an overlapped operation of its own; one the
 * library could not allocate ends the write with RS_ERROR_OUT_OF_MEMORY and
 * the bytes sent so far.
 * Loop thread. Errors: RS_ERROR_INVALID_ARGUMENT (NULL end, data or callback,
 * len 0), RS_ERROR_WRONG_THREAD, RS_ERROR_INVALID_STATE (being cleaned up),
 * RS_ERROR_OUT_OF_MEMORY.
 */
RS_API int rs_pipe_write(rs_pipe_write_end *write_end, const void *data, size_t len,
                         rs_pipe_on_write_completed_fn *on_complete, void *user_data);

/** The loop a read end lives on (NULL for NULL). Any thread. */
RS_API rs_event_loop *rs_pipe_read_end_loop(const rs_pipe_read_end *read_end);
/** The loop a write end lives on (NULL for NULL). Any thread. */
RS_API rs_event_loop *rs_pipe_write_end_loop(const rs_pipe_write_end *write_end);

/** Longest name rs_pipe_unique_name writes, with the NUL. */
#define RS_PIPE_NAME_MAX 128

/**
 * Writes a pipe name unique to this call,
 * \\\\.\\pipe\\reseau-PID-THREAD-COUNTER-RANDOM (every platform; only
 * Windows uses it). Any thread.
 * Errors: RS_ERROR_INVALID_ARGUMENT (NULL buffer, or len < RS_PIPE_NAME_MAX).
 */
RS_API int rs_pipe_unique_name(char *buffer, size_t len);

#ifdef __cplusplus
}
#endif

#endif
