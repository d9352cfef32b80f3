/*
 * chat_server: a line-based chat over TCP on one event loop. The first line
 * a client sends is its name; every later line goes to all other clients as
 * "NAME: line". Joins and leaves are announced as "* NAME joined" and
 * "* NAME left". Stops on Ctrl-C.
 *
 *   chat_server [--ipv6] [--host ADDR] [--port N] [--evict-after SECONDS]
 *               [--max-queue BYTES] [--help]
 *
 * Flow control, the part to copy:
 *  - A sender is throttled: once a read's lines are queued for the others,
 *    the sender is not read again until every one of those lines has been
 *    written out. A client that bursts megabytes then moves at the pace of
 *    its readers, and the server holds at most one read (READ_SIZE bytes of
 *    lines) per sender.
 *  - A reader whose waiting lines do not move (no write to it completes
 *    while lines wait) for longer than --evict-after seconds (default 10)
 *    is told so and disconnected, and the others see "* NAME was
 *    disconnected (too slow)"; so a client that stops reading stalls the
 *    senders for that long at most. A reader that keeps taking lines is
 *    never evicted, however long its queue stays non-empty: on a busy or
 *    slow machine a queue can stay full for a long time while it moves.
 *  - --max-queue bytes (default 1 MiB) caps each client's write queue as a
 *    last resort: a client over it is disconnected at once. With the
 *    throttling it takes very many senders at the same time to reach it.
 *
 * Try it:  chat_server --port 9000, then in two terminals  nc 127.0.0.1 9000
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

/* Longest line kept; a longer one is cut into lines of this size. */
#define MAX_LINE 1024
/* Longest name; longer ones are cut. */
#define MAX_NAME 32
/* How long an evicted client gets to take the notice before it is closed. */
#define EVICT_GRACE_NS 5000000000u
/* One read of a sender: the most of its lines queued at a time. */
#define READ_SIZE 4096

/* A line to send, shared by every client it is queued for. */
struct msg {
    int refs;
    long from; /* the sender's id, 0 for the server's own notices */
    size_t len;
    char text[];
};

struct queued {
    struct msg *msg;
    struct queued *next;
};

/* A client, on the loop thread only. It outlives its socket while a write
 * is in flight: the write's completion still refers to it. */
struct client {
    rs_socket *socket; /* NULL once closed */
    struct client *prev;
    struct client *next;
    long id; /* names a client that sends an empty name */
    char name[MAX_NAME + 1];
    bool named;
    char line[MAX_LINE];
    size_t line_len;
    struct queued *head; /* head is the write in flight when writing */
    struct queued *tail;
    size_t queued_bytes;
    bool writing;
    bool evicting;    /* told to go: takes no more messages */
    rs_task close_at; /* closes an evicted client after the grace period */
    bool close_scheduled;
    /* Throttling this client as a sender: queue entries of its lines still
     * waiting at other clients; while non-zero it is not read. */
    long lines_queued;
    bool paused;
    rs_task resume; /* reads again once lines_queued fell to 0 */
    bool resume_scheduled;
    /* This client as a reader: evicted when, at this task, its lines have
     * been waiting without a write to it completing since progress_at. */
    rs_task evict_at;
    bool evict_armed;
    uint64_t progress_at;
};

static struct {
    rs_event_loop *loop;
    struct client *clients;
    size_t online; /* named clients that are not being evicted */
    size_t max_queue;
    uint64_t evict_after_ns;
    long served;
    bool shutting_down;
} chat;

/* A message holding a, then b (blen bytes), then a newline. */
static struct msg *msg_new(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    struct msg *m = malloc(sizeof *m + alen + blen + 1);
    if (!m) {
        return NULL;
    }
    m->refs = 1;
    m->from = 0;
    memcpy(m->text, a, alen);
    memcpy(m->text + alen, b, blen);
    m->text[alen + blen] = '\n';
    m->len = alen + blen + 1;
    return m;
}

static void msg_release(struct msg *m)
{
    if (--m->refs == 0) {
        free(m);
    }
}

