/* Internal to the libevent backend. */
#ifndef RS_LE_BACKEND_H
#define RS_LE_BACKEND_H

#include "le_compat.h"

#include "../../common/backend.h"
#include "../../common/event_loop_impl.h"
#include "../../common/test_hooks.h"

#include <event2/event.h>

#include <stdbool.h>
#include <stdint.h>

struct rs__le_loop {
    struct event_base *base;
    struct event *wake_event;
    struct event *timer_event;
    bool timer_armed;           /* timer_event is pending */
    uint64_t timer_deadline_ns; /* when it fires (common/'s clock), if armed */
    int wake_fds[2];            /* read end, write end (the same eventfd twice on Linux) */
    uint32_t wait_failures;     /* dispatches that failed in a row */
    /* The base reports a peer's end of stream apart from data (EV_CLOSED:
     * EPOLLRDHUP with epoll; kqueue and select cannot). */
    bool early_close;
};

/* Maps an errno value to an RS_ERROR_* code (le_errors.c); an errno
 * without a row is logged (RS_LOG_WARN, with its number) and gives
 * RS_ERROR_SYS_CALL_FAILURE. */
int rs__le_error_from_errno(int err);
/* As rs__le_error_from_errno, for errors of pipe descriptors. */
int rs__le_pipe_error_from_errno(int err);
/* As rs__le_error_from_errno, for a LOCAL connect(2): no listener at the
 * path is RS_ERROR_CONNECTION_REFUSED. */
int rs__le_local_connect_error_from_errno(int err);

/* One row of a mapping table: an errno value and its RS_ERROR_* code. */
struct rs__le_error_row {
    int os;
    int code;
};
enum rs__le_error_table {
    RS__LE_ERRORS_ERRNO,         /* rs__le_error_from_errno */
    RS__LE_ERRORS_LOCAL_CONNECT, /* rs__le_local_connect_error_from_errno, before the above */
    RS__LE_ERRORS_PIPE,          /* rs__le_pipe_error_from_errno, before the above */
};
/* The rows of a table, for the test suite, which checks every one. */
const struct rs__le_error_row *rs__le_error_table(enum rs__le_error_table which, size_t *count);
/* Raises the mapped code and returns -1. */
int rs__le_raise_errno(int err);
/* FD_CLOEXEC (F_SETFD) and O_NONBLOCK (F_SETFL) on fd, for systems without
 * the atomic SOCK_CLOEXEC / pipe2 / accept4 flags. */
int rs__le_fd_cloexec_nonblock(int fd);
/* pipe2(O_CLOEXEC | O_NONBLOCK), or pipe + fcntl where pipe2 is missing;
 * on Windows a loopback socket pair (le_win32.c). */
int rs__le_pipe_cloexec_nonblock(int fds[2]);

#ifdef _WIN32
/* WSAStartup 2.2 and its WSACleanup (le_win32.c): the library's init and
 * clean-up, each successful start-up paired with one clean-up. */
int rs__le_win_startup(void);
void rs__le_win_cleanup(void);
/* Closes a pipe's read end (a socket) so that its writer hears of it at once. */
void rs__le_win_close_read_end(int fd);
#endif

#endif
