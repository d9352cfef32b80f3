/*
 * libevent backend on Windows: the BSD-socket calls of le_compat.h made
 * with Winsock, each failure left in errno as its POSIX value (the backend's
 * error table, le_errors.c, then maps it as on every other system), and the
 * descriptors POSIX gets from pipe2 and fcntl: loopback socket pairs,
 * non-blocking (ioctlsocket FIONBIO) and not inherited by child processes.
 */
#define RS_LE_WIN32_WRAPPERS
#include "le_compat.h"

#include "le_socket.h"

#include "../../common/error.h"
#include "../../common/log.h"

#include <event2/util.h>

#include <limits.h>

/* Winsock's codes and the errno values they stand for. WSAEWOULDBLOCK is
 * EAGAIN (what the backend tests first), and WSAESHUTDOWN (a send after
 * shutdown(SD_SEND)) is EPIPE, what the same send reports on POSIX. */
static const struct {
    int wsa;
    int err;
} wsa_errors[] = {
    {WSAEWOULDBLOCK, EAGAIN},
    {WSAEINTR, EINTR},
    {WSAEBADF, EBADF},
    {WSAEACCES, EACCES},
    {WSAEFAULT, EFAULT},
    {WSAEINVAL, EINVAL},
    {WSAEMFILE, EMFILE},
    {WSAEINPROGRESS, EINPROGRESS},
    {WSAEALREADY, EALREADY},
    {WSAENOTSOCK, ENOTSOCK},
    {WSAEDESTADDRREQ, EDESTADDRREQ},
    {WSAEMSGSIZE, EMSGSIZE},
    {WSAEPROTOTYPE, EPROTOTYPE},
    {WSAENOPROTOOPT, ENOPROTOOPT},
    {WSAEPROTONOSUPPORT, EPROTONOSUPPORT},
    {WSAESOCKTNOSUPPORT, ESOCKTNOSUPPORT},
    {WSAEOPNOTSUPP, EOPNOTSUPP},
    {WSAEPFNOSUPPORT, EPFNOSUPPORT},
    {WSAEAFNOSUPPORT, EAFNOSUPPORT},
    {WSAEADDRINUSE, EADDRINUSE},
    {WSAEADDRNOTAVAIL, EADDRNOTAVAIL},
    {WSAENETDOWN, ENETDOWN},
    {WSAENETUNREACH, ENETUNREACH},
    {WSAENETRESET, ENETRESET},
    {WSAECONNABORTED, ECONNABORTED},
    {WSAECONNRESET, ECONNRESET},
    {WSAENOBUFS, ENOBUFS},
    {WSAEISCONN, EISCONN},
    {WSAENOTCONN, ENOTCONN},
    {WSAESHUTDOWN, EPIPE},
    {WSAETIMEDOUT, ETIMEDOUT},
    {WSAECONNREFUSED, ECONNREFUSED},
    {WSAELOOP, ELOOP},
    {WSAENAMETOOLONG, ENAMETOOLONG},
    {WSAEHOSTDOWN, EHOSTDOWN},
    {WSAEHOSTUNREACH, EHOSTUNREACH},
    {WSA_NOT_ENOUGH_MEMORY, ENOMEM},
};

/* The errno value of a Winsock code; an unmapped one is kept as it is
 * (logged with its number by le_errors.c). */
static int errno_of(int wsa)
{
    for (size_t i = 0; i < sizeof wsa_errors / sizeof wsa_errors[0]; i++) {
        if (wsa_errors[i].wsa == wsa) {
            return wsa_errors[i].err;
        }
    }
    return wsa;
}

int rs__le_win_errno(void)
{
    errno = errno_of(WSAGetLastError());
    return errno;
}

static int fail(void)
{
    rs__le_win_errno();
    return -1;
}

/* The handles Windows issues fit in 32 bits (le_compat.h). */
static int to_fd(SOCKET s)
{
    return s == INVALID_SOCKET ? -1 : (int)s;
}

static SOCKET sock(int fd)
{
    return fd < 0 ? INVALID_SOCKET : (SOCKET)(uintptr_t)(unsigned)fd;
}

/* Non-blocking and, unless made so already, not inherited: what
 * SOCK_NONBLOCK | SOCK_CLOEXEC give on POSIX. socket() cannot make a
 * non-inheritable handle by itself; WSASocket's WSA_FLAG_NO_HANDLE_INHERIT
 * can (Windows 7 SP1 and later), and then no SetHandleInformation is
 * needed (under Wine each call is a server request). */