static struct client *client_by_id(long id)
{
    for (struct client *c = chat.clients; c; c = c->next) {
        if (c->id == id) {
            return c;
        }
    }
    return NULL;
}

/* A queued line is written or dropped: its sender may be read again once
 * none of its lines waits anywhere. The sender is looked up by id, as it
 * may have left meanwhile. */
static void queued_free(struct queued *q)
{
    struct client *from = q->msg->from ? client_by_id(q->msg->from) : NULL;
    if (from && --from->lines_queued == 0 && from->paused && !from->resume_scheduled) {
        /* Read it from a task: never from inside a write completion or a
         * broadcast of another client. */
        from->resume_scheduled = true;
        rs_event_loop_schedule_now(chat.loop, &from->resume);
    }
    msg_release(q->msg);
    free(q);
}

static void client_free(struct client *c)
{
    while (c->head) {
        struct queued *q = c->head;
        c->head = q->next;
        queued_free(q);
    }
    free(c);
}

static void broadcast(struct msg *m, const struct client *except);
/* Sends "a" followed by a newline to every named client but except. */
static void announce(const char *a, const struct client *except);
static void on_written(rs_socket *socket, int error_code, size_t bytes, void *user_data);

/* Closes the socket and unlinks the client; the memory goes when no write
 * of it is in flight any more. */
static void client_drop(struct client *c, bool say_left)
{
    if (!c->socket) {
        return;
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        chat.clients = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    rs_socket *socket = c->socket;
    c->socket = NULL;
    if (c->close_scheduled) {
        rs_event_loop_cancel_task(chat.loop, &c->close_at);
    }
    if (c->resume_scheduled) {
        rs_event_loop_cancel_task(chat.loop, &c->resume);
    }
    if (c->evict_armed) {
        rs_event_loop_cancel_task(chat.loop, &c->evict_at);
    }
    rs_socket_destroy(socket);
    if (c->named && !c->evicting) {
        chat.online--;
        printf("chat_server: %s left (%zu online)\n", c->name, chat.online);
        fflush(stdout);
        if (say_left && !chat.shutting_down) {
            char text[MAX_NAME + 16];
            snprintf(text, sizeof text, "* %s left", c->name);
            announce(text, c);
        }
    }
    if (!c->writing) {
        client_free(c);
    }
}

static void on_close_at(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct client *c = arg;
    c->close_scheduled = false;
    if (status == RS_TASK_STATUS_RUN) {
        client_drop(c, true);
    }
}

/* Closes c on the next loop iteration, or at `when`: never from inside a
 * broadcast, which is walking the client list. */
static void schedule_close(struct client *c, uint64_t when)
{
    if (c->close_scheduled) {
        rs_event_loop_cancel_task(chat.loop, &c->close_at);
    }
    c->close_scheduled = true;
    rs_event_loop_schedule_at(chat.loop, &c->close_at, when);
}

static void start_write(struct client *c)
{
    if (c->writing || !c->head || !c->socket) {
        return;
    }
    c->writing = true;
    if (rs_socket_write(c->socket, c->head->msg->text, c->head->msg->len, on_written, c) != 0) {
        c->writing = false;
        schedule_close(c, 0);
    }
}

static void on_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    (void)bytes;
    struct client *c = user_data;
    c->writing = false;
    struct queued *q = c->head;
    c->head = q->next;
    if (!c->head) {
        c->tail = NULL;
    }
    c->queued_bytes -= q->msg->len;
    queued_free(q);
    c->progress_at = rs_event_loop_now(chat.loop);
    if (!c->head && c->evict_armed) {
        /* Caught up: the time behind starts again with the next line. */
        c->evict_armed = false;
        rs_event_loop_cancel_task(chat.loop, &c->evict_at);
    }
    if (!socket || !c->socket) {
        client_free(c); /* dropped while this write was in flight */
        return;
    }
    if (error_code != 0) {
        schedule_close(c, 0);
    } else if (c->evicting && !c->head) {
        schedule_close(c, 0); /* the notice went out */
    } else {
        start_write(c);
    }
}

