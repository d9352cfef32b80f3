/*
 * watch_echo: drives another library's socket from a reseau loop through a
 * readiness watch (<reseau/watch.h>), the way c-ares, libcurl's multi
 * interface or a database driver are integrated: the library makes and
 * keeps its own non-blocking socket, says whether it wants to read or
 * write, and is told when it can. Here that library is a small echo client
 * (the "fl_" part below, which knows nothing of reseau); it sends a message
 * COUNT times to an echo server and checks every echo.
 *
 *   watch_echo [--host ADDR] --port N [--message TEXT] [--count N] [--help]
 *
 * Try it with the echo_server example:  echo_server --port 9000  and
 * watch_echo --port 9000 --message hello --count 3
 */
#include <reseau/reseau.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#define fl_close closesocket
#define fl_errno() WSAGetLastError()
#define FL_IN_PROGRESS(e) ((e) == WSAEWOULDBLOCK)
#define FL_AGAIN(e) ((e) == WSAEWOULDBLOCK)
#else
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#define fl_close close
#define fl_errno() errno
#define FL_IN_PROGRESS(e) ((e) == EINPROGRESS)
#define FL_AGAIN(e) ((e) == EAGAIN || (e) == EWOULDBLOCK)
#endif

/* ---- the other library: a non-blocking echo client on its own socket ---- */

enum fl_want { FL_WANT_READ = 1, FL_WANT_WRITE = 2 };

struct fl_client {
    rs_os_socket sock;
    bool connected;
    const char *message;
    size_t len;
    long rounds_left;
    size_t sent;     /* of the current round */
    size_t received; /* of the current round */
    char echo[1024];
    bool done;
    char error[128];
};

static void fl_fail(struct fl_client *c, const char *what, int err)
{
    snprintf(c->error, sizeof c->error, "%s failed (system error %d)", what, err);
    c->done = true;
}

static int fl_open(struct fl_client *c, const char *host, int port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(c->error, sizeof c->error, "'%s' is not an IPv4 address", host);
        return -1;
    }
    c->sock = (rs_os_socket)socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (c->sock == RS_OS_SOCKET_INVALID) {
        fl_fail(c, "socket", fl_errno());
        return -1;
    }
#ifdef _WIN32
    u_long on = 1;
    ioctlsocket(c->sock, FIONBIO, &on);
#else
    fcntl(c->sock, F_SETFL, fcntl(c->sock, F_GETFL) | O_NONBLOCK);
#endif
    if (connect(c->sock, (struct sockaddr *)&addr, sizeof addr) != 0 &&
        !FL_IN_PROGRESS(fl_errno())) {
        fl_fail(c, "connect", fl_errno());
        return -1;
    }
    return 0;
}

/* What the library waits for now. */
static unsigned fl_wants(const struct fl_client *c)
{
    if (c->done) {
        return 0;
    }
    return !c->connected || c->sent < c->len ? FL_WANT_WRITE : FL_WANT_READ;
}

/* The socket is readable and/or writable: do what can be done now. */
static void fl_step(struct fl_client *c, bool readable, bool writable)
{
    if (!c->connected && (writable || readable)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->sock, SOL_SOCKET, SO_ERROR, (char *)&err, &len);
        if (err) {
            fl_fail(c, "connect", err);
            return;
        }
        c->connected = true;
    }
    if (writable && c->sent < c->len) {
        int n = (int)send(c->sock, c->message + c->sent, (int)(c->len - c->sent), 0);
        if (n < 0 && !FL_AGAIN(fl_errno())) {
            fl_fail(c, "send", fl_errno());
            return;
        }
        c->sent += n > 0 ? (size_t)n : 0;
    }
    if (readable && c->received < c->len) {
        int n = (int)recv(c->sock, c->echo + c->received, (int)(c->len - c->received), 0);
        if (n == 0) {
            snprintf(c->error, sizeof c->error, "the server closed the connection");
            c->done = true;
            return;
        }
        if (n < 0) {
            if (!FL_AGAIN(fl_errno())) {
                fl_fail(c, "recv", fl_errno());
            }
            return;
        }
        c->received += (size_t)n;
        if (c->received == c->len) {
            if (memcmp(c->echo, c->message, c->len) != 0) {
                snprintf(c->error, sizeof c->error, "the echo differs from the message");
                c->done = true;
                return;
            }
            printf("echo: %.*s", (int)c->len, c->echo);
            c->sent = c->received = 0;
            c->done = --c->rounds_left == 0;
        }
    }
}

/* ---- reseau: one loop, one watch of the library's socket ---- */

static struct {
    rs_event_loop *loop;
    rs_watch *watch;
    struct fl_client client;
    rs_task start_task;
    int error;
} app;

static unsigned watch_events(unsigned wants)
{
    return (wants & FL_WANT_READ ? RS_WATCH_READABLE : 0u) |
           (wants & FL_WANT_WRITE ? RS_WATCH_WRITABLE : 0u);
}