static int prepare(SOCKET s, bool inheritable)
{
    u_long on = 1;
    if (ioctlsocket(s, FIONBIO, &on) != 0) {
        return fail();
    }
    if (inheritable) {
        SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    }
    return 0;
}

int rs__le_win_socket(int family, int type, int protocol)
{
    SOCKET s = WSASocketW(family, type, protocol, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        return fail();
    }
    if (prepare(s, false) != 0) {
        int err = errno;
        closesocket(s);
        errno = err;
        return -1;
    }
    if (type == SOCK_DGRAM) {
        /* The same datagram rules as the IOCP backend's sockets. */
        rs__os_socket_udp_report_unreachable(s, false);
        rs__os_socket_udp_ignore_net_reset(s);
    }
    return to_fd(s);
}

int rs__le_win_close(int fd)
{
    return closesocket(sock(fd)) == 0 ? 0 : fail();
}

int rs__le_win_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    return bind(sock(fd), sa, len) == 0 ? 0 : fail();
}

int rs__le_win_listen(int fd, int backlog)
{
    return listen(sock(fd), backlog) == 0 ? 0 : fail();
}

int rs__le_win_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (connect(sock(fd), sa, len) == 0) {
        return 0;
    }
    /* connect's contract on a non-blocking socket: WSAEWOULDBLOCK means the
     * attempt goes on (POSIX's EINPROGRESS), and select reports its end. */
    if (rs__le_win_errno() == EAGAIN) {
        errno = EINPROGRESS;
    }
    return -1;
}

int rs__le_win_accept(int fd, struct sockaddr *sa, socklen_t *len)
{
    SOCKET s = accept(sock(fd), sa, len);
    if (s == INVALID_SOCKET) {
        return fail();
    }
    /* An accepted socket inherits the listener's non-blocking mode, but not
     * the handle's inheritance flag. */
    if (prepare(s, true) != 0) {
        int err = errno;
        closesocket(s);
        errno = err;
        return -1;
    }
    return to_fd(s);
}

int rs__le_win_shutdown(int fd, int how)
{
    return shutdown(sock(fd), how) == 0 ? 0 : fail();
}

int rs__le_win_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
    return getsockname(sock(fd), sa, len) == 0 ? 0 : fail();
}

int rs__le_win_getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
    return getpeername(sock(fd), sa, len) == 0 ? 0 : fail();
}

int rs__le_win_setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    return setsockopt(sock(fd), level, name, value, len) == 0 ? 0 : fail();
}

int rs__le_win_getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
    if (getsockopt(sock(fd), level, name, value, len) != 0) {
        return fail();
    }
    /* SO_ERROR holds a Winsock code (a failed connect's WSAECONNREFUSED):
     * given as errno, like the rest. */
    if (level == SOL_SOCKET && name == SO_ERROR && *len == (socklen_t)sizeof(int)) {
        int *err = value;
        *err = errno_of(*err);
    }
    return 0;
}

/* Winsock takes int lengths: a longer buffer is offered in part, as a
 * stream send may take part of it anyway. */
static int clamp(size_t len)
{
    return len > INT_MAX ? INT_MAX : (int)len;
}

ssize_t rs__le_win_send(int fd, const void *data, size_t len, int flags)
{
    int n = send(sock(fd), data, clamp(len), flags);
    return n == SOCKET_ERROR ? fail() : n;
}

ssize_t rs__le_win_sendto(int fd, const void *data, size_t len, int flags,
                          const struct sockaddr *to, socklen_t to_len)
{
    int n = sendto(sock(fd), data, clamp(len), flags, to, to_len);
    return n == SOCKET_ERROR ? fail() : n;
}

/* sendmsg's gathering is WSASend's buffer array. The callers gather at most
 * RS_SOCKET_WRITE_VEC_DGRAM_MAX buffers (a datagram's) and far fewer bytes
 * than a ULONG holds (le_socket_io.c's WRITE_MAX_BYTES). */
ssize_t rs__le_win_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    WSABUF bufs[RS_SOCKET_WRITE_VEC_DGRAM_MAX];
    if (msg->msg_iovlen > RS_SOCKET_WRITE_VEC_DGRAM_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    for (size_t i = 0; i < msg->msg_iovlen; i++) {
        bufs[i].buf = msg->msg_iov[i].iov_base;
        bufs[i].len = (ULONG)msg->msg_iov[i].iov_len;
    }
    DWORD sent = 0;
    if (WSASend(sock(fd), bufs, (DWORD)msg->msg_iovlen, &sent, (DWORD)flags, NULL, NULL) != 0) {
        return fail();
    }
    return (ssize_t)sent;
}