static void enqueue(struct client *c, struct msg *m)
{
    struct queued *q = malloc(sizeof *q);
    if (!q) {
        schedule_close(c, 0);
        return;
    }
    m->refs++;
    q->msg = m;
    q->next = NULL;
    if (m->from) {
        struct client *from = client_by_id(m->from);
        if (from) {
            from->lines_queued++;
        }
    }
    if (!c->head && !c->evicting && !c->evict_armed) {
        /* Lines now wait for c: they must move within evict_after. */
        c->evict_armed = true;
        c->progress_at = rs_event_loop_now(chat.loop);
        rs_event_loop_schedule_at(chat.loop, &c->evict_at, c->progress_at + chat.evict_after_ns);
    }
    if (c->tail) {
        c->tail->next = q;
    } else {
        c->head = q;
    }
    c->tail = q;
    c->queued_bytes += m->len;
    start_write(c);
}

/* The client cannot keep up: its queue (but for the write in flight) is
 * dropped, it gets one last line, and it is closed once that line is out or
 * the grace period ends. */
static void evict(struct client *c)
{
    c->evicting = true;
    chat.online--;
    if (c->evict_armed) {
        c->evict_armed = false;
        rs_event_loop_cancel_task(chat.loop, &c->evict_at);
    }
    struct queued *keep = c->writing ? c->head : NULL;
    struct queued *q = keep ? keep->next : c->head;
    while (q) {
        struct queued *next = q->next;
        c->queued_bytes -= q->msg->len;
        queued_free(q);
        q = next;
    }
    if (keep) {
        keep->next = NULL;
    }
    c->head = c->tail = keep;
    printf("chat_server: %s reads too slowly, disconnecting\n", c->name);
    fflush(stdout);
    struct msg *notice = msg_new("* you read too slowly and are disconnected", "", 0);
    if (notice) {
        enqueue(c, notice);
        msg_release(notice);
    }
    schedule_close(c, rs_event_loop_now(chat.loop) + EVICT_GRACE_NS);
    char text[MAX_NAME + 48];
    snprintf(text, sizeof text, "* %s was disconnected (too slow)", c->name);
    announce(text, c);
}

/* Queues m for every named client but `except`. Evicting a client on the way
 * only marks it, so the list stays intact while it is walked. */
static void broadcast(struct msg *m, const struct client *except)
{
    for (struct client *c = chat.clients; c; c = c->next) {
        if (c == except || !c->named || c->evicting || !c->socket) {
            continue;
        }
        if (c->queued_bytes + m->len > chat.max_queue) {
            evict(c);
        } else {
            enqueue(c, m);
        }
    }
}

static void announce(const char *a, const struct client *except)
{
    struct msg *m = msg_new(a, "", 0);
    if (m) {
        broadcast(m, except);
        msg_release(m);
    }
}

static void handle_line(struct client *c, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    if (!c->named) {
        size_t n = len > MAX_NAME ? MAX_NAME : len;
        if (n == 0) {
            snprintf(c->name, sizeof c->name, "guest%ld", c->id);
        } else {
            memcpy(c->name, line, n);
            c->name[n] = '\0';
        }
        c->named = true;
        chat.online++;
        printf("chat_server: %s joined (%zu online)\n", c->name, chat.online);
        fflush(stdout);
        char text[MAX_NAME + 64];
        snprintf(text, sizeof text, "* hello %s, %zu online", c->name, chat.online);
        struct msg *hello = msg_new(text, "", 0);
        if (hello) {
            enqueue(c, hello);
            msg_release(hello);
        }
        snprintf(text, sizeof text, "* %s joined", c->name);
        announce(text, c);
        return;
    }
    char prefix[MAX_NAME + 3];
    snprintf(prefix, sizeof prefix, "%s: ", c->name);
    struct msg *m = msg_new(prefix, line, len);
    if (m) {
        m->from = c->id;
        broadcast(m, c);
        msg_release(m);
    }
}