static void finish(void)
{
    rs_watch_stop(app.watch, NULL, NULL);
    app.watch = NULL;
    rs_event_loop_stop(app.loop);
}

static void on_ready(rs_watch *watch, int error, unsigned events, void *user_data)
{
    (void)user_data;
    if (error) {
        app.error = error;
        finish();
        return;
    }
    fl_step(&app.client, (events & RS_WATCH_READABLE) != 0, (events & RS_WATCH_WRITABLE) != 0);
    if (app.client.done) {
        finish();
        return;
    }
    /* Level-triggered: watch only what the library waits for, or a
     * writable socket would call back on every iteration. */
    if (rs_watch_set_events(watch, watch_events(fl_wants(&app.client))) != 0) {
        app.error = rs_last_error();
        finish();
    }
}

/* Watches are started on the loop's thread. */
static void start_watch(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    app.watch = rs_watch_start(app.loop, app.client.sock, watch_events(fl_wants(&app.client)),
                               on_ready, NULL);
    if (!app.watch) {
        app.error = rs_last_error();
        rs_event_loop_stop(app.loop);
    }
}

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: watch_echo [--host ADDR] --port N [--message TEXT] [--count N]\n"
                 "  --host ADDR     the echo server's IPv4 address (default 127.0.0.1)\n"
                 "  --port N        its port, 1..65535\n"
                 "  --message TEXT  what to send (default \"hello\"), with a newline\n"
                 "  --count N       round trips, 1..1000000 (default 1)\n"
                 "  --help          this text\n");
    return code;
}

static bool parse_number(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *message = "hello";
    long port = 0;
    long count = 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(arg, "--help")) {
            return usage(stdout, 0);
        } else if (!strcmp(arg, "--host") && has_value) {
            host = argv[++i];
        } else if (!strcmp(arg, "--message") && has_value) {
            message = argv[++i];
        } else if (!strcmp(arg, "--port") && has_value) {
            if (!parse_number(argv[++i], 1, 65535, &port)) {
                fprintf(stderr, "watch_echo: --port must be a number 1..65535, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(arg, "--count") && has_value) {
            if (!parse_number(argv[++i], 1, 1000000, &count)) {
                fprintf(stderr, "watch_echo: --count must be a number 1..1000000, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else {
            bool takes_value = !strcmp(arg, "--host") || !strcmp(arg, "--port") ||
                               !strcmp(arg, "--message") || !strcmp(arg, "--count");
            fprintf(stderr, "watch_echo: %s '%s'\n",
                    takes_value ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        }
    }
    if (!port) {
        fprintf(stderr, "watch_echo: --port is required\n");
        return usage(stderr, 2);
    }
    size_t len = strlen(message);
    if (len + 1 > sizeof app.client.echo) {
        fprintf(stderr, "watch_echo: the message is longer than %zu bytes\n",
                sizeof app.client.echo - 1);
        return 2;
    }
    char line[sizeof app.client.echo];
    memcpy(line, message, len);
    line[len] = '\n';

#ifdef _WIN32
    /* The other library's own use of Winsock. */
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
        fprintf(stderr, "watch_echo: WSAStartup failed\n");
        return 1;
    }
#endif
    if (rs_library_init() != 0) {
        fprintf(stderr, "watch_echo: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    int rc = 1;
    app.client.sock = RS_OS_SOCKET_INVALID;
    app.client.message = line;
    app.client.len = len + 1;
    app.client.rounds_left = count;
    if (fl_open(&app.client, host, (int)port) != 0) {
        fprintf(stderr, "watch_echo: %s\n", app.client.error);
        goto out;
    }
    app.loop = rs_event_loop_new(NULL);
    rs_task_init(&app.start_task, start_watch, NULL, "start the watch");
    if (!app.loop || rs_event_loop_run(app.loop) != 0 ||
        rs_event_loop_schedule_now(app.loop, &app.start_task) != 0) {
        fprintf(stderr, "watch_echo: %s\n", rs_error_str(rs_last_error()));
        goto out;
    }
    rs_event_loop_wait_for_stop(app.loop);
    if (app.error) {
        fprintf(stderr, "watch_echo: the watch failed: %s\n", rs_error_name(app.error));
    } else if (app.client.error[0]) {
        fprintf(stderr, "watch_echo: %s\n", app.client.error);
    } else {
        printf("%ld round trips through the watch\n", count);
        rc = 0;
    }
out:
    /* The watch is stopped: the socket is the library's to close. */
    if (app.client.sock != RS_OS_SOCKET_INVALID) {
        fl_close(app.client.sock);
    }
    if (app.loop) {
        rs_event_loop_destroy(app.loop);
    }
    rs_library_cleanup();
#ifdef _WIN32
    WSACleanup();
#endif
    return rc;
}
