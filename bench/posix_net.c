#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, SOCK_CLOEXEC */
#endif
#include "posix_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in loopback_addr(uint16_t port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

static int bound_port(int fd, uint16_t *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return 0;
}

int bench_set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int bench_set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int bench_tcp_listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sin = loopback_addr(0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 1024) != 0 ||
        bound_port(fd, port) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

int bench_tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = loopback_addr(port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

int bench_tcp_pair(int listener, uint16_t port, bool nonblock, int fds[2])
{
    fds[0] = bench_tcp_connect(port);
    fds[1] = fds[0] < 0 ? -1 : accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fds[1] < 0 || bench_set_nodelay(fds[0]) != 0 || bench_set_nodelay(fds[1]) != 0 ||
        (nonblock && (bench_set_nonblock(fds[0]) != 0 || bench_set_nonblock(fds[1]) != 0))) {
        if (fds[0] >= 0) {
            close(fds[0]);
        }
        if (fds[1] >= 0) {
            close(fds[1]);
        }
        return -1;
    }
    return 0;
}

int bench_udp_pair(bool nonblock, int fds[2])
{
    uint16_t port = 0;
    struct sockaddr_in sin = loopback_addr(0);
    fds[1] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    fds[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || fds[1] < 0 || bind(fds[1], (struct sockaddr *)&sin, sizeof sin) != 0 ||
        bound_port(fds[1], &port) != 0) {
        goto fail;
    }
    sin = loopback_addr(port);
    if (connect(fds[0], (struct sockaddr *)&sin, sizeof sin) != 0 ||
        (nonblock && (bench_set_nonblock(fds[0]) != 0 || bench_set_nonblock(fds[1]) != 0))) {
        goto fail;
    }
    return 0;
fail:
    if (fds[0] >= 0) {
        close(fds[0]);
    }
    if (fds[1] >= 0) {
        close(fds[1]);
    }
    return -1;
}

int bench_udp_unconnected_pair(int fds[2], struct sockaddr_in *to)
{
    uint16_t port = 0;
    struct sockaddr_in sin = loopback_addr(0);
    fds[1] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    fds[0] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fds[0] < 0 || fds[1] < 0 || bind(fds[1], (struct sockaddr *)&sin, sizeof sin) != 0 ||
        bind(fds[0], (struct sockaddr *)&sin, sizeof sin) != 0 || bound_port(fds[1], &port) != 0) {
        if (fds[0] >= 0) {
            close(fds[0]);
        }
        if (fds[1] >= 0) {
            close(fds[1]);
        }
        return -1;
    }
    *to = loopback_addr(port);
    return 0;
}
