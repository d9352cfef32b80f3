/*
 * echo_server: a TCP (or Unix-socket / named-pipe) echo server on one event
 * loop. Every byte a client sends is written back to it. Stops on Ctrl-C.
 *
 *   echo_server [--ipv6] [--host ADDR] [--port N] [--local PATH] [--help]
 *
 * Two rules make it safe against any client, and are the part to copy:
 *  - Back-pressure: at most MAX_QUEUED bytes wait to be echoed per client
 *    (rs_socket_get_write_queue_size). Above that the server stops reading
 *    that client, so a client that sends without reading makes the server
 *    hold a bounded amount, and TCP then slows the client down; reading
 *    resumes from the write completion that brings the queue under
 *    RESUME_BELOW.
 *  - Half-close: when a client finishes sending (shutdown of its write side),
 *    everything it sent is still echoed; then the server shuts down its own
 *    write side (the client reads end of stream) and closes the connection.
 *
 * Try it with netcat:  echo_server --port 9000  and  nc 127.0.0.1 9000
 */
#include <reseau/reseau.h>

#include "interrupts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#endif

/* Bytes queued for one client above which its input is not read. */
#define MAX_QUEUED (1u << 20)
/* Reading resumes when the queue falls below this. */
#define RESUME_BELOW (256u << 10)
/* One read; also the most a single echo adds above MAX_QUEUED. */
#define READ_SIZE 16384

/* A connection, on the loop thread only. */
struct conn {
    rs_socket *socket;
    struct conn *prev;
    struct conn *next;
    bool paused;    /* over MAX_QUEUED: input left unread */
    bool peer_done; /* the client finished sending: echo the rest, then close */
};

/* One echoed chunk: the bytes must stay valid until the write completes,
 * which can be after the connection was destroyed. */
struct chunk {
    struct conn *conn; /* valid only while the completion has its socket */
    size_t len;
    unsigned char bytes[];
};

static struct {
    rs_event_loop *loop;
    struct conn *conns; /* loop thread only */
    long served;        /* loop thread only */
} server;

static void conn_destroy(struct conn *c)
{
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        server.conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    rs_socket_destroy(c->socket);
    free(c);
}

static size_t queued(struct conn *c)
{
    size_t n = 0;
    rs_socket_get_write_queue_size(c->socket, &n); /* loop thread: cannot fail */
    return n;
}

/* The client sent everything: once every echo has completed, end our side
 * of the stream (the client reads end of stream) and close. Destroying the
 * socket earlier would end the echoes still queued. */
static void finish_if_done(struct conn *c)
{
    if (queued(c) != 0) {
        return; /* the last completion calls again */
    }
    rs_socket_shutdown(c->socket, RS_SOCKET_DIRECTION_WRITE);
    conn_destroy(c);
}

static void pump(struct conn *c);

static void on_echoed(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct chunk *k = user_data;
    struct conn *c = k->conn;
    free(k);
    if (!socket) {
        return; /* the connection is gone */
    }
    if (error_code != 0) {
        /* The client reset or went away: nobody reads the rest. */
        conn_destroy(c);
    } else if (c->peer_done) {
        finish_if_done(c);
    } else if (c->paused && queued(c) < RESUME_BELOW) {
        /* Data that arrived while paused brings no readable callback
         * (docs/readable-events.md): read it from here. */
        c->paused = false;
        pump(c);
    }
}

/* Reads and echoes until the socket is drained, the queue is full, or the
 * client finished sending. May destroy c. */
static void pump(struct conn *c)
{
    unsigned char buf[READ_SIZE];
    for (;;) {
        if (queued(c) >= MAX_QUEUED) {
            /* Not reading is the pause: the next readable callback comes
             * only after a read drains the socket, which on_echoed does. */
            c->paused = true;
            return;
        }
        size_t n = 0;
        if (rs_socket_read(c->socket, buf, sizeof buf, &n) != 0) {
            int err = rs_last_error();
            if (err == RS_ERROR_WOULD_BLOCK) {
                return; /* drained: called again when more arrives */
            }
            if (err == RS_ERROR_SOCKET_CLOSED) {
                c->peer_done = true;
                finish_if_done(c);
                return;
            }
            fprintf(stderr, "echo_server: read failed: %s\n", rs_error_str(err));
            conn_destroy(c);
            return;
        }
        struct chunk *k = malloc(sizeof *k + n);
        if (!k) {
            conn_destroy(c);
            return;
        }
        k->conn = c;
        k->len = n;
        memcpy(k->bytes, buf, n);
        if (rs_socket_write(c->socket, k->bytes, n, on_echoed, k) != 0) {
            fprintf(stderr, "echo_server: write failed: %s\n", rs_error_str(rs_last_error()));
            free(k);
            conn_destroy(c);
            return;
        }
    }
}

static void on_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct conn *c = user_data;
    if (c->peer_done) {
        return; /* waiting for the last echoes */
    }
    if (error_code == RS_ERROR_SOCKET_CLOSED) {
        c->peer_done = true;
        finish_if_done(c);
        return;
    }
    if (error_code != 0) {
        fprintf(stderr, "echo_server: %s\n", rs_error_str(error_code));
        conn_destroy(c);
        return;
    }
    if (!c->paused) {
        pump(c);
    }
}

