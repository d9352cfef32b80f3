/*
 * udp_echo: a UDP echo server and client in one program.
 *
 *   udp_echo --server [--ipv6] [--host ADDR] [--port N]
 *   udp_echo --client [--ipv6] [--host ADDR] --port N [--local-port N]
 *            [--message TEXT] [--count N] [--timeout-ms N]
 *
 * The client sends --count datagrams ("TEXT 0", "TEXT 1", ...), keeping a
 * few in flight, and checks that every one comes back exactly once with the
 * same bytes. It fails if an echo is wrong or missing after --timeout-ms.
 *
 * The server is a bound socket that is not connected: it reads each
 * datagram with its sender (rs_socket_read_from) and sends it back there
 * (rs_socket_write_to), for any number of clients, until Ctrl-C. An empty
 * datagram is not answered (reseau sends no empty datagram). The client is
 * a connected socket: it hears only from the server.
 *
 * Try it:  udp_echo --server --port 9000  and  udp_echo --client --port 9000,
 *          or any UDP client: echo hi | nc -u -w1 127.0.0.1 9000
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

/* Datagrams in flight at once: enough to overlap round trips, few enough
 * that a receive buffer never overflows and drops one. */
#define WINDOW 16
/* Longest datagram the client sends or accepts: TEXT, a space and an index. */
#define MAX_DATAGRAM 2048

static struct {
    rs_event_loop *loop;
    rs_socket *socket;
    /* client, loop thread only */
    const char *message;
    long count;
    long sent;
    long received;
    unsigned char *seen; /* one flag per index: duplicates are errors */
    rs_task deadline;
    int error;
    rs_task subscribe; /* server */
    bool done;
} app;

/* Server: bytes of echoes waiting to be sent above which a datagram is
 * dropped instead of echoed. */
#define MAX_QUEUED_ECHOES (1u << 20)

/* One datagram: the bytes stay valid until the write completes. */
struct datagram {
    size_t len;
    unsigned char bytes[];
};

static void on_sent(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)socket;
    (void)bytes;
    /* A failed send shows up as a missing echo, reported by the client. */
    (void)error_code;
    free(user_data);
}

/* Sends a copy of bytes to `to`, or to the connected peer if to is NULL. */
static int send_copy(const void *bytes, size_t len, const rs_socket_endpoint *to)
{
    struct datagram *d = malloc(sizeof *d + len);
    if (!d) {
        return rs_raise(RS_ERROR_OUT_OF_MEMORY);
    }
    d->len = len;
    memcpy(d->bytes, bytes, len);
    int rc = to ? rs_socket_write_to(app.socket, to, d->bytes, len, on_sent, d)
                : rs_socket_write(app.socket, d->bytes, len, on_sent, d);
    if (rc != 0) {
        free(d);
        return -1;
    }
    return 0;
}

/* ---- server ---- */

static void server_on_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)user_data;
    unsigned char buf[65536];
    for (;;) {
        size_t n = 0;
        rs_socket_endpoint from;
        if (error_code != 0 || rs_socket_read_from(socket, buf, sizeof buf, &n, &from) != 0) {
            int err = error_code ? error_code : rs_last_error();
            if (err != RS_ERROR_WOULD_BLOCK) {
                fprintf(stderr, "udp_echo: read failed: %s\n", rs_error_str(err));
            }
            return;
        }
        /* Echoes the system has not taken yet are bounded: past the bound
         * a datagram is dropped, as UDP may drop it anyway, rather than
         * queued without limit for a peer that sends faster than the
         * echoes leave. */
        size_t queued = 0;
        rs_socket_get_write_queue_size(socket, &queued);
        if (n > 0 && queued < MAX_QUEUED_ECHOES && send_copy(buf, n, &from) != 0) {
            fprintf(stderr, "udp_echo: send to %s port %u failed: %s\n", from.address, from.port,
                    rs_error_str(rs_last_error()));
        }
    }
}

/* Subscribing is a loop-thread call: a task runs it there. */
static void server_subscribe(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    if (status == RS_TASK_STATUS_RUN &&
        rs_socket_subscribe_to_readable_events(app.socket, server_on_readable, NULL) != 0) {
        fprintf(stderr, "udp_echo: %s\n", rs_error_str(rs_last_error()));
    }
}

/* ---- client ---- */

static void client_finish(int error_code)
{
    if (app.done) {
        return;
    }
    app.done = true;
    app.error = error_code;
    rs_event_loop_cancel_task(app.loop, &app.deadline);
    rs_socket_close(app.socket);
    rs_event_loop_stop(app.loop);
}

static void fail(const char *what)
{
    fprintf(stderr, "udp_echo: %s\n", what);
    client_finish(RS_ERROR_UNKNOWN);
}

static size_t format_datagram(char *buf, size_t size, long index)
{
    int n = snprintf(buf, size, "%s %ld", app.message, index);
    return n < 0 ? 0 : (size_t)n;
}

