/*
 * PA9: one stream write of 4 GiB + 1 bytes completes with every byte, in
 * order, on both backends (WSASend and WriteFile take 32-bit lengths: the
 * IOCP backend sends such a write in parts). A test of its own: it moves
 * 4 GiB through loopback, too slow for the valgrind subset.
 *
 * The buffer is memory the system hands out zeroed and commits only when
 * written (VirtualAlloc, mmap): only a marker byte per MiB is written, so
 * the 4 GiB cost the test one page per MiB, and the reader checks every
 * byte (zero, or the marker its offset calls for) as it goes.
 */
#ifndef _WIN32
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#endif
#endif

#include "socket_fixture.h"

#include <stdint.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <sys/mman.h>
#endif

#define MARKER_EVERY ((uint64_t)1 << 20)

/* ThreadSanitizer checks every byte the reader compares against its shadow
 * memory: 4 GiB take minutes there and find nothing the plain, ASan and
 * Wine runs of the same scenario would not. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static unsigned char marker(uint64_t offset)
{
    return (unsigned char)((offset / MARKER_EVERY) % 251u + 1u);
}

static unsigned char *zeroed_pages(size_t size)
{
#ifdef _WIN32
    return VirtualAlloc(NULL, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
#else
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
#endif
}

static void release_pages(unsigned char *p, size_t size)
{
#ifdef _WIN32
    (void)size;
    VirtualFree(p, 0, MEM_RELEASE);
#else
    munmap(p, size);
#endif
}

struct pa9 {
    struct rs_test_counter counter;
    rs_event_loop *loop;
    rs_socket *listener;
    rs_socket *client;
    rs_socket *accepted;
    bool connected;
    int connect_result;
    long destroyed;
    /* The reader. */
    uint64_t received;
    uint64_t first_bad; /* offset of the first wrong byte, or UINT64_MAX */
    bool eof;
    int read_error;
    /* The writer. */
    bool written;
    int write_error;
    size_t write_bytes;
};

static void pa9_on_destroy(void *user_data)
{
    struct pa9 *t = user_data;
    rs_test_counter_lock(&t->counter);
    t->destroyed++;
    rs_test_counter_unlock_add(&t->counter, 1);
}

#define READ_SIZE (256u * 1024u)

static const unsigned char zeros[READ_SIZE];

/* Checks a received run of bytes against the pattern: the marker at each
 * MiB, zeros between (memcmp: the runs are long). */
static void pa9_check(struct pa9 *t, const unsigned char *buf, size_t n)
{
    uint64_t at = t->received;
    for (size_t i = 0; i < n && t->first_bad == UINT64_MAX;) {
        uint64_t offset = at + i;
        uint64_t into = offset % MARKER_EVERY;
        if (into == 0) {
            if (buf[i] != marker(offset)) {
                t->first_bad = offset;
            }
            i++;
            continue;
        }
        size_t run = n - i;
        if (run > MARKER_EVERY - into) {
            run = (size_t)(MARKER_EVERY - into);
        }
        if (memcmp(buf + i, zeros, run) != 0) {
            while (buf[i] == 0) {
                i++;
            }
            t->first_bad = at + i;
        }
        i += run;
    }
}

static void pa9_on_readable(rs_socket *s, int error_code, void *user_data)
{
    struct pa9 *t = user_data;
    static unsigned char buf[READ_SIZE];
    if (error_code) {
        rs_test_counter_lock(&t->counter);
        t->read_error = error_code;
        rs_test_counter_unlock_add(&t->counter, 1);
        return;
    }
    for (;;) {
        size_t n = 0;
        if (rs_socket_read(s, buf, sizeof buf, &n) != 0) {
            int err = rs_last_error();
            if (err != RS_ERROR_WOULD_BLOCK) {
                rs_test_counter_lock(&t->counter);
                if (err == RS_ERROR_SOCKET_CLOSED) {
                    t->eof = true;
                } else {
                    t->read_error = err;
                }
                rs_test_counter_unlock_add(&t->counter, 1);
            }
            return;
        }
        pa9_check(t, buf, n);
        rs_test_counter_lock(&t->counter);
        t->received += n;
        rs_test_counter_unlock_add(&t->counter, 1);
    }
}

static void pa9_on_accept(rs_socket *listener, int error_code, rs_socket *s, void *user_data)
{
    (void)listener;
    struct pa9 *t = user_data;
    assert_int_equal(error_code, 0);
    assert_int_equal(rs_socket_set_destroy_callback(s, pa9_on_destroy, t), 0);
    assert_int_equal(rs_socket_assign_to_event_loop(s, t->loop), 0);
    assert_int_equal(rs_socket_subscribe_to_readable_events(s, pa9_on_readable, t), 0);
    rs_test_counter_lock(&t->counter);
    t->accepted = s;
    rs_test_counter_unlock_add(&t->counter, 1);
}

static void pa9_on_connect(rs_socket *s, int error_code, void *user_data)
{
    (void)s;
    struct pa9 *t = user_data;
    rs_test_counter_lock(&t->counter);
    t->connected = true;
    t->connect_result = error_code;
    rs_test_counter_unlock_add(&t->counter, 1);
}