static void on_accept(rs_socket *listener, int error_code, rs_socket *socket, void *user_data)
{
    (void)listener;
    (void)user_data;
    /* Out of descriptors, the listener keeps trying: say so once until a
     * connection is accepted again, not for every retry. */
    static int last_error;
    if (error_code != 0) {
        if (error_code != last_error) {
            fprintf(stderr, "echo_server: accept failed: %s\n", rs_error_str(error_code));
        }
        last_error = error_code;
        return;
    }
    last_error = 0;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        rs_socket_destroy(socket);
        return;
    }
    c->socket = socket;
    c->next = server.conns;
    if (c->next) {
        c->next->prev = c;
    }
    server.conns = c;
    server.served++;
    rs_socket_endpoint peer;
    if (rs_socket_get_remote_address(socket, &peer) != 0 || !peer.address[0]) {
        printf("connection %ld\n", server.served);
    } else if (peer.port) {
        printf("connection %ld from %s port %u\n", server.served, peer.address, peer.port);
    } else {
        printf("connection %ld to %s\n", server.served, peer.address);
    }
    fflush(stdout);
    if (rs_socket_assign_to_event_loop(socket, server.loop) != 0 ||
        rs_socket_subscribe_to_readable_events(socket, on_readable, c) != 0) {
        fprintf(stderr, "echo_server: %s\n", rs_error_str(rs_last_error()));
        conn_destroy(c);
    }
}

static void close_all(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    (void)status;
    while (server.conns) {
        conn_destroy(server.conns);
    }
}

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: echo_server [--ipv6] [--host ADDR] [--port N] [--local PATH]\n"
                 "  --ipv6        listen on IPv6 (default host ::1)\n"
                 "  --host ADDR   address to listen on (default 127.0.0.1)\n"
                 "  --port N      port, 0..65535 (default 0: the system picks one)\n"
                 "  --local PATH  listen on a Unix socket path (Windows: \\\\.\\pipe\\NAME)\n"
                 "  --help        this text\n");
    return code;
}

int main(int argc, char **argv)
{
    rs_socket_options options = {.type = RS_SOCKET_STREAM, .domain = RS_SOCKET_IPV4};
    const char *host = NULL;
    const char *path = NULL;
    long port = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(arg, "--help")) {
            return usage(stdout, 0);
        } else if (!strcmp(arg, "--ipv6")) {
            options.domain = RS_SOCKET_IPV6;
        } else if (!strcmp(arg, "--host") && has_value) {
            host = argv[++i];
        } else if (!strcmp(arg, "--local") && has_value) {
            path = argv[++i];
        } else if (!strcmp(arg, "--port") && has_value) {
            char *end = NULL;
            port = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || port < 0 || port > 65535) {
                fprintf(stderr, "echo_server: --port must be a number 0..65535, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else {
            bool takes_value =
                !strcmp(arg, "--host") || !strcmp(arg, "--local") || !strcmp(arg, "--port");
            fprintf(stderr, "echo_server: %s '%s'\n",
                    takes_value ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        }
    }
    rs_socket_endpoint local;
    memset(&local, 0, sizeof local);
    if (path) {
        if (host || port || options.domain == RS_SOCKET_IPV6) {
            fprintf(stderr, "echo_server: --local excludes --host, --port and --ipv6\n");
            return 2;
        }
        options.domain = RS_SOCKET_LOCAL;
        if (strlen(path) >= sizeof local.address) {
            fprintf(stderr, "echo_server: path too long\n");
            return 2;
        }
        strcpy(local.address, path);
    } else {
        const char *h = host ? host : options.domain == RS_SOCKET_IPV6 ? "::1" : "127.0.0.1";
        if (strlen(h) >= sizeof local.address) {
            fprintf(stderr, "echo_server: host too long\n");
            return 2;
        }
        strcpy(local.address, h);
        local.port = (uint32_t)port;
    }

    block_interrupts();
    if (rs_library_init() != 0) {
        fprintf(stderr, "echo_server: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    int rc = 1;
    server.loop = rs_event_loop_new(NULL);
    rs_socket *listener = rs_socket_new(&options);
    rs_socket_endpoint bound;
    /* A backlog for bursts of 1,000 connections (the torture suite's). With
     * 128, under Wine, whose accepts are slower than such a burst, 6 to 9 in
     * 100 of them were reset by the system after sending their data (the
     * listen queue overflowed); a full backlog on Windows refuses them. */
    if (!server.loop || rs_event_loop_run(server.loop) != 0 || !listener ||
        rs_socket_bind(listener, &local) != 0 || rs_socket_get_bound_address(listener, &bound) ||
        rs_socket_listen(listener, 1024) != 0 ||
        rs_socket_start_accept(listener, server.loop, on_accept, NULL) != 0) {
        fprintf(stderr, "echo_server: %s: %s\n", local.address, rs_error_str(rs_last_error()));
        goto out;
    }
    if (options.domain == RS_SOCKET_LOCAL) {
        printf("echo_server: listening on %s (%s backend)\n", bound.address, rs_backend_name());
    } else {
        printf("echo_server: listening on %s port %u (%s backend)\n", bound.address, bound.port,
               rs_backend_name());
    }
    fflush(stdout);
    wait_for_interrupt();
    rc = 0;
out:
    if (listener) {
        rs_socket_destroy(listener);
    }
    if (server.loop) {
        rs_task task;
        rs_task_init(&task, close_all, NULL, "close all connections");
        /* Runs on the loop, or on this thread while destroy cancels it. */
        rs_event_loop_schedule_now(server.loop, &task);
        rs_event_loop_destroy(server.loop);
    }
    if (path && rc == 0) {
        remove(path); /* a Unix socket leaves its path behind */
    }
    rs_library_cleanup();
    return rc;
}
