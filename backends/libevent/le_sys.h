/*
 * recv(2) and send(2) of the libevent backend's stream hot path, as direct
 * system calls on Linux.
 *
 * glibc's recv, send and sendmsg are cancellation points (pthreads(7)):
 * in a process with more than one thread, each call switches the thread to
 * asynchronous cancellation around the system call and back, about 30
 * instructions a call, more than the wrapper itself. reseau never cancels a
 * thread, the descriptors are non-blocking (the calls never wait, so there
 * is nothing a cancellation could interrupt), and syscall(2) makes the same
 * system call with the same errno convention without the toggles. Elsewhere
 * (or where the system call numbers are missing, as on 32-bit x86, which
 * multiplexes sockets through socketcall) the libc calls are used, and so
 * they are in the test build (RS_TEST_HOOKS), whose fault-injection and
 * probe libraries (tests/faults/syscall_shim.c, tests/write_probe.c)
 * interpose the libc functions with LD_PRELOAD.
 */
#ifndef RS_LE_SYS_H
#define RS_LE_SYS_H

/* The socket calls: POSIX's, or on Windows le_win32.c's Winsock wrappers. */
#include "le_compat.h"

#include <stddef.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__linux__) && !defined(RS_TEST_HOOKS)
#define RS__LE_DIRECT_SYSCALLS 1
#else
#define RS__LE_DIRECT_SYSCALLS 0
#endif

#if RS__LE_DIRECT_SYSCALLS && defined(SYS_recvfrom) && defined(SYS_sendto)
static inline ssize_t rs__le_recv(int fd, void *buf, size_t len, int flags)
{
    return (ssize_t)syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}
static inline ssize_t rs__le_send(int fd, const void *buf, size_t len, int flags)
{
    return (ssize_t)syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}
#else
static inline ssize_t rs__le_recv(int fd, void *buf, size_t len, int flags)
{
    return recv(fd, buf, len, flags);
}
static inline ssize_t rs__le_send(int fd, const void *buf, size_t len, int flags)
{
    return send(fd, buf, len, flags);
}
#endif

#if RS__LE_DIRECT_SYSCALLS && defined(SYS_sendmsg)
static inline ssize_t rs__le_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return (ssize_t)syscall(SYS_sendmsg, fd, msg, flags);
}
#else
static inline ssize_t rs__le_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return sendmsg(fd, msg, flags);
}
#endif

#endif