static void send_more(void)
{
    while (!app.done && app.sent < app.count && app.sent - app.received < WINDOW) {
        char buf[MAX_DATAGRAM];
        size_t len = format_datagram(buf, sizeof buf, app.sent);
        if (send_copy(buf, len, NULL) != 0) {
            fprintf(stderr, "udp_echo: send failed: %s\n", rs_error_str(rs_last_error()));
            client_finish(rs_last_error());
            return;
        }
        app.sent++;
    }
}

/* Checks one echo: it must be a datagram that was sent, byte for byte, and
 * not seen before. */
static void check_echo(const char *buf, size_t n)
{
    const char *space = NULL;
    for (size_t i = n; i > 0; i--) {
        if (buf[i - 1] == ' ') {
            space = buf + i - 1;
            break;
        }
    }
    char digits[24];
    size_t ndigits = space ? n - (size_t)(space + 1 - buf) : 0;
    if (!space || ndigits == 0 || ndigits >= sizeof digits) {
        fail("an echo that is not one of the datagrams sent");
        return;
    }
    memcpy(digits, space + 1, ndigits);
    digits[ndigits] = '\0';
    char *end = NULL;
    long index = strtol(digits, &end, 10);
    char expected[MAX_DATAGRAM];
    if (*end || index < 0 || index >= app.sent ||
        format_datagram(expected, sizeof expected, index) != n || memcmp(expected, buf, n) != 0) {
        fail("an echo that is not one of the datagrams sent");
        return;
    }
    if (app.seen[index]) {
        fprintf(stderr, "udp_echo: datagram %ld came back twice\n", index);
        client_finish(RS_ERROR_UNKNOWN);
        return;
    }
    app.seen[index] = 1;
    app.received++;
}

static void client_on_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)user_data;
    char buf[MAX_DATAGRAM + 1];
    while (!app.done) {
        size_t n = 0;
        if (error_code != 0 || rs_socket_read(socket, buf, sizeof buf, &n) != 0) {
            int err = error_code ? error_code : rs_last_error();
            if (err == RS_ERROR_WOULD_BLOCK) {
                return;
            }
            /* Nothing listens on the server's port for this client (an
             * ICMP "port unreachable" came back). */
            fprintf(stderr, "udp_echo: the server's port answered: %s\n", rs_error_str(err));
            client_finish(err);
            return;
        }
        check_echo(buf, n);
        if (app.received == app.count) {
            client_finish(0);
            return;
        }
        send_more();
    }
}

static void on_client_connected(rs_socket *socket, int error_code, void *user_data)
{
    (void)user_data;
    if (error_code != 0 ||
        rs_socket_subscribe_to_readable_events(socket, client_on_readable, NULL) != 0) {
        int err = error_code ? error_code : rs_last_error();
        fprintf(stderr, "udp_echo: %s\n", rs_error_str(err));
        client_finish(err);
        return;
    }
    send_more();
}

static void on_deadline(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    if (status == RS_TASK_STATUS_RUN && !app.done) {
        fprintf(stderr, "udp_echo: timed out: %ld of %ld echoes received\n", app.received,
                app.count);
        client_finish(RS_ERROR_TIMEOUT);
    }
}

/* ---- main ---- */

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: udp_echo --server [--ipv6] [--host ADDR] [--port N]\n"
                 "       udp_echo --client [--ipv6] [--host ADDR] --port N [--local-port N]\n"
                 "                [--message TEXT] [--count N] [--timeout-ms N]\n"
                 "  --server          echo every datagram to its sender\n"
                 "  --client          send --count datagrams and check their echoes\n"
                 "  --ipv6            use IPv6 (default host ::1)\n"
                 "  --host ADDR       loopback address to bind and reach (default 127.0.0.1)\n"
                 "  --port N          server: port to listen on (default 0: the system picks);\n"
                 "                    client: the server's port\n"
                 "  --local-port N    client: port to send from (default 0: the system picks)\n"
                 "  --message TEXT    client: datagram text (default \"hello\")\n"
                 "  --count N         client: datagrams to send, 1..1000000 (default 10)\n"
                 "  --timeout-ms N    client: how long to wait for every echo (default 5000)\n"
                 "  --help            this text\n");
    return code;
}

static bool parse_number(const char *flag, const char *text, long min, long max, long *out)
{
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (!*text || *end || value < min || value > max) {
        fprintf(stderr, "udp_echo: %s must be a number %ld..%ld, not '%s'\n", flag, min, max, text);
        return false;
    }
    *out = value;
    return true;
}

