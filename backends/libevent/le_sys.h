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

#if RS__LE_DIRECT_SYSCALLS && defined(__x86_64__) && defined(__GNUC__)
#include <errno.h>
/*
 * On x86-64 the system call is made inline: glibc's syscall(2) is a
 * function of its own that shuffles its seven arguments into the kernel's
 * registers (about a dozen instructions a call, four calls per round trip
 * of request/response traffic). The kernel's convention (syscall(2),
 * "Architecture calling conventions"): the number in rax, the arguments in
 * rdi, rsi, rdx, r10, r8 and r9, rcx and r11 clobbered, the result in rax,
 * -4095 to -1 meaning -errno.
 */
static inline long rs__le_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long ret;
    __asm__ __volatile__("syscall"
                         : "=a"(ret)
                         : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
    if ((unsigned long)ret > -4096ul) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}
#define RS__LE_SYSCALL6(nr, a1, a2, a3, a4, a5, a6)                                                \
    rs__le_syscall6((nr), (long)(a1), (long)(a2), (long)(a3), (long)(a4), (long)(a5), (long)(a6))
#elif RS__LE_DIRECT_SYSCALLS
#define RS__LE_SYSCALL6(nr, a1, a2, a3, a4, a5, a6) syscall((nr), a1, a2, a3, a4, a5, a6)
#endif

#if RS__LE_DIRECT_SYSCALLS && defined(SYS_recvfrom) && defined(SYS_sendto)
static inline ssize_t rs__le_recv(int fd, void *buf, size_t len, int flags)
{
    return (ssize_t)RS__LE_SYSCALL6(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}
static inline ssize_t rs__le_send(int fd, const void *buf, size_t len, int flags)
{
    return (ssize_t)RS__LE_SYSCALL6(SYS_sendto, fd, buf, len, flags, NULL, 0);
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
    return (ssize_t)RS__LE_SYSCALL6(SYS_sendmsg, fd, msg, flags, 0, 0, 0);
}
#else
static inline ssize_t rs__le_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return sendmsg(fd, msg, flags);
}
#endif

#endif
