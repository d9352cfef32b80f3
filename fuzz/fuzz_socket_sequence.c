/*
 * libFuzzer target: random sequences of socket calls on a loopback TCP
 * pair, some made on the loop thread, some from the fuzzer's own thread.
 * Each input is read as (operation, argument) byte pairs.
 *
 * Invariants checked (abort on the first broken one):
 * - every accepted write completes exactly once;
 * - after rs_socket_close returned, no readable callback of that socket
 *   starts; after rs_socket_destroy returned, no callback at all except
 *   write completions, and those get socket == NULL;
 * - every call fails, if it fails, with a code its header documents;
 * - both sockets report their destroy once and the library's block count
 *   returns to where it was;
 * - no use after free, no leak, no undefined behaviour (ASan, UBSan).
 * Every wait is bounded: a hang aborts too.
 */
#define _POSIX_C_SOURCE 200809L

#include <reseau/reseau.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define WAIT_LIMIT_S 10
#define MAX_WRITES 256
#define MAX_WRITE_LEN (256 * 1024)
/* Bytes written per input: the reader may take them one byte per read, and
 * every input must finish well within WAIT_LIMIT_S even under ASan on a
 * loaded machine (64 MiB read a byte at a time took longer than that). */
#define MAX_INPUT_BYTES (1024 * 1024)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

/* Waits on cond (lock held) until cond_expr holds, at most WAIT_LIMIT_S. */
#define WAIT_FOR(cond_expr, what)                                                                  \
    do {                                                                                           \
        struct timespec deadline_;                                                                 \
        clock_gettime(CLOCK_REALTIME, &deadline_);                                                 \
        deadline_.tv_sec += WAIT_LIMIT_S;                                                          \
        while (!(cond_expr)) {                                                                     \
            if (pthread_cond_timedwait(&cond, &lock, &deadline_) == ETIMEDOUT && !(cond_expr)) {   \
                fprintf(stderr, "timed out waiting for %s\n", (what));                             \
                abort();                                                                           \
            }                                                                                      \
        }                                                                                          \
    } while (0)

struct side {
    rs_socket *socket;
    bool destroying;     /* destroy decided: no new call may use socket */
    bool busy;           /* the fuzzer thread is inside a call on socket */
    volatile int closed; /* rs_socket_close (or destroy) returned */
    volatile int gone;   /* rs_socket_destroy returned */
    int destroy_calls;   /* the destroy callback */
    bool destroy_in_cb;  /* the next write completion destroys the socket */
    size_t read_chunk;   /* how much the readable callback reads per call */
    bool leave_data;     /* the readable callback does not drain */
};

struct write_rec {
    struct side *side;
    int calls;
};

static struct side sides[2];
static struct write_rec writes[MAX_WRITES];
static int writes_issued;
static unsigned char payload[MAX_WRITE_LEN];
static size_t bytes_issued; /* by this input's writes */

static rs_event_loop *loop;
static rs_socket *listener;
static rs_socket_endpoint server_ep;
static rs_socket *accepted;
static int connect_calls;
static int connect_result;

/* ---- callbacks ---- */

