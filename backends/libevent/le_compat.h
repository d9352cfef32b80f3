/*
 * Internal to the libevent backend: the system interface its files are
 * written against (BSD sockets, errno, file descriptors), on POSIX and on
 * Windows.
 *
 * On Windows every descriptor this backend holds is a Winsock SOCKET (pipes
 * and the wake channel are loopback socket pairs: select(), libevent's
 * Windows backend, waits on sockets only). Winsock reports errors through
 * WSAGetLastError, not errno, closes with closesocket, and sets modes with
 * ioctlsocket; the calls below are renamed to le_win32.c's wrappers, which
 * make those calls and leave the POSIX errno value of the failure in errno,
 * so that the backend's one error table (le_errors.c) serves both systems.
 *
 * A SOCKET is held in an int: the handle values Windows issues fit in 32
 * bits (the documented guarantee that lets 32- and 64-bit processes share
 * handles), and INVALID_SOCKET becomes -1 like a failed POSIX call.
 */
#ifndef RS_LE_COMPAT_H
#define RS_LE_COMPAT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifndef _WIN32

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* SO_REUSEADDR on a stream socket before bind (le_socket.c). */
#define RS_LE_REUSEADDR_ON_BIND 1
/* socket() and accept() return a descriptor still to be made non-blocking
 * and close-on-exec where SOCK_CLOEXEC / accept4 are missing
 * (rs__le_prepare_fd). */
#define RS_LE_SOCKETS_COME_READY 0
/* One edge-triggered registration per socket (le_socket.h). */
#define RS_LE_EDGE_TRIGGERED 1

#else /* _WIN32 */

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <afunix.h>
#include <fcntl.h>
#include <io.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define RS_LE_REUSEADDR_ON_BIND 0
/* le_win32.c's socket() and accept() return sockets already non-blocking
 * and not inherited: rs__le_prepare_fd has nothing left to set. */
#define RS_LE_SOCKETS_COME_READY 1
/* libevent's Windows backend (select) ignores EV_ET without an error, and
 * an edge-triggered registration then fires on every iteration: reads and
 * writes have separate events there, each armed only while wanted. */
#define RS_LE_EDGE_TRIGGERED 0

/* The errno values POSIX has and the C runtime lacks: Winsock's own codes
 * stand in (no C runtime errno reaches them). */
#ifndef EHOSTDOWN
#define EHOSTDOWN WSAEHOSTDOWN
#endif
#ifndef ESOCKTNOSUPPORT
#define ESOCKTNOSUPPORT WSAESOCKTNOSUPPORT
#endif
#ifndef EPFNOSUPPORT
#define EPFNOSUPPORT WSAEPFNOSUPPORT
#endif

#define SHUT_WR SD_SEND

struct iovec {
    void *iov_base;
    size_t iov_len;
};
struct msghdr {
    struct iovec *msg_iov;
    size_t msg_iovlen;
};

/* The last Winsock error as an errno value (le_win32.c), also stored in errno. */
int rs__le_win_errno(void);

int rs__le_win_socket(int family, int type, int protocol);
int rs__le_win_close(int fd);
int rs__le_win_bind(int fd, const struct sockaddr *sa, socklen_t len);
int rs__le_win_listen(int fd, int backlog);
int rs__le_win_connect(int fd, const struct sockaddr *sa, socklen_t len);
int rs__le_win_accept(int fd, struct sockaddr *sa, socklen_t *len);
int rs__le_win_shutdown(int fd, int how);
int rs__le_win_getsockname(int fd, struct sockaddr *sa, socklen_t *len);
int rs__le_win_getpeername(int fd, struct sockaddr *sa, socklen_t *len);
int rs__le_win_setsockopt(int fd, int level, int name, const void *value, socklen_t len);
int rs__le_win_getsockopt(int fd, int level, int name, void *value, socklen_t *len);
ssize_t rs__le_win_send(int fd, const void *data, size_t len, int flags);
ssize_t rs__le_win_sendto(int fd, const void *data, size_t len, int flags,
                          const struct sockaddr *to, socklen_t to_len);
ssize_t rs__le_win_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t rs__le_win_recv(int fd, void *buffer, size_t len, int flags);
ssize_t rs__le_win_recvfrom(int fd, void *buffer, size_t len, int flags, struct sockaddr *from,
                            socklen_t *from_len);
/* Bytes queued for reading (ioctlsocket FIONREAD). */
int rs__le_win_unread(int fd, int *count);

/* The library's files only: le_win32.c, which makes the Winsock calls, sees
 * the real names, and so do white-box tests that include this header. */
#if defined(RS_BUILDING_LIBRARY) && !defined(RS_LE_WIN32_WRAPPERS)
#define socket rs__le_win_socket
#define close rs__le_win_close
#define bind rs__le_win_bind
#define listen rs__le_win_listen
#define connect rs__le_win_connect
#define accept rs__le_win_accept
#define shutdown rs__le_win_shutdown
#define getsockname rs__le_win_getsockname
#define getpeername rs__le_win_getpeername
#define setsockopt rs__le_win_setsockopt
#define getsockopt rs__le_win_getsockopt
#define send rs__le_win_send
#define sendto rs__le_win_sendto
#define sendmsg rs__le_win_sendmsg
#define recv rs__le_win_recv
#define recvfrom rs__le_win_recvfrom
/* The pipe ends are sockets too (rs__le_pipe_cloexec_nonblock). */
#define read(fd, buffer, len) rs__le_win_recv(fd, buffer, len, 0)
#define write(fd, data, len) rs__le_win_send(fd, data, len, 0)
#endif

#endif /* _WIN32 */

/* On Windows the socket options are those the IOCP backend applies too, in
 * one place (common/os_socket.c); POSIX applies its own in le_socket.c. */

#endif
