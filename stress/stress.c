/*
 * Bounded socket stress: many concurrent loopback TCP connections on a
 * group of loops, each with a fate chosen at random (seeded):
 *   echo        the client sends, the server echoes, the client checks it all
 *   close       a foreign thread closes the client while its writes are in
 *               flight
 *   half-close  the client shuts down writing after its last write; the
 *               server echoes everything, then shuts down too
 *   reset       the server closes in the middle of a large write (the
 *               kernel answers the client's data with a reset)
 * It counts operations, errors by code and callbacks against what is owed,
 * and fails (exit 1) on a lost or doubled callback, corrupted data, a
 * connection that never finishes within the deadline, or a leaked block.
 *
 *   stress [--smoke] [--connections N] [--loops N] [--seed N] [--deadline S]
 * --smoke: 500 connections, the CI run.
 */
#include "../common/atomics.h"
#include "../common/clock.h"
#include "../common/compat.h"
#include "../common/thread.h"

#include <reseau/reseau.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_LEN 4
#define CHUNK 16384
#define MAX_PAYLOAD (1024 * 1024)
#define RESET_AFTER (64 * 1024)

enum fate { FATE_ECHO, FATE_CLOSE, FATE_HALF_CLOSE, FATE_RESET, FATE_COUNT };
static const char *const fate_names[FATE_COUNT] = {"echo", "close", "half-close", "reset"};

struct conn {
    long id;
    enum fate fate;
    rs_socket *client;
    rs_event_loop *loop;
    unsigned char header[HEADER_LEN];
    size_t payload_len;
    size_t writes_issued; /* loop thread */
    volatile long writes_done;
    size_t echoed;           /* bytes read back, header included */
    volatile long connected; /* 1 connected, -1 failed */
    volatile long done;
};

/* The accepted side of a connection. */
struct peer {
    rs_socket *socket;
    rs_event_loop *loop;
    rs_task subscribe_task;
    struct peer *next;
    unsigned char header[HEADER_LEN];
    size_t received;
    enum fate fate;
    size_t echo_pending;
    bool eof;
    bool closed;
    volatile long writes_issued;
    volatile long writes_done;
};

struct echo_chunk {
    struct peer *peer;
    size_t len;
    unsigned char bytes[];
};

static struct {
    long connections;
    unsigned loops;
    unsigned long long seed;
    uint64_t deadline_ns;
} config = {2000, 4, 1, 0};

static unsigned char payload[MAX_PAYLOAD];
static struct conn *conns;
static rs_event_loop_group *group;

static rs__mutex lock;
static rs__condvar cond;
static long conns_done;     /* under lock */
static struct peer *peers;  /* under lock */
static long peers_accepted; /* under lock */

/* Counters, updated atomically from every loop. */
static volatile long connects_started, connect_callbacks, close_callbacks, destroy_callbacks;
static volatile long sockets_created;
static volatile long writes_issued_total, write_callbacks_total, doubled_callbacks;
/* Byte counts in KiB: `long` is 32 bits on Windows, and a run moves
 * gigabytes. */
static volatile long kib_written, kib_read, reads, foreign_closes, shutdowns;
static volatile long corrupt;
static volatile long unexpected_errors; /* on a connection nobody disturbed */
static volatile long errors_by_code[RS_ERROR_COUNT];

static void count_error(int code)
{
    if (code > 0 && code < RS_ERROR_COUNT) {
        rs__atomic_add(&errors_by_code[code], 1);
    }
}

static unsigned long long next_random(void)
{
    /* xorshift64*: reproducible fates for a given --seed. */
    config.seed ^= config.seed >> 12;
    config.seed ^= config.seed << 25;
    config.seed ^= config.seed >> 27;
    return config.seed * 2685821657736338717ull;
}

static void on_closed(void *user_data)
{
    (void)user_data;
    rs__atomic_add(&close_callbacks, 1);
}

