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
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int rs__le_error_from_errno(int err)
{
    switch (err) {
    case 0:
        return RS_ERROR_SUCCESS;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return RS_ERROR_WOULD_BLOCK;
    case ENOMEM:
        return RS_ERROR_OUT_OF_MEMORY;
    case EINVAL:
        return RS_ERROR_INVALID_ARGUMENT;
    case ECONNREFUSED:
        return RS_ERROR_CONNECTION_REFUSED;
    case ECONNRESET:
        return RS_ERROR_CONNECTION_RESET;
    case ECONNABORTED:
        return RS_ERROR_CONNECTION_ABORTED;
    case ENOTCONN:
        return RS_ERROR_NOT_CONNECTED;
    case EPIPE:
        return RS_ERROR_SOCKET_CLOSED;
    case ETIMEDOUT:
        return RS_ERROR_TIMEOUT;
    case EADDRINUSE:
        return RS_ERROR_ADDRESS_IN_USE;
    case EADDRNOTAVAIL:
        return RS_ERROR_ADDRESS_NOT_AVAILABLE;
    case EAFNOSUPPORT:
    case EPROTONOSUPPORT:
        return RS_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED;
    case EACCES:
    case EPERM:
        return RS_ERROR_NO_PERMISSION;
    case ENETUNREACH:
    case ENETDOWN:
        return RS_ERROR_NETWORK_UNREACHABLE;
    case EHOSTUNREACH:
    case EHOSTDOWN:
        return RS_ERROR_HOST_UNREACHABLE;
    case EMSGSIZE:
        return RS_ERROR_MESSAGE_TOO_LARGE;
    case EMFILE:
    case ENFILE:
        return RS_ERROR_TOO_MANY_HANDLES;
    case ENOBUFS:
        return RS_ERROR_NO_BUFFER_SPACE;
    case ENOENT:
    case ENOTDIR:
        return RS_ERROR_FILE_INVALID_PATH;
    case ENAMETOOLONG:
        return RS_ERROR_NAME_TOO_LONG;
    case EISCONN:
    case EALREADY:
        return RS_ERROR_INVALID_STATE;
    case EDESTADDRREQ:
        return RS_ERROR_NOT_CONNECTED;
    case ECANCELED:
        return RS_ERROR_CANCELED;
    default:
        RS__LOG(RS_LOG_WARN, "unmapped errno %d (%s)", err, strerror(err));
        return RS_ERROR_SYS_CALL_FAILURE;
    }
}

int rs__le_pipe_error_from_errno(int err)
{
    /* On a pipe, EPIPE means the read end is closed: what the same write
     * reports on Windows (ERROR_NO_DATA / STATUS_PIPE_BROKEN). */
    return err == EPIPE ? RS_ERROR_BROKEN_PIPE : rs__le_error_from_errno(err);
}

int rs__le_raise_errno(int err)
{
    return rs_raise(rs__le_error_from_errno(err));
}

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