static void pa9_written(rs_socket *s, int error_code, size_t bytes, void *user_data)
{
    struct pa9 *t = user_data;
    rs_test_counter_lock(&t->counter);
    t->written = true;
    t->write_error = error_code;
    t->write_bytes = bytes;
    rs_test_counter_unlock_add(&t->counter, 1);
    /* The end of the stream after the last byte. */
    if (s) {
        assert_int_equal(rs_socket_shutdown(s, RS_SOCKET_DIRECTION_WRITE), 0);
    }
}

struct pa9_write {
    struct pa9 *t;
    const unsigned char *data;
    size_t len;
    int result;
};

static void pa9_write(void *arg)
{
    struct pa9_write *w = arg;
    w->result = rs_socket_write(w->t->client, w->data, w->len, pa9_written, w->t);
    if (w->result != 0) {
        w->result = rs_last_error();
    }
}

/* Waits until done holds, failing only if nothing moves for the test's
 * bound: 4 GiB take minutes under Wine on a loaded machine. */
static bool pa9_wait(struct pa9 *t, uint64_t total)
{
    rs_test_counter_lock(&t->counter);
    uint64_t seen = t->received;
    uint64_t deadline = rs__clock_now_ns() + RS_TEST_TIMEOUT_MS * 1000000ull;
    while (!(t->written && (t->received == total && t->eof)) && !t->read_error &&
           t->first_bad == UINT64_MAX && !(t->written && t->write_error)) {
        uint64_t now = rs__clock_now_ns();
        if (t->received != seen) {
            seen = t->received;
            deadline = now + RS_TEST_TIMEOUT_MS * 1000000ull;
        }
        if (now >= deadline) {
            rs_test_counter_unlock(&t->counter);
            return false;
        }
        (void)rs_test_counter_wait_change(&t->counter, deadline);
    }
    rs_test_counter_unlock(&t->counter);
    return true;
}

static void test_pa9_stream_write_over_4_gib(void **state)
{
    rs_event_loop *loop = *state;
    if (SIZE_MAX <= UINT32_MAX) {
        RS_TEST_SKIP("a 32-bit build cannot address a write of 4 GiB + 1");
        return;
    }
#ifdef UNDER_TSAN
    RS_TEST_SKIP("ThreadSanitizer: 4 GiB through its shadow memory takes minutes; the scenario "
                 "runs in the plain, ASan and Wine builds");
    return;
#endif
    const uint64_t total = ((uint64_t)1 << 32) + 1;
    size_t size = (size_t)total;
    unsigned char *data = zeroed_pages(size);
    if (!data) {
        RS_TEST_SKIP("4 GiB + 1 of address space could not be reserved");
        return;
    }
    for (uint64_t offset = 0; offset < total; offset += MARKER_EVERY) {
        data[offset] = marker(offset);
    }

    struct pa9 t;
    memset(&t, 0, sizeof t);
    rs_test_counter_init(&t.counter);
    t.loop = loop;
    t.first_bad = UINT64_MAX;
    rs_socket_options options = sk_options(RS_SOCKET_STREAM, RS_SOCKET_IPV4);
    t.listener = rs_socket_new(&options);
    assert_non_null(t.listener);
    assert_int_equal(rs_socket_set_destroy_callback(t.listener, pa9_on_destroy, &t), 0);
    rs_socket_endpoint ep = sk_loopback(RS_SOCKET_IPV4);
    assert_int_equal(rs_socket_bind(t.listener, &ep), 0);
    assert_int_equal(rs_socket_get_bound_address(t.listener, &ep), 0);
    assert_int_equal(rs_socket_listen(t.listener, 4), 0);
    assert_int_equal(rs_socket_start_accept(t.listener, loop, pa9_on_accept, &t), 0);
    t.client = rs_socket_new(&options);
    assert_non_null(t.client);
    assert_int_equal(rs_socket_set_destroy_callback(t.client, pa9_on_destroy, &t), 0);
    assert_int_equal(rs_socket_connect(t.client, &ep, loop, pa9_on_connect, &t), 0);
    SK_WAIT(&t, t.connected && t.accepted, "the connection and its accept");
    assert_int_equal(t.connect_result, 0);

    struct pa9_write w = {&t, data, size, -1};
    rs_test_run_on_loop(loop, pa9_write, &w);
    bool finished = w.result == 0 && pa9_wait(&t, total);

    assert_int_equal(rs_socket_destroy(t.client), 0);
    assert_int_equal(rs_socket_destroy(t.accepted), 0);
    assert_int_equal(rs_socket_destroy(t.listener), 0);
    SK_WAIT(&t, t.destroyed == 3, "the three destroy callbacks");
    release_pages(data, size);
    rs_test_counter_clean_up(&t.counter);

    assert_string_equal(rs_error_name(w.result), rs_error_name(0));
    if (!finished) {
        fail_msg("no progress for %llu ms: %llu of %llu bytes received",
                 (unsigned long long)RS_TEST_TIMEOUT_MS, (unsigned long long)t.received,
                 (unsigned long long)total);
    }
    if (t.first_bad != UINT64_MAX) {
        fail_msg("byte %llu is wrong", (unsigned long long)t.first_bad);
    }
    assert_string_equal(rs_error_name(t.write_error), rs_error_name(0));
    assert_string_equal(rs_error_name(t.read_error), rs_error_name(0));
    assert_true(t.write_bytes == size);
    assert_true(t.received == total);
    assert_true(t.eof);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pa9_stream_write_over_4_gib, rs_test_setup_loop,
                                        rs_test_teardown_loop),
    };
    return RS_TEST_MAIN("large_write", tests);
}