static void on_destroyed(void *user_data)
{
    (void)user_data;
    rs__atomic_add(&destroy_callbacks, 1);
    rs__mutex_lock(&lock);
    rs__condvar_broadcast(&cond);
    rs__mutex_unlock(&lock);
}

static void track(rs_socket *s)
{
    rs__atomic_add(&sockets_created, 1);
    rs_socket_set_close_callback(s, on_closed, NULL);
    rs_socket_set_destroy_callback(s, on_destroyed, NULL);
}

static void conn_finish(struct conn *c)
{
    if (rs__atomic_exchange(&c->done, 1) == 0) {
        rs__mutex_lock(&lock);
        conns_done++;
        rs__condvar_broadcast(&cond);
        rs__mutex_unlock(&lock);
    }
}

/* ---- server side ---- */

static void peer_drain(struct peer *p);

static void peer_maybe_finish(struct peer *p)
{
    /* Everything echoed after end of stream: end ours too. */
    if (p->eof && p->echo_pending == 0 && !p->closed) {
        if (rs_socket_shutdown(p->socket, RS_SOCKET_DIRECTION_WRITE) == 0) {
            rs__atomic_add(&shutdowns, 1);
        }
        p->closed = true;
    }
}

static void on_peer_echoed(rs_socket *s, int error_code, size_t bytes, void *user_data)
{
    struct echo_chunk *c = user_data;
    struct peer *p = c->peer;
    if (rs__atomic_add(&p->writes_done, 1) > rs__atomic_load(&p->writes_issued)) {
        rs__atomic_add(&doubled_callbacks, 1);
    }
    rs__atomic_add(&write_callbacks_total, 1);
    if (error_code) {
        count_error(error_code);
    } else {
        rs__atomic_add(&kib_written, (long)(bytes / 1024));
    }
    p->echo_pending -= c->len;
    free(c);
    if (s) {
        peer_maybe_finish(p);
    }
}

static void peer_drain(struct peer *p)
{
    for (;;) {
        struct echo_chunk *c = malloc(sizeof *c + CHUNK);
        if (!c) {
            abort();
        }
        c->peer = p;
        size_t n = 0;
        if (rs_socket_read(p->socket, c->bytes, CHUNK, &n) != 0) {
            int err = rs_last_error();
            free(c);
            if (err == RS_ERROR_SOCKET_CLOSED) {
                p->eof = true;
                peer_maybe_finish(p);
            } else if (err != RS_ERROR_WOULD_BLOCK) {
                count_error(err);
            }
            return;
        }
        rs__atomic_add(&reads, 1);
        rs__atomic_add(&kib_read, (long)(n / 1024));
        for (size_t i = 0; i < n && p->received + i < HEADER_LEN; i++) {
            p->header[p->received + i] = c->bytes[i];
        }
        p->received += n;
        if (p->received >= HEADER_LEN) {
            long id = (long)p->header[0] | (long)p->header[1] << 8 | (long)p->header[2] << 16 |
                      (long)p->header[3] << 24;
            p->fate = id < config.connections ? conns[id].fate : FATE_ECHO;
        }
        if (p->fate == FATE_RESET && p->received >= RESET_AFTER) {
            /* Closing with unread data makes the kernel reset the connection. */
            free(c);
            rs_socket_close(p->socket);
            p->closed = true;
            return;
        }
        if (p->closed) {
            free(c);
            continue;
        }
        c->len = n;
        p->echo_pending += n;
        rs__atomic_add(&p->writes_issued, 1);
        rs__atomic_add(&writes_issued_total, 1);
        if (rs_socket_write(p->socket, c->bytes, n, on_peer_echoed, c) != 0) {
            count_error(rs_last_error());
            rs__atomic_add(&p->writes_issued, -1);
            rs__atomic_add(&writes_issued_total, -1);
            p->echo_pending -= n;
            free(c);
        }
    }
}