/* Reads c and handles its lines until it is drained or throttled. May drop
 * c (then c is unlinked and must not be used). */
static void pump(struct client *c)
{
    char buf[READ_SIZE];
    for (;;) {
        if (c->lines_queued > 0 && !c->evicting) {
            /* Not reading is the pause: data that arrives meanwhile brings
             * no readable callback until a read drains the socket
             * (docs/readable-events.md), so the resume task reads. */
            c->paused = true;
            return;
        }
        size_t n = 0;
        if (rs_socket_read(c->socket, buf, sizeof buf, &n) != 0) {
            if (rs_last_error() != RS_ERROR_WOULD_BLOCK) {
                client_drop(c, true);
            }
            return;
        }
        /* An evicted client's input is read and dropped, so that its
         * connection can still drain the notice and close cleanly. */
        for (size_t i = 0; i < n && !c->evicting; i++) {
            if (buf[i] == '\n') {
                handle_line(c, c->line, c->line_len);
                c->line_len = 0;
            } else {
                c->line[c->line_len++] = buf[i];
                if (c->line_len == MAX_LINE) {
                    handle_line(c, c->line, c->line_len);
                    c->line_len = 0;
                }
            }
        }
    }
}

static void on_readable(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    struct client *c = user_data;
    if (error_code != 0) {
        client_drop(c, true);
    } else if (!c->paused) {
        pump(c);
    }
}

static void on_resume(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct client *c = arg;
    c->resume_scheduled = false;
    if (status == RS_TASK_STATUS_RUN && c->socket && c->paused) {
        c->paused = false;
        pump(c);
    }
}

static void on_evict_at(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct client *c = arg;
    c->evict_armed = false;
    if (status != RS_TASK_STATUS_RUN || !c->socket || !c->head || c->evicting) {
        return;
    }
    uint64_t due = c->progress_at + chat.evict_after_ns;
    if (rs_event_loop_now(chat.loop) < due) {
        /* A write completed since the task was set: look again then. */
        c->evict_armed = true;
        rs_event_loop_schedule_at(chat.loop, &c->evict_at, due);
        return;
    }
    evict(c);
}

static void on_accept(rs_socket *listener, int error_code, rs_socket *socket, void *user_data)
{
    (void)listener;
    (void)user_data;
    if (error_code != 0) {
        /* Out of descriptors: the others keep chatting, accepting goes on. */
        fprintf(stderr, "chat_server: accept failed: %s\n", rs_error_str(error_code));
        return;
    }
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        rs_socket_destroy(socket);
        return;
    }
    c->socket = socket;
    rs_task_init(&c->close_at, on_close_at, c, "close client");
    rs_task_init(&c->resume, on_resume, c, "read a throttled sender again");
    rs_task_init(&c->evict_at, on_evict_at, c, "evict a reader that stayed behind");
    c->next = chat.clients;
    if (c->next) {
        c->next->prev = c;
    }
    chat.clients = c;
    c->id = ++chat.served;
    if (rs_socket_assign_to_event_loop(socket, chat.loop) != 0 ||
        rs_socket_subscribe_to_readable_events(socket, on_readable, c) != 0) {
        fprintf(stderr, "chat_server: %s\n", rs_error_str(rs_last_error()));
        client_drop(c, false);
    }
}

static void close_all(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)arg;
    (void)status;
    chat.shutting_down = true;
    while (chat.clients) {
        client_drop(chat.clients, false);
    }
}

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: chat_server [--ipv6] [--host ADDR] [--port N] [--evict-after SECONDS]\n"
                 "                   [--max-queue BYTES]\n"
                 "  --ipv6                 listen on IPv6 (default host ::1)\n"
                 "  --host ADDR            address to listen on (default 127.0.0.1)\n"
                 "  --port N               port, 0..65535 (default 0: the system picks one)\n"
                 "  --evict-after SECONDS  disconnect a client whose waiting lines have not\n"
                 "                         moved (no write to it completed) for this long,\n"
                 "                         1..3600 (default 10); a sender is not read while\n"
                 "                         its lines wait, so this bounds how long one reader\n"
                 "                         stalls them\n"
                 "  --max-queue BYTES      per-client write queue cap, 2048..1073741824\n"
                 "                         (default 1048576); a client over it is disconnected\n"
                 "  --help                 this text\n");
    return code;
}

