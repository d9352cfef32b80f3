/*
 * echo_client: connects to an echo server, sends a message (or every line
 * of standard input) and prints what comes back. Done when everything sent
 * has come back (or the server closed the connection). Standard input is
 * read only while less than MAX_OUTSTANDING bytes are on their way to the
 * server and back, so piping a large file in does not buffer it in memory
 * when the server (or the terminal) is slower than the file.
 *
 *   echo_client [--ipv6] [--host ADDR] --port N [--message TEXT] [--help]
 *   echo_client --local PATH [--message TEXT]
 *
 * Try it with netcat:  nc -l 9000  and  echo_client --port 9000 --message hi
 * (netcat prints the message; type a reply and press Enter to see it here).
 */
#include <reseau/reseau.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#endif

/* Bytes sent and not yet echoed above which standard input is not read. */
#define MAX_OUTSTANDING (1u << 20)

/* The main thread reads standard input; the loop thread counts what came
 * back. The main thread waits on this while too much is outstanding. */
#ifdef _WIN32
static SRWLOCK flow_lock = SRWLOCK_INIT;
static CONDITION_VARIABLE flow_cond = CONDITION_VARIABLE_INIT;
#define FLOW_LOCK() AcquireSRWLockExclusive(&flow_lock)
#define FLOW_UNLOCK() ReleaseSRWLockExclusive(&flow_lock)
#define FLOW_WAIT() SleepConditionVariableSRW(&flow_cond, &flow_lock, INFINITE, 0)
#define FLOW_WAKE() WakeAllConditionVariable(&flow_cond)
#else
static pthread_mutex_t flow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flow_cond = PTHREAD_COND_INITIALIZER;
#define FLOW_LOCK() pthread_mutex_lock(&flow_lock)
#define FLOW_UNLOCK() pthread_mutex_unlock(&flow_lock)
#define FLOW_WAIT() pthread_cond_wait(&flow_cond, &flow_lock)
#define FLOW_WAKE() pthread_cond_broadcast(&flow_cond)
#endif

static struct {
    size_t given;    /* bytes handed to the loop (main thread writes) */
    size_t returned; /* bytes echoed back (loop thread writes) */
    bool finished;   /* the loop is done: stop waiting */
} flow;

/* Text to send: written on the loop, freed when its write completes. */
struct line {
    rs_task task;
    struct line *next;
    size_t len;
    char text[];
};

/* Loop-thread state. The main thread only schedules tasks, then waits for
 * the loop to stop (rs_event_loop_wait_for_stop). */
static struct {
    rs_event_loop *loop;
    rs_socket *socket;
    bool connected;
    bool input_done;
    struct line *waiting; /* lines read before the connection was up */
    struct line **waiting_tail;
    size_t sent;
    size_t received;
    int error;
} client;

/* Closes on the loop thread, so that nothing is left for the loop to do
 * once it stopped, and stops it. */
static void finish(int error_code)
{
    if (error_code && !client.error) {
        client.error = error_code;
        fprintf(stderr, "echo_client: %s\n", rs_error_str(error_code));
    }
    if (client.socket) {
        rs_socket_close(client.socket);
    }
    rs_event_loop_stop(client.loop);
    FLOW_LOCK();
    flow.finished = true;
    FLOW_WAKE();
    FLOW_UNLOCK();
}

static void check_done(void)
{
    if (client.connected && client.input_done && client.received >= client.sent) {
        finish(0);
    }
}

static void on_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    free(user_data);
    /* socket is NULL for writes cancelled while the program shuts down. */
    if (error_code && socket) {
        finish(error_code);
    }
}

static void send_line(struct line *l)
{
    if (rs_socket_write(client.socket, l->text, l->len, on_written, l) != 0) {
        free(l);
        finish(rs_last_error());
        return;
    }
    client.sent += l->len;
}

static void on_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)user_data;
    char buf[16384];
    for (;;) {
        size_t n = 0;
        if (error_code != 0 || rs_socket_read(socket, buf, sizeof buf, &n) != 0) {
            int err = error_code ? error_code : rs_last_error();
            if (err == RS_ERROR_WOULD_BLOCK) {
                return;
            }
            /* The server closed: whatever it sent has been printed. */
            finish(err == RS_ERROR_SOCKET_CLOSED ? 0 : err);
            return;
        }
        fwrite(buf, 1, n, stdout);
        fflush(stdout);
        client.received += n;
        FLOW_LOCK();
        flow.returned = client.received;
        FLOW_WAKE();
        FLOW_UNLOCK();
        check_done();
        if (!rs_socket_is_open(socket)) {
            return; /* finished */
        }
    }
}

static void on_connected(rs_socket *socket, int error_code, void *user_data)
{
    (void)user_data;
    if (error_code) {
        finish(error_code);
        return;
    }
    if (rs_socket_subscribe_to_readable_events(socket, on_readable, NULL) != 0) {
        finish(rs_last_error());
        return;
    }
    client.connected = true;
    while (client.waiting) {
        struct line *l = client.waiting;
        client.waiting = l->next;
        send_line(l);
    }
    check_done();
}