static void on_peer_readable(rs_socket *s, int error_code, void *user_data)
{
    (void)s;
    struct peer *p = user_data;
    if (error_code) {
        count_error(error_code);
        return;
    }
    peer_drain(p);
}

static void peer_subscribe_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct peer *p = arg;
    if (status == RS_TASK_STATUS_RUN &&
        rs_socket_subscribe_to_readable_events(p->socket, on_peer_readable, p) != 0) {
        count_error(rs_last_error());
    }
}

static void on_accepted(rs_socket *listener, int error_code, rs_socket *new_socket, void *user_data)
{
    (void)listener;
    (void)user_data;
    if (error_code) {
        count_error(error_code);
        return;
    }
    struct peer *p = calloc(1, sizeof *p);
    if (!p) {
        abort();
    }
    p->socket = new_socket;
    p->loop = rs_event_loop_group_get_next(group);
    track(new_socket);
    rs__mutex_lock(&lock);
    p->next = peers;
    peers = p;
    peers_accepted++;
    rs__mutex_unlock(&lock);
    /* Subscribing belongs to the peer's own loop thread. */
    rs_task_init(&p->subscribe_task, peer_subscribe_task, p, "stress subscribe");
    if (rs_socket_assign_to_event_loop(new_socket, p->loop) != 0 ||
        rs_event_loop_schedule_now(p->loop, &p->subscribe_task) != 0) {
        count_error(rs_last_error());
    }
}

/* ---- client side ---- */

static void on_client_written(rs_socket *s, int error_code, size_t bytes, void *user_data)
{
    struct conn *c = user_data;
    long done = rs__atomic_add(&c->writes_done, 1);
    if ((size_t)done > c->writes_issued) {
        rs__atomic_add(&doubled_callbacks, 1);
    }
    rs__atomic_add(&write_callbacks_total, 1);
    if (error_code) {
        count_error(error_code);
        /* Only a close or a reset may fail a client's write. */
        if (c->fate == FATE_ECHO || c->fate == FATE_HALF_CLOSE) {
            rs__atomic_add(&unexpected_errors, 1);
            conn_finish(c);
        }
    } else {
        rs__atomic_add(&kib_written, (long)(bytes / 1024));
    }
    /* Shutting down writing cancels queued writes: only after the last. */
    if (s && c->fate == FATE_HALF_CLOSE && (size_t)done == c->writes_issued && error_code == 0) {
        if (rs_socket_shutdown(s, RS_SOCKET_DIRECTION_WRITE) == 0) {
            rs__atomic_add(&shutdowns, 1);
        } else {
            count_error(rs_last_error());
            conn_finish(c);
        }
    }
}

static void client_issue(struct conn *c, const void *data, size_t len)
{
    c->writes_issued++;
    rs__atomic_add(&writes_issued_total, 1);
    if (rs_socket_write(c->client, data, len, on_client_written, c) != 0) {
        c->writes_issued--;
        rs__atomic_add(&writes_issued_total, -1);
        count_error(rs_last_error());
    }
}

static void client_read(struct conn *c)
{
    static RS__THREAD_LOCAL unsigned char buf[CHUNK];
    for (;;) {
        size_t n = 0;
        if (rs_socket_read(c->client, buf, sizeof buf, &n) != 0) {
            int err = rs_last_error();
            if (err == RS_ERROR_WOULD_BLOCK) {
                return;
            }
            if (err != RS_ERROR_SOCKET_CLOSED) {
                count_error(err);
            }
            /* End of stream or an error ends every fate but a clean echo,
             * which must have had all its bytes back by then. */
            if (c->fate == FATE_ECHO || c->fate == FATE_HALF_CLOSE) {
                if (c->echoed != HEADER_LEN + c->payload_len) {
                    rs__atomic_add(&corrupt, 1);
                }
            }
            conn_finish(c);
            return;
        }
        rs__atomic_add(&reads, 1);
        rs__atomic_add(&kib_read, (long)(n / 1024));
        for (size_t i = 0; i < n; i++) {
            size_t at = c->echoed + i;
            unsigned char want = at < HEADER_LEN ? c->header[at] : payload[at - HEADER_LEN];
            if (buf[i] != want) {
                rs__atomic_add(&corrupt, 1);
                break;
            }
        }
        c->echoed += n;
        if (c->fate == FATE_ECHO && c->echoed == HEADER_LEN + c->payload_len) {
            conn_finish(c);
        }
    }
}