int main(int argc, char **argv)
{
    rs_socket_options options = {.type = RS_SOCKET_STREAM, .domain = RS_SOCKET_IPV4};
    const char *host = NULL;
    long port = 0;
    long max_queue = 1 << 20;
    long evict_after = 10;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool takes_value = !strcmp(arg, "--host") || !strcmp(arg, "--port") ||
                           !strcmp(arg, "--max-queue") || !strcmp(arg, "--evict-after");
        if (!strcmp(arg, "--help")) {
            return usage(stdout, 0);
        } else if (!strcmp(arg, "--ipv6")) {
            options.domain = RS_SOCKET_IPV6;
            continue;
        } else if (!takes_value || i + 1 >= argc) {
            fprintf(stderr, "chat_server: %s '%s'\n",
                    takes_value ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        }
        const char *value = argv[++i];
        if (!strcmp(arg, "--host")) {
            host = value;
            continue;
        }
        bool is_port = !strcmp(arg, "--port");
        bool is_evict = !strcmp(arg, "--evict-after");
        long min = is_port ? 0 : is_evict ? 1 : 2048;
        long max = is_port ? 65535 : is_evict ? 3600 : 1L << 30;
        char *end = NULL;
        long n = strtol(value, &end, 10);
        if (!*value || *end || n < min || n > max) {
            fprintf(stderr, "chat_server: %s must be a number %ld..%ld, not '%s'\n", arg, min, max,
                    value);
            return 2;
        }
        *(is_port ? &port : is_evict ? &evict_after : &max_queue) = n;
    }
    rs_socket_endpoint local;
    memset(&local, 0, sizeof local);
    const char *h = host ? host : options.domain == RS_SOCKET_IPV6 ? "::1" : "127.0.0.1";
    if (strlen(h) >= sizeof local.address) {
        fprintf(stderr, "chat_server: host too long\n");
        return 2;
    }
    strcpy(local.address, h);
    local.port = (uint32_t)port;
    chat.max_queue = (size_t)max_queue;
    chat.evict_after_ns = (uint64_t)evict_after * 1000000000u;

    block_interrupts();
    if (rs_library_init() != 0) {
        fprintf(stderr, "chat_server: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    int rc = 1;
    chat.loop = rs_event_loop_new(NULL);
    rs_socket *listener = rs_socket_new(&options);
    rs_socket_endpoint bound;
    /* A deep backlog: hundreds of clients may connect at once. */
    if (!chat.loop || rs_event_loop_run(chat.loop) != 0 || !listener ||
        rs_socket_bind(listener, &local) != 0 || rs_socket_get_bound_address(listener, &bound) ||
        rs_socket_listen(listener, 1024) != 0 ||
        rs_socket_start_accept(listener, chat.loop, on_accept, NULL) != 0) {
        fprintf(stderr, "chat_server: %s port %u: %s\n", local.address, local.port,
                rs_error_str(rs_last_error()));
        goto out;
    }
    printf("chat_server: listening on %s port %u (%s backend)\n", bound.address, bound.port,
           rs_backend_name());
    fflush(stdout);
    wait_for_interrupt();
    printf("chat_server: shutting down\n");
    fflush(stdout);
    rc = 0;
out:
    if (listener) {
        rs_socket_destroy(listener);
    }
    if (chat.loop) {
        rs_task task;
        rs_task_init(&task, close_all, NULL, "close all clients");
        /* Runs on the loop, or on this thread while destroy cancels it. */
        rs_event_loop_schedule_now(chat.loop, &task);
        rs_event_loop_destroy(chat.loop);
    }
    rs_library_cleanup();
    return rc;
}