static void on_destroyed(void *user_data)
{
    struct side *s = user_data;
    pthread_mutex_lock(&lock);
    s->destroy_calls++;
    CHECK(s->destroy_calls == 1);
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* Destroys side s on the loop thread, unless the fuzzer thread is using it. */
static void destroy_on_loop(struct side *s)
{
    pthread_mutex_lock(&lock);
    bool mine = !s->destroying && !s->busy;
    if (mine) {
        s->destroying = true;
    }
    pthread_mutex_unlock(&lock);
    if (mine) {
        CHECK(rs_socket_destroy(s->socket) == 0);
        __atomic_store_n(&s->closed, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&s->gone, 1, __ATOMIC_SEQ_CST);
    }
}

static void on_written(rs_socket *socket, int error_code, size_t bytes, void *user_data)
{
    struct write_rec *w = user_data;
    struct side *s = w->side;
    CHECK(!socket || !__atomic_load_n(&s->gone, __ATOMIC_SEQ_CST));
    CHECK(!socket || socket == s->socket);
    CHECK(error_code != 0 || bytes > 0);
    pthread_mutex_lock(&lock);
    w->calls++;
    CHECK(w->calls == 1);
    pthread_cond_broadcast(&cond);
    bool destroy = socket && s->destroy_in_cb;
    pthread_mutex_unlock(&lock);
    if (destroy) {
        destroy_on_loop(s);
    }
}

static bool documented_read_error(int code)
{
    return code == RS_ERROR_WOULD_BLOCK || code == RS_ERROR_SOCKET_CLOSED ||
           code == RS_ERROR_INVALID_STATE || code == RS_ERROR_CONNECTION_RESET;
}

static void on_readable(rs_socket *socket, int error_code, void *user_data)
{
    struct side *s = user_data;
    CHECK(!__atomic_load_n(&s->closed, __ATOMIC_SEQ_CST));
    CHECK(socket == s->socket);
    if (error_code) {
        CHECK(documented_read_error(error_code));
        return;
    }
    static unsigned char buf[65536];
    size_t n;
    do {
        if (rs_socket_read(socket, buf, s->read_chunk, &n) != 0) {
            CHECK(documented_read_error(rs_last_error()));
            return;
        }
    } while (!s->leave_data);
}

static void on_connected(rs_socket *socket, int error_code, void *user_data)
{
    (void)socket;
    (void)user_data;
    pthread_mutex_lock(&lock);
    connect_calls++;
    connect_result = error_code;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void on_accepted(rs_socket *l, int error_code, rs_socket *new_socket, void *user_data)
{
    (void)l;
    (void)user_data;
    CHECK(error_code == 0);
    CHECK(rs_socket_assign_to_event_loop(new_socket, loop) == 0);
    pthread_mutex_lock(&lock);
    CHECK(!accepted);
    accepted = new_socket;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* ---- running on the loop thread ---- */

struct loop_call {
    rs_task task;
    void (*fn)(struct side *s, uint8_t arg);
    struct side *side;
    uint8_t arg;
    bool done;
};

static void loop_call_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct loop_call *c = arg;
    if (status == RS_TASK_STATUS_RUN) {
        pthread_mutex_lock(&lock);
        bool usable = !c->side || !c->side->destroying;
        pthread_mutex_unlock(&lock);
        if (usable) {
            c->fn(c->side, c->arg);
        }
    }
    pthread_mutex_lock(&lock);
    c->done = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static void on_loop(void (*fn)(struct side *s, uint8_t arg), struct side *s, uint8_t arg)
{
    struct loop_call c = {.fn = fn, .side = s, .arg = arg};
    rs_task_init(&c.task, loop_call_task, &c, "fuzz call");
    CHECK(rs_event_loop_schedule_now(loop, &c.task) == 0);
    pthread_mutex_lock(&lock);
    WAIT_FOR(c.done, "a call on the loop thread");
    pthread_mutex_unlock(&lock);
}

/* ---- operations ---- */

static void op_write(struct side *s, uint8_t arg)
{
    if (writes_issued == MAX_WRITES) {
        return;
    }
    size_t len = 1 + ((size_t)arg * arg * 4099) % MAX_WRITE_LEN;
    if (bytes_issued + len > MAX_INPUT_BYTES) {
        return;
    }
    struct write_rec *w = &writes[writes_issued];
    w->side = s;
    w->calls = 0;
    if (rs_socket_write(s->socket, payload, len, on_written, w) == 0) {
        writes_issued++;
        bytes_issued += len;
    } else {
        CHECK(rs_last_error() == RS_ERROR_INVALID_STATE);
    }
}

static void op_read(struct side *s, uint8_t arg)
{
    static unsigned char buf[256];
    size_t n;
    if (rs_socket_read(s->socket, buf, 1 + arg % sizeof buf, &n) != 0) {
        CHECK(documented_read_error(rs_last_error()));
    }
}

static void op_subscribe(struct side *s, uint8_t arg)
{
    s->read_chunk = 1 + (size_t)arg * 256;
    s->leave_data = arg & 1;
    if (rs_socket_subscribe_to_readable_events(s->socket, on_readable, s) != 0) {
        CHECK(rs_last_error() == RS_ERROR_INVALID_STATE);
    }
}

static void op_shutdown(struct side *s, uint8_t arg)
{
    if (rs_socket_shutdown(s->socket, (rs_socket_direction)(1 + arg % 3)) != 0) {
        CHECK(rs_last_error() == RS_ERROR_NOT_CONNECTED);
    }
}

static void op_close(struct side *s, uint8_t arg)
{
    (void)arg;
    CHECK(rs_socket_close(s->socket) == 0);
    CHECK(!rs_socket_is_open(s->socket));
    __atomic_store_n(&s->closed, 1, __ATOMIC_SEQ_CST);
}

static void op_destroy(struct side *s, uint8_t arg)
{
    (void)arg;
    destroy_on_loop(s);
}

/* Loop-thread-only calls made from this thread fail and change nothing. */
static void op_wrong_thread(struct side *s, uint8_t arg)
{
    unsigned char buf[16];
    size_t n;
    int rc;
    switch (arg % 3) {
    case 0:
        rc = rs_socket_write(s->socket, payload, 1, on_written, &writes[0]);
        break;
    case 1:
        rc = rs_socket_read(s->socket, buf, sizeof buf, &n);
        break;
    default:
        rc = rs_socket_subscribe_to_readable_events(s->socket, on_readable, s);
        break;
    }
    CHECK(rc == -1 && rs_last_error() == RS_ERROR_WRONG_THREAD);
}

/* Runs fn on this (the fuzzer's) thread, unless the side is being destroyed. */
static void from_here(void (*fn)(struct side *s, uint8_t arg), struct side *s, uint8_t arg)
{
    pthread_mutex_lock(&lock);
    bool usable = !s->destroying;
    if (usable) {
        s->busy = true;
    }
    pthread_mutex_unlock(&lock);
    if (!usable) {
        return;
    }
    fn(s, arg);
    pthread_mutex_lock(&lock);
    s->busy = false;
    pthread_mutex_unlock(&lock);
}

static void destroy_here(struct side *s)
{
    pthread_mutex_lock(&lock);
    bool mine = !s->destroying;
    s->destroying = true;
    pthread_mutex_unlock(&lock);
    if (mine) {
        CHECK(rs_socket_destroy(s->socket) == 0);
        __atomic_store_n(&s->closed, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&s->gone, 1, __ATOMIC_SEQ_CST);
    }
}

static void nothing(struct side *s, uint8_t arg)
{
    (void)s;
    (void)arg;
}

/* ---- set-up ---- */

static void set_up_once(void)
{
    CHECK(rs_library_init() == 0);
    loop = rs_event_loop_new(NULL);
    CHECK(loop && rs_event_loop_run(loop) == 0);
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (unsigned char)(i * 131);
    }
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = RS_SOCKET_STREAM;
    o.domain = RS_SOCKET_IPV4;
    listener = rs_socket_new(&o);
    CHECK(listener);
    rs_socket_endpoint ep;
    memset(&ep, 0, sizeof ep);
    strcpy(ep.address, "127.0.0.1");
    CHECK(rs_socket_bind(listener, &ep) == 0);
    CHECK(rs_socket_get_bound_address(listener, &server_ep) == 0);
    CHECK(rs_socket_listen(listener, 64) == 0);
    CHECK(rs_socket_start_accept(listener, loop, on_accepted, NULL) == 0);
}

static void connect_pair(void)
{
    rs_socket_options o;
    memset(&o, 0, sizeof o);
    o.type = RS_SOCKET_STREAM;
    o.domain = RS_SOCKET_IPV4;
    rs_socket *client = rs_socket_new(&o);
    CHECK(client);
    pthread_mutex_lock(&lock);
    memset(sides, 0, sizeof sides);
    accepted = NULL;
    connect_calls = 0;
    writes_issued = 0;
    bytes_issued = 0;
    pthread_mutex_unlock(&lock);
    CHECK(rs_socket_connect(client, &server_ep, loop, on_connected, NULL) == 0);
    pthread_mutex_lock(&lock);
    WAIT_FOR(connect_calls == 1 && accepted, "the connection");
    CHECK(connect_result == 0);
    sides[0].socket = client;
    sides[1].socket = accepted;
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 2; i++) {
        sides[i].read_chunk = 4096;
        CHECK(rs_socket_set_destroy_callback(sides[i].socket, on_destroyed, &sides[i]) == 0);
    }
}

static bool all_settled(void)
{
    for (int i = 0; i < writes_issued; i++) {
        if (writes[i].calls != 1) {
            return false;
        }
    }
    return sides[0].destroy_calls == 1 && sides[1].destroy_calls == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        set_up_once();
        ready = true;
    }
    int64_t live = rs_live_allocations();
    connect_pair();

    for (size_t i = 0; i + 1 < size; i += 2) {
        uint8_t op = data[i];
        uint8_t arg = data[i + 1];
        struct side *s = &sides[op & 1];
        switch ((op >> 1) % 9) {
        case 0:
            on_loop(op_write, s, arg);
            break;
        case 1:
            on_loop(op_read, s, arg);
            break;
        case 2:
            on_loop(op_subscribe, s, arg);
            break;
        case 3:
            on_loop(op_shutdown, s, arg);
            break;
        case 4:
            if (arg & 1) {
                on_loop(op_close, s, arg);
            } else {
                from_here(op_close, s, arg);
            }
            break;
        case 5:
            if (arg & 1) {
                on_loop(op_destroy, s, arg);
            } else {
                destroy_here(s);
            }
            break;
        case 6:
            from_here(op_wrong_thread, s, arg);
            break;
        case 7:
            pthread_mutex_lock(&lock);
            s->destroy_in_cb = arg & 1;
            pthread_mutex_unlock(&lock);
            break;
        default:
            on_loop(nothing, NULL, arg);
            break;
        }
    }

    destroy_here(&sides[0]);
    destroy_here(&sides[1]);
    pthread_mutex_lock(&lock);
    WAIT_FOR(all_settled(), "every write completion and destroy callback");
    pthread_mutex_unlock(&lock);
    CHECK(rs_live_allocations() == live);
    return 0;
}
