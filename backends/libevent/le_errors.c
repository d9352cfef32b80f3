/*
 * The libevent backend's one errno -> RS_ERROR_* table. Every system error
 * crosses into common/ through here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "le_backend.h"

#include "../../common/log.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Every errno the backend gives a meaning, with the code the IOCP backend
 * reports for the Winsock, Win32 and NTSTATUS equivalents
 * (backends/iocp/iocp_errors.c). The test suite checks each row. */
static const struct rs__le_error_row errno_table[] = {
    {0, RS_ERROR_SUCCESS},
    {EAGAIN, RS_ERROR_WOULD_BLOCK},
#if EWOULDBLOCK != EAGAIN
    {EWOULDBLOCK, RS_ERROR_WOULD_BLOCK},
#endif
    {ENOMEM, RS_ERROR_OUT_OF_MEMORY},
    {EINVAL, RS_ERROR_INVALID_ARGUMENT},
    {EFAULT, RS_ERROR_INVALID_ARGUMENT},
    /* Not a socket, or not an open descriptor: WSAENOTSOCK / WSAEBADF. */
    {EBADF, RS_ERROR_INVALID_ARGUMENT},
    {ENOTSOCK, RS_ERROR_INVALID_ARGUMENT},
    {EINTR, RS_ERROR_CANCELED},
    {ECONNREFUSED, RS_ERROR_CONNECTION_REFUSED},
    {ECONNRESET, RS_ERROR_CONNECTION_RESET},
    {ECONNABORTED, RS_ERROR_CONNECTION_ABORTED},
    {ENOTCONN, RS_ERROR_NOT_CONNECTED},
    {EDESTADDRREQ, RS_ERROR_NOT_CONNECTED},
    /* A send after shutdown(SHUT_WR) or after the peer reset. */
    {EPIPE, RS_ERROR_SOCKET_CLOSED},
    {ETIMEDOUT, RS_ERROR_TIMEOUT},
    {EADDRINUSE, RS_ERROR_ADDRESS_IN_USE},
    {EADDRNOTAVAIL, RS_ERROR_ADDRESS_NOT_AVAILABLE},
    {EAFNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {EPFNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {EPROTONOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {EPROTOTYPE, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {ESOCKTNOSUPPORT, RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED},
    {ENOPROTOOPT, RS_ERROR_SOCKET_OPTION},
    {EOPNOTSUPP, RS_ERROR_PLATFORM_NOT_SUPPORTED},
    {EACCES, RS_ERROR_NO_PERMISSION},
    {EPERM, RS_ERROR_NO_PERMISSION},
    {ENETUNREACH, RS_ERROR_NETWORK_UNREACHABLE},
    {ENETDOWN, RS_ERROR_NETWORK_UNREACHABLE},
    /* A keep-alive probe found the connection dead: WSAENETRESET. */
    {ENETRESET, RS_ERROR_TIMEOUT},
    {EHOSTUNREACH, RS_ERROR_HOST_UNREACHABLE},
    {EHOSTDOWN, RS_ERROR_HOST_UNREACHABLE},
    {EMSGSIZE, RS_ERROR_MESSAGE_TOO_LARGE},
    {EMFILE, RS_ERROR_TOO_MANY_HANDLES},
    {ENFILE, RS_ERROR_TOO_MANY_HANDLES},
    {ENOBUFS, RS_ERROR_NO_BUFFER_SPACE},
    {ENOENT, RS_ERROR_FILE_INVALID_PATH},
    {ENOTDIR, RS_ERROR_FILE_INVALID_PATH},
    {ELOOP, RS_ERROR_FILE_INVALID_PATH},
    {ENAMETOOLONG, RS_ERROR_NAME_TOO_LONG},
    {EISCONN, RS_ERROR_INVALID_STATE},
    {EALREADY, RS_ERROR_INVALID_STATE},
    {EINPROGRESS, RS_ERROR_INVALID_STATE},
    {ECANCELED, RS_ERROR_CANCELED},
};

/* A LOCAL connect: nobody listens at the path, whether the path is missing
 * or names something that is not a listening socket. A named pipe's client
 * cannot tell the two apart (ERROR_FILE_NOT_FOUND for both), so one code
 * serves both on every backend. */
static const struct rs__le_error_row local_connect_table[] = {
    {ENOENT, RS_ERROR_CONNECTION_REFUSED},
    {ENOTDIR, RS_ERROR_CONNECTION_REFUSED},
    {ECONNREFUSED, RS_ERROR_CONNECTION_REFUSED},
};

/* On a pipe, EPIPE means the read end is closed: what the same write
 * reports on Windows (ERROR_NO_DATA / STATUS_PIPE_BROKEN). Where the pipe is
 * a socket pair (Windows), the other end's close shows as a reset or an
 * abort, which means the same. */
static const struct rs__le_error_row pipe_table[] = {
    {EPIPE, RS_ERROR_BROKEN_PIPE},
    {ECONNRESET, RS_ERROR_BROKEN_PIPE},
    {ECONNABORTED, RS_ERROR_BROKEN_PIPE},
};

#define TABLE(t)                                                                                   \
    {                                                                                              \
        t, sizeof t / sizeof t[0]                                                                  \
    }
static const struct {
    const struct rs__le_error_row *rows;
    size_t count;
} tables[] = {
    [RS__LE_ERRORS_ERRNO] = TABLE(errno_table),
    [RS__LE_ERRORS_LOCAL_CONNECT] = TABLE(local_connect_table),
    [RS__LE_ERRORS_PIPE] = TABLE(pipe_table),
};

const struct rs__le_error_row *rs__le_error_table(enum rs__le_error_table which, size_t *count)
{
    *count = tables[which].count;
    return tables[which].rows;
}

static bool look_up(enum rs__le_error_table which, int err, int *code)
{
    for (size_t i = 0; i < tables[which].count; i++) {
        if (tables[which].rows[i].os == err) {
            *code = tables[which].rows[i].code;
            return true;
        }
    }
    return false;
}

int rs__le_error_from_errno(int err)
{
    int code;
    if (look_up(RS__LE_ERRORS_ERRNO, err, &code)) {
        return code;
    }
    RS__LOG(RS_LOG_WARN, "unmapped errno %d (%s)", err, strerror(err));
    return RS_ERROR_SYS_CALL_FAILURE;
}

int rs__le_pipe_error_from_errno(int err)
{
    int code;
    return look_up(RS__LE_ERRORS_PIPE, err, &code) ? code : rs__le_error_from_errno(err);
}

int rs__le_local_connect_error_from_errno(int err)
{
    int code;
    return look_up(RS__LE_ERRORS_LOCAL_CONNECT, err, &code) ? code : rs__le_error_from_errno(err);
}

int rs__le_raise_errno(int err)
{
    return rs__raise(rs__le_error_from_errno(err));
}

#ifndef _WIN32 /* le_win32.c */
int rs__le_fd_cloexec_nonblock(int fd)
{
    int fdflags = fcntl(fd, F_GETFD);
    int flflags = fcntl(fd, F_GETFL);
    if (fdflags < 0 || flflags < 0 || fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, flflags | O_NONBLOCK) != 0) {
        return rs__le_raise_errno(errno);
    }
    return 0;
}

int rs__le_pipe_cloexec_nonblock(int fds[2])
{
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        return rs__le_raise_errno(errno);
    }
    return 0;
#else
    /* No pipe2 (macOS): a fork between pipe() and FD_CLOEXEC can leak the
     * descriptors into a child; nothing better exists there. */
    if (pipe(fds) != 0) {
        return rs__le_raise_errno(errno);
    }
    if (rs__le_fd_cloexec_nonblock(fds[0]) != 0 || rs__le_fd_cloexec_nonblock(fds[1]) != 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return 0;
#endif
}
#endif