static void on_client_readable(rs_socket *s, int error_code, void *user_data)
{
    (void)s;
    struct conn *c = user_data;
    if (error_code) {
        count_error(error_code);
        conn_finish(c);
        return;
    }
    client_read(c);
}

static void on_connected(rs_socket *s, int error_code, void *user_data)
{
    struct conn *c = user_data;
    rs__atomic_add(&connect_callbacks, 1);
    if (error_code) {
        count_error(error_code);
        rs__atomic_store(&c->connected, -1);
        conn_finish(c);
        return;
    }
    rs__atomic_store(&c->connected, 1);
    if (rs_socket_subscribe_to_readable_events(s, on_client_readable, c) != 0) {
        count_error(rs_last_error());
        conn_finish(c);
        return;
    }
    client_issue(c, c->header, HEADER_LEN);
    for (size_t off = 0; off < c->payload_len; off += CHUNK * 4) {
        size_t len = c->payload_len - off < CHUNK * 4 ? c->payload_len - off : CHUNK * 4;
        client_issue(c, payload + off, len);
    }
    rs__mutex_lock(&lock);
    rs__condvar_broadcast(&cond);
    rs__mutex_unlock(&lock);
}

/* ---- the foreign closer ---- */

static bool deadline_passed(void)
{
    return rs__clock_now_ns() >= config.deadline_ns;
}

/* Closes every "close" connection from this (foreign) thread as soon as it
 * is connected, while its writes are still in flight. */
static void closer_thread(void *arg)
{
    (void)arg;
    for (long i = 0; i < config.connections; i++) {
        struct conn *c = &conns[i];
        if (c->fate != FATE_CLOSE) {
            continue;
        }
        rs__mutex_lock(&lock);
        while (rs__atomic_load(&c->connected) == 0 && !deadline_passed()) {
            rs__condvar_wait_ns(&cond, &lock, config.deadline_ns - rs__clock_now_ns());
        }
        rs__mutex_unlock(&lock);
        if (rs__atomic_load(&c->connected) == 1) {
            if (rs_socket_close(c->client) == 0) {
                rs__atomic_add(&foreign_closes, 1);
            } else {
                count_error(rs_last_error());
            }
            conn_finish(c);
        }
    }
}

/* ---- main ---- */

/* --log: the library's warnings (e.g. an OS error it has no code for) on
 * stderr, to tell where an RS_ERROR_SYS_CALL_FAILURE came from. */
static void log_to_stderr(rs_log_level level, const char *message, void *user_data)
{
    (void)user_data;
    fprintf(stderr, "reseau[%d]: %s\n", (int)level, message);
}

static int parse_args(int argc, char **argv)
{
    unsigned deadline_s = 120;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--smoke")) {
            config.connections = 500;
            deadline_s = 60;
        } else if (!strcmp(a, "--connections") && v) {
            config.connections = strtol(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--loops") && v) {
            config.loops = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            config.seed = strtoull(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--deadline") && v) {
            deadline_s = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--log")) {
            rs_set_log(log_to_stderr, RS_LOG_WARN, NULL);
        } else {
            fprintf(stderr,
                    "usage: %s [--smoke] [--connections N] [--loops N] [--seed N] "
                    "[--deadline S] [--log]\n",
                    argv[0]);
            return -1;
        }
    }
    if (config.connections < 1 || config.connections > 100000 || config.loops < 1 ||
        config.seed == 0) {
        fprintf(stderr, "stress: connections 1..100000, loops >= 1, seed != 0\n");
        return -1;
    }
    config.deadline_ns = rs__clock_now_ns() + (uint64_t)deadline_s * 1000000000u;
    return 0;
}