ssize_t rs__le_win_recv(int fd, void *buffer, size_t len, int flags)
{
    int n = recv(sock(fd), buffer, clamp(len), flags);
    if (n == SOCKET_ERROR) {
        /* recv's contract for a datagram larger than the buffer: the buffer
         * is filled, the rest discarded, and WSAEMSGSIZE returned; POSIX
         * returns the truncated datagram. */
        if (WSAGetLastError() == WSAEMSGSIZE) {
            return (ssize_t)clamp(len);
        }
        return fail();
    }
    return n;
}

ssize_t rs__le_win_recvfrom(int fd, void *buffer, size_t len, int flags, struct sockaddr *from,
                            socklen_t *from_len)
{
    int n = recvfrom(sock(fd), buffer, clamp(len), flags, from, from_len);
    if (n == SOCKET_ERROR) {
        if (WSAGetLastError() == WSAEMSGSIZE) { /* as in rs__le_win_recv */
            return (ssize_t)clamp(len);
        }
        return fail();
    }
    return n;
}

int rs__le_win_unread(int fd, int *count)
{
    u_long n = 0;
    if (ioctlsocket(sock(fd), FIONREAD, &n) != 0) {
        return fail();
    }
    *count = n > INT_MAX ? INT_MAX : (int)n;
    return 0;
}

/* ---- le_backend.h's descriptor set-up ---- */

int rs__le_fd_cloexec_nonblock(int fd)
{
    if (prepare(sock(fd), true) != 0) {
        return rs__le_raise_errno(errno);
    }
    return 0;
}

/*
 * A pipe is a connected pair of loopback TCP sockets (evutil_socketpair):
 * select(), which libevent's Windows backend waits in, takes sockets only,
 * so an anonymous or named pipe could be waited for only by a thread of its
 * own per pipe (docs/backends.md, "Pipes").
 */
int rs__le_pipe_cloexec_nonblock(int fds[2])
{
    evutil_socket_t pair[2];
    if (evutil_socketpair(AF_INET, SOCK_STREAM, 0, pair) != 0) {
        return rs__le_raise_errno(rs__le_win_errno());
    }
    if (prepare((SOCKET)pair[0], true) != 0 || prepare((SOCKET)pair[1], true) != 0) {
        int err = errno;
        closesocket((SOCKET)pair[0]);
        closesocket((SOCKET)pair[1]);
        return rs__le_raise_errno(err);
    }
    /* Bytes written are sent at once (a pipe has no Nagle delay), and the
     * pair holds about what a POSIX pipe does (64 KiB each way) rather than
     * the megabytes loopback TCP may buffer: a writer that nobody reads
     * waits, as on a pipe. */
    BOOL on = TRUE;
    int room = 64 * 1024;
    setsockopt((SOCKET)pair[1], IPPROTO_TCP, TCP_NODELAY, (const char *)&on, sizeof on);
    setsockopt((SOCKET)pair[1], SOL_SOCKET, SO_SNDBUF, (const char *)&room, sizeof room);
    setsockopt((SOCKET)pair[0], SOL_SOCKET, SO_RCVBUF, (const char *)&room, sizeof room);
    fds[0] = to_fd((SOCKET)pair[0]);
    fds[1] = to_fd((SOCKET)pair[1]);
    return 0;
}

void rs__le_win_close_read_end(int fd)
{
    /* An abortive close (SO_LINGER on, time 0): the writer's next send
     * fails with WSAECONNRESET at once, as a write to a pipe without reader
     * fails, instead of being taken into the closed socket's buffer. */
    struct linger abortive = {1, 0};
    setsockopt(sock(fd), SOL_SOCKET, SO_LINGER, (const char *)&abortive, sizeof abortive);
    closesocket(sock(fd));
}

/* ---- library ---- */

int rs__le_win_startup(void)
{
    WSADATA data;
    int err = WSAStartup(MAKEWORD(2, 2), &data);
    if (err != 0) {
        RS__LOG(RS_LOG_ERROR, "WSAStartup failed: %d", err);
        return rs__raise(RS_ERROR_SYS_CALL_FAILURE);
    }
    /* WSAStartup's contract: it succeeds with the highest version it has
     * when that is below the one asked for, and the caller must check. */
    if (LOBYTE(data.wVersion) != 2 || HIBYTE(data.wVersion) != 2) {
        WSACleanup();
        return rs__raise(RS_ERROR_PLATFORM_NOT_SUPPORTED);
    }
    return 0;
}

void rs__le_win_cleanup(void)
{
    WSACleanup();
}

/* ---- options ---- */

int rs__le_apply_options(int fd, const rs_socket_options *options)
{
    return rs__os_socket_apply_options(sock(fd), options);
}