int main(int argc, char **argv)
{
    rs_socket_options options = {.type = RS_SOCKET_DGRAM, .domain = RS_SOCKET_IPV4};
    int mode = 0; /* 's' or 'c' */
    const char *host = NULL;
    long port = -1;
    long local_port = 0;
    long timeout_ms = 5000;
    app.message = "hello";
    app.count = 10;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(arg, "--help")) {
            return usage(stdout, 0);
        } else if (!strcmp(arg, "--server") || !strcmp(arg, "--client")) {
            int m = arg[2];
            if (mode && mode != m) {
                fprintf(stderr, "udp_echo: --server and --client exclude each other\n");
                return 2;
            }
            mode = m;
            continue;
        } else if (!strcmp(arg, "--ipv6")) {
            options.domain = RS_SOCKET_IPV6;
            continue;
        } else if (!value) {
            bool known = !strcmp(arg, "--host") || !strcmp(arg, "--port") ||
                         !strcmp(arg, "--local-port") || !strcmp(arg, "--message") ||
                         !strcmp(arg, "--count") || !strcmp(arg, "--timeout-ms");
            fprintf(stderr, "udp_echo: %s '%s'\n",
                    known ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        } else if (!strcmp(arg, "--host")) {
            host = value;
        } else if (!strcmp(arg, "--message")) {
            app.message = value;
            if (strlen(value) > MAX_DATAGRAM - 24) {
                fprintf(stderr, "udp_echo: --message is longer than %d bytes\n", MAX_DATAGRAM - 24);
                return 2;
            }
        } else if (!strcmp(arg, "--port")) {
            ok = parse_number(arg, value, 0, 65535, &port);
        } else if (!strcmp(arg, "--local-port")) {
            ok = parse_number(arg, value, 0, 65535, &local_port);
        } else if (!strcmp(arg, "--count")) {
            ok = parse_number(arg, value, 1, 1000000, &app.count);
        } else if (!strcmp(arg, "--timeout-ms")) {
            ok = parse_number(arg, value, 1, 3600000, &timeout_ms);
        } else {
            fprintf(stderr, "udp_echo: unknown argument '%s'\n", arg);
            return usage(stderr, 2);
        }
        if (!ok) {
            return 2;
        }
        i++;
    }
    if (!mode) {
        fprintf(stderr, "udp_echo: say --server or --client\n");
        return usage(stderr, 2);
    }
    if (mode == 'c' && port < 1) {
        fprintf(stderr, "udp_echo: --client needs --port 1..65535 (the server's port)\n");
        return 2;
    }
    if (!host) {
        host = options.domain == RS_SOCKET_IPV6 ? "::1" : "127.0.0.1";
    }
    rs_socket_endpoint local;
    rs_socket_endpoint remote;
    memset(&local, 0, sizeof local);
    memset(&remote, 0, sizeof remote);
    if (strlen(host) >= sizeof local.address) {
        fprintf(stderr, "udp_echo: host too long\n");
        return 2;
    }
    strcpy(local.address, host);
    strcpy(remote.address, host);
    local.port = (uint32_t)(mode == 's' ? (port < 0 ? 0 : port) : local_port);
    remote.port = (uint32_t)(mode == 'c' ? port : 0); /* the client's server */

    if (mode == 's') {
        block_interrupts();
    }
    if (rs_library_init() != 0) {
        fprintf(stderr, "udp_echo: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    int rc = 1;
    rs_task_init(&app.deadline, on_deadline, NULL, "echo deadline");
    app.seen = calloc((size_t)app.count, 1);
    app.loop = rs_event_loop_new(NULL);
    app.socket = rs_socket_new(&options);
    rs_socket_endpoint bound;
    /* Bound first, so that the port is known (and printed) before any
     * datagram is sent. */
    if (!app.seen || !app.loop || rs_event_loop_run(app.loop) != 0 || !app.socket ||
        rs_socket_bind(app.socket, &local) != 0 ||
        rs_socket_get_bound_address(app.socket, &bound) != 0) {
        fprintf(stderr, "udp_echo: %s port %u: %s\n", local.address, local.port,
                rs_error_str(rs_last_error()));
        goto out;
    }
    if (mode == 's') {
        rs_task_init(&app.subscribe, server_subscribe, NULL, "echo subscribe");
        if (rs_socket_assign_to_event_loop(app.socket, app.loop) != 0 ||
            rs_event_loop_schedule_now(app.loop, &app.subscribe) != 0) {
            fprintf(stderr, "udp_echo: %s\n", rs_error_str(rs_last_error()));
            goto out;
        }
        printf("udp_echo: listening on %s port %u (%s backend)\n", bound.address, bound.port,
               rs_backend_name());
        fflush(stdout);
        wait_for_interrupt();
        rc = 0;
        goto out;
    }
    printf("udp_echo: sending %ld datagrams from %s port %u to port %u\n", app.count, bound.address,
           bound.port, remote.port);
    fflush(stdout);
    /* The deadline first: the echoes may all be back before this thread
     * would get to it. */
    if (rs_event_loop_schedule_at(app.loop, &app.deadline,
                                  rs_event_loop_now(app.loop) + (uint64_t)timeout_ms * 1000000u) !=
            0 ||
        rs_socket_connect(app.socket, &remote, app.loop, on_client_connected, NULL) != 0) {
        fprintf(stderr, "udp_echo: %s port %u: %s\n", remote.address, remote.port,
                rs_error_str(rs_last_error()));
        goto out;
    }
    rs_event_loop_wait_for_stop(app.loop);
    if (app.error == 0) {
        printf("udp_echo: all %ld echoes came back intact\n", app.received);
        rc = 0;
    }
out:
    if (app.socket) {
        rs_socket_destroy(app.socket);
    }
    if (app.loop) {
        rs_event_loop_destroy(app.loop);
    }
    free(app.seen);
    rs_library_cleanup();
    return rc;
}