/* Fates, sizes and headers, decided before any loop runs: the server side
 * reads them from its own threads. */
static void plan_connections(void)
{
    static const size_t sizes[FATE_COUNT] = {CHUNK * 4, CHUNK * 16, CHUNK * 4, MAX_PAYLOAD};
    for (long i = 0; i < config.connections; i++) {
        struct conn *c = &conns[i];
        c->id = i;
        c->fate = (enum fate)(next_random() % FATE_COUNT);
        c->payload_len = sizes[c->fate];
        for (int b = 0; b < HEADER_LEN; b++) {
            c->header[b] = (unsigned char)(i >> (8 * b));
        }
    }
}

static void start_connections(const rs_socket_endpoint *server)
{
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = RS_SOCKET_STREAM;
    o.domain = RS_SOCKET_IPV4;
    o.connect_timeout_ms = 30000;
    for (long i = 0; i < config.connections; i++) {
        struct conn *c = &conns[i];
        c->loop = rs_event_loop_group_get_next(group);
        c->client = rs_socket_new(&o);
        if (!c->client) {
            count_error(rs_last_error());
            conn_finish(c);
            continue;
        }
        track(c->client);
        if (rs_socket_connect(c->client, server, c->loop, on_connected, c) != 0) {
            count_error(rs_last_error());
            rs__atomic_store(&c->connected, -1);
            conn_finish(c);
        } else {
            rs__atomic_add(&connects_started, 1);
        }
    }
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        return 2;
    }
    unsigned long long seed = config.seed;
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (unsigned char)(i * 7 + (i >> 11));
    }
    conns = calloc((size_t)config.connections, sizeof *conns);
    if (!conns || rs_library_init() != 0) {
        return 2;
    }
    plan_connections();
    rs__mutex_init(&lock);
    rs__condvar_init(&cond);
    rs_event_loop_group_options go = {.loop_count = config.loops};
    group = rs_event_loop_group_new(&go);
    if (!group) {
        fprintf(stderr, "stress: no loop group: %s\n", rs_error_name(rs_last_error()));
        return 2;
    }

    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = RS_SOCKET_STREAM;
    o.domain = RS_SOCKET_IPV4;
    rs_socket *listener = rs_socket_new(&o);
    rs_socket_endpoint ep;
    memset(&ep, 0, sizeof ep);
    strcpy(ep.address, "127.0.0.1");
    if (!listener || rs_socket_bind(listener, &ep) != 0 ||
        rs_socket_get_bound_address(listener, &ep) != 0 || rs_socket_listen(listener, 4096) != 0 ||
        rs_socket_start_accept(listener, rs_event_loop_group_get_loop(group, 0), on_accepted,
                               NULL) != 0) {
        fprintf(stderr, "stress: no listener: %s\n", rs_error_name(rs_last_error()));
        return 2;
    }
    track(listener);

    uint64_t started = rs__clock_now_ns();
    rs__thread closer;
    if (rs__thread_start(&closer, closer_thread, NULL, "stress closer") != 0) {
        return 2;
    }
    start_connections(&ep);

    rs__mutex_lock(&lock);
    while (conns_done < config.connections && !deadline_passed()) {
        rs__condvar_wait_ns(&cond, &lock, config.deadline_ns - rs__clock_now_ns());
    }
    long unfinished = config.connections - conns_done;
    rs__mutex_unlock(&lock);
    rs__thread_join(&closer);

    /* Tear everything down from this (foreign) thread. */
    rs_socket_destroy(listener);
    for (long i = 0; i < config.connections; i++) {
        if (conns[i].client) {
            rs_socket_destroy(conns[i].client);
        }
    }
    rs__mutex_lock(&lock);
    struct peer *list = peers;
    peers = NULL;
    rs__mutex_unlock(&lock);
    for (struct peer *p = list; p; p = p->next) {
        rs_socket_destroy(p->socket);
    }
    /* A socket's destroy callback comes after its last write completion:
     * once every socket reported its destroy, every callback owed is in. */
    long sockets = rs__atomic_load(&sockets_created);
    uint64_t settle_deadline = rs__clock_now_ns() + 30000000000ull;
    rs__mutex_lock(&lock);
    while (rs__atomic_load(&destroy_callbacks) < sockets && rs__clock_now_ns() < settle_deadline) {
        rs__condvar_wait_ns(&cond, &lock, settle_deadline - rs__clock_now_ns());
    }
    rs__mutex_unlock(&lock);
    double seconds = (double)(rs__clock_now_ns() - started) / 1e9;

    long fates[FATE_COUNT] = {0};
    long connected = 0;
    for (long i = 0; i < config.connections; i++) {
        fates[conns[i].fate]++;
        connected += conns[i].connected == 1;
    }
    long owed_writes = rs__atomic_load(&writes_issued_total);
    long got_writes = rs__atomic_load(&write_callbacks_total);
    long got_destroys = rs__atomic_load(&destroy_callbacks);
    long got_closes = rs__atomic_load(&close_callbacks);

    rs_event_loop_group_release(group);
    while (list) {
        struct peer *next = list->next;
        free(list);
        list = next;
    }
    rs_library_cleanup();
    long long leaked = (long long)rs_live_allocations();

    printf("stress: %ld connections (%ld connected, %ld accepted) on %u loops in %.1f s, seed "
           "%llu\n",
           config.connections, connected, peers_accepted, config.loops, seconds, seed);
    printf("  fates: %s %ld, %s %ld, %s %ld, %s %ld\n", fate_names[0], fates[0], fate_names[1],
           fates[1], fate_names[2], fates[2], fate_names[3], fates[3]);
    printf("  operations: %ld writes (%ld KiB written), %ld reads (%ld KiB), %ld foreign "
           "closes, %ld shutdowns\n",
           owed_writes, rs__atomic_load(&kib_written), rs__atomic_load(&reads),
           rs__atomic_load(&kib_read), rs__atomic_load(&foreign_closes),
           rs__atomic_load(&shutdowns));
    printf("  errors:");
    for (int code = 1; code < RS_ERROR_COUNT; code++) {
        long n = rs__atomic_load(&errors_by_code[code]);
        if (n) {
            printf(" %s=%ld", rs_error_name(code), n);
        }
    }
    printf("\n  callbacks (counted/expected): connect %ld/%ld, write %ld/%ld (doubled %ld), "
           "close %ld/%ld, destroy %ld/%ld\n",
           rs__atomic_load(&connect_callbacks), rs__atomic_load(&connects_started), got_writes,
           owed_writes, rs__atomic_load(&doubled_callbacks), got_closes, sockets, got_destroys,
           sockets);
    printf("  unfinished connections %ld, corrupted streams %ld, unexpected write errors %ld, "
           "leaked blocks %lld\n",
           unfinished, rs__atomic_load(&corrupt), rs__atomic_load(&unexpected_errors), leaked);

    bool ok = unfinished == 0 && got_writes == owed_writes &&
              rs__atomic_load(&connect_callbacks) == rs__atomic_load(&connects_started) &&
              rs__atomic_load(&doubled_callbacks) == 0 && got_destroys == sockets &&
              got_closes == sockets && rs__atomic_load(&corrupt) == 0 &&
              rs__atomic_load(&unexpected_errors) == 0 && leaked == 0;
    printf("stress: %s\n", ok ? "PASS" : "FAIL");
    free(conns);
    return ok ? 0 : 1;
}
