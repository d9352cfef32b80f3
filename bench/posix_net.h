/*
 * Socket set-up shared by the POSIX peers (libevent, blocking): loopback
 * listeners on an OS-chosen port and connected pairs. Set-up is never part
 * of a measurement, so these block.
 */
#ifndef RESEAU_BENCH_POSIX_NET_H
#define RESEAU_BENCH_POSIX_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <netinet/in.h>

/* A TCP listener on 127.0.0.1 port 0; *port receives the port. -1 on error. */
int bench_tcp_listener(uint16_t *port);
/* A blocking TCP connect to 127.0.0.1:port. -1 on error. */
int bench_tcp_connect(uint16_t port);
/* A connected TCP pair through listener (client in fds[0], server in fds[1]),
 * TCP_NODELAY on both, non-blocking if nonblock. */
int bench_tcp_pair(int listener, uint16_t port, bool nonblock, int fds[2]);
/* UDP: a receiver bound to 127.0.0.1 port 0 (fds[1]) and a sender connected
 * to it (fds[0]). */
int bench_udp_pair(bool nonblock, int fds[2]);
/* As bench_udp_pair, with fds[0] bound (not connected) and *to the address
 * of fds[1], for sendto / recvfrom. */
int bench_udp_unconnected_pair(int fds[2], struct sockaddr_in *to);
int bench_set_nonblock(int fd);
int bench_set_nodelay(int fd);

#endif