static void line_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct line *l = arg;
    if (status != RS_TASK_STATUS_RUN) {
        free(l);
    } else if (client.connected) {
        send_line(l);
    } else {
        *client.waiting_tail = l;
        client.waiting_tail = &l->next;
    }
}

static void input_done_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    (void)status;
    client.input_done = true;
    check_done();
}

static int queue_text(const char *text, size_t len)
{
    struct line *l = calloc(1, sizeof *l + len);
    if (!l) {
        return -1;
    }
    l->len = len;
    memcpy(l->text, text, len);
    rs_task_init(&l->task, line_task, l, "send a line");
    return rs_event_loop_schedule_now(client.loop, &l->task);
}

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: echo_client [--ipv6] [--host ADDR] --port N [--message TEXT]\n"
                 "       echo_client --local PATH [--message TEXT]\n"
                 "  --ipv6          connect over IPv6 (default host ::1)\n"
                 "  --host ADDR     server address (default 127.0.0.1)\n"
                 "  --port N        server port, 1..65535\n"
                 "  --local PATH    connect to a Unix socket path (Windows: \\\\.\\pipe\\NAME)\n"
                 "  --message TEXT  send TEXT and a newline instead of reading standard input\n"
                 "  --help          this text\n");
    return code;
}

int main(int argc, char **argv)
{
    rs_socket_options options = {.type = RS_SOCKET_STREAM, .domain = RS_SOCKET_IPV4};
    const char *host = NULL;
    const char *path = NULL;
    const char *message = NULL;
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
        } else if (!strcmp(arg, "--message") && has_value) {
            message = argv[++i];
        } else if (!strcmp(arg, "--port") && has_value) {
            char *end = NULL;
            port = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || port < 1 || port > 65535) {
                fprintf(stderr, "echo_client: --port must be a number 1..65535, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else {
            bool takes_value = !strcmp(arg, "--host") || !strcmp(arg, "--local") ||
                               !strcmp(arg, "--port") || !strcmp(arg, "--message");
            fprintf(stderr, "echo_client: %s '%s'\n",
                    takes_value ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        }
    }
    rs_socket_endpoint remote;
    memset(&remote, 0, sizeof remote);
    if (path) {
        if (host || port || options.domain == RS_SOCKET_IPV6) {
            fprintf(stderr, "echo_client: --local excludes --host, --port and --ipv6\n");
            return 2;
        }
        options.domain = RS_SOCKET_LOCAL;
        host = path;
    } else if (!port) {
        fprintf(stderr, "echo_client: --port is required (or --local PATH)\n");
        return usage(stderr, 2);
    } else if (!host) {
        host = options.domain == RS_SOCKET_IPV6 ? "::1" : "127.0.0.1";
    }
    if (strlen(host) >= sizeof remote.address) {
        fprintf(stderr, "echo_client: address too long\n");
        return 2;
    }
    strcpy(remote.address, host);
    remote.port = (uint32_t)port;

    if (rs_library_init() != 0) {
        fprintf(stderr, "echo_client: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    int rc = 1;
    client.waiting_tail = &client.waiting;
    client.loop = rs_event_loop_new(NULL);
    client.socket = rs_socket_new(&options);
    if (!client.loop || !client.socket || rs_event_loop_run(client.loop) != 0 ||
        rs_socket_connect(client.socket, &remote, client.loop, on_connected, NULL) != 0) {
        fprintf(stderr, "echo_client: %s: %s\n", remote.address, rs_error_str(rs_last_error()));
        goto out;
    }
    if (message) {
        size_t len = strlen(message);
        char *text = malloc(len + 1);
        if (!text) {
            goto out;
        }
        memcpy(text, message, len);
        text[len] = '\n';
        int queued = queue_text(text, len + 1);
        free(text);
        if (queued != 0) {
            goto out;
        }
    } else {
        char buf[4096];
        while (fgets(buf, sizeof buf, stdin)) {
            size_t len = strlen(buf);
            FLOW_LOCK();
            while (!flow.finished && flow.given - flow.returned >= MAX_OUTSTANDING) {
                FLOW_WAIT();
            }
            bool finished = flow.finished;
            flow.given += len;
            FLOW_UNLOCK();
            if (finished) {
                break; /* the connection ended: the reason is reported */
            }
            if (queue_text(buf, len) != 0) {
                goto out;
            }
        }
    }
    rs_task done;
    rs_task_init(&done, input_done_task, NULL, "input done");
    rs_event_loop_schedule_now(client.loop, &done);
    rs_event_loop_wait_for_stop(client.loop);
    rc = client.error ? 1 : 0;
out:
    if (client.socket) {
        rs_socket *socket = client.socket;
        client.socket = NULL;
        rs_socket_destroy(socket);
    }
    if (client.loop) {
        rs_event_loop_destroy(client.loop);
    }
    while (client.waiting) {
        struct line *l = client.waiting;
        client.waiting = l->next;
        free(l);
    }
    rs_library_cleanup();
    return rc;
}
