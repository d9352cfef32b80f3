/* The pipe tests' harness (pipe_harness.h). */
#include "pipe_harness.h"

#include <stdlib.h>
#include <string.h>

/* ---- fixture: one or two running loops ---- */

static int setup_loops(void **state, size_t count)
{
    if (rs_library_init() != 0) {
        return -1;
    }
    struct pipe_fixture *f = calloc(1, sizeof *f);
    if (!f) {
        return -1;
    }
    f->count = count;
    for (size_t i = 0; i < count; i++) {
        f->loops[i] = rs_event_loop_new(NULL);
        if (!f->loops[i] || rs_event_loop_run(f->loops[i]) != 0) {
            return -1;
        }
    }
    f->read_loop = f->loops[0];
    f->write_loop = f->loops[count - 1];
    *state = f;
    return 0;
}

int pt_setup_one_loop(void **state)
{
    return setup_loops(state, 1);
}

int pt_setup_two_loops(void **state)
{
    return setup_loops(state, 2);
}

int pt_teardown_loops(void **state)
{
    struct pipe_fixture *f = *state;
    for (size_t i = 0; i < f->count; i++) {
        if (rs_event_loop_destroy(f->loops[i]) != 0) {
            return -1;
        }
    }
    free(f);
    return rs_test_teardown_library(state);
}

/* ---- one pipe under test, and what its callbacks saw ---- */

void pt_lock(struct pipe_test *t)
{
    rs_test_counter_lock(&t->counter);
}

void pt_unlock_signal(struct pipe_test *t)
{
    rs_test_counter_unlock_add(&t->counter, 1);
}

/* Marks the calling (loop) thread as inside a reseau call, so that a
 * callback run from inside that call is noticed. */
void pt_set_inside(struct pipe_test *t, bool inside)
{
    pt_lock(t);
    t->inside_thread = inside ? rs__thread_current_id() : 0;
    pt_unlock_signal(t);
}

/* Lock held. */
static void note_inside(struct pipe_test *t)
{
    if (t->inside_thread == rs__thread_current_id()) {
        t->called_inside = true;
    }
}

static bool release_after_failure(void *obj);

struct pipe_test *pt_new(struct pipe_fixture *f)
{
    struct pipe_test *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->f = f;
    t->chunk = 64 * 1024;
    t->max_reads = 1000000;
    rs_test_counter_init(&t->counter);
    rs_test_own(t, release_after_failure, NULL);
    return t;
}

void pt_open(struct pipe_test *t)
{
    assert_int_equal(rs_pipe_new(t->f->read_loop, &t->r, t->f->write_loop, &t->w), 0);
    assert_non_null(t->r);
    assert_non_null(t->w);
}

static void release(struct pipe_test *t)
{
    rs_test_counter_clean_up(&t->counter);
    free(t);
}

int pt_clean_up_read(struct pipe_test *t)
{
    pt_lock(t);
    t->read_closing = true;
    rs_pipe_read_end *r = t->r;
    pt_unlock_signal(t);
    return rs_pipe_clean_up_read_end(r, pt_on_read_clean_up, t);
}

int pt_clean_up_write(struct pipe_test *t)
{
    pt_lock(t);
    t->write_closing = true;
    rs_pipe_write_end *w = t->w;
    pt_unlock_signal(t);
    return rs_pipe_clean_up_write_end(w, pt_on_write_clean_up, t);
}

/*
 * The test failed, timed out or skipped with the pipe open (test thread, in
 * the harness's teardown, loops still running): cleans up the ends nobody
 * asked to clean up, waits until both clean-ups called back, and only then
 * frees t, the last thing the ends' callbacks could touch. If a clean-up
 * does not come, t is left allocated: a leak is reported, a write into
 * freed memory would not be.
 */
static bool release_after_failure(void *obj)
{
    struct pipe_test *t = obj;
    pt_lock(t);
    bool close_read = t->r && !t->read_closing;
    bool close_write = t->w && !t->write_closing;
    long read_expected = (t->read_closing || close_read) ? 1 : 0;
    long write_expected = (t->write_closing || close_write) ? 1 : 0;
    pt_unlock_signal(t);
    if (close_read && pt_clean_up_read(t) != 0) {
        return false;
    }
    if (close_write && pt_clean_up_write(t) != 0) {
        return false;
    }
    uint64_t deadline = rs__clock_now_ns() + RS_TEST_TIMEOUT_MS * 1000000ull;
    pt_lock(t);
    while (t->read_clean_ups < read_expected || t->write_clean_ups < write_expected) {
        uint64_t now = rs__clock_now_ns();
        if (now >= deadline) {
            pt_unlock_signal(t);
            print_error("harness: a pipe end of the failed test was not cleaned up\n");
            return false;
        }
        (void)rs_test_counter_wait_change(&t->counter, deadline);
    }
    pt_unlock_signal(t);
    release(t);
    return true;
}

static void noop(void *arg)
{
    (void)arg;
}

/* Lets every loop finish two iterations, so that an event that was going to
 * follow what already happened has happened. */
void pt_settle(struct pipe_test *t)
{
    for (int i = 0; i < 2; i++) {
        rs_test_run_on_loop(t->f->read_loop, noop, NULL);
        rs_test_run_on_loop(t->f->write_loop, noop, NULL);
    }
}

static unsigned char pattern(size_t i, unsigned seed)
{
    uint32_t x = (uint32_t)i * 2654435761u ^ (seed * 0x9e3779b9u);
    x ^= x >> 15;
    return (unsigned char)(x ^ (uint32_t)(i >> 13));
}

unsigned char *pt_make_data(size_t len, unsigned seed)
{
    unsigned char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++) {
        data[i] = pattern(i, seed);
    }
    return data;
}

/* ---- reader ---- */

/* Loop thread, lock held. */
static void take_bytes(struct pipe_test *t, const unsigned char *buf, size_t n)
{
    if (t->received + n > t->expect_len || memcmp(t->expect + t->received, buf, n) != 0) {
        t->mismatch = true;
    }
    t->received += n;
}

/* Reads what is there (loop thread). Returns false once the stream ended. */
bool pt_drain(struct pipe_test *t, int max_reads)
{
    unsigned char *buf = malloc(t->chunk);
    bool open = true;
    for (int i = 0; i < max_reads; i++) {
        size_t n = 0;
        if (rs_pipe_read(t->r, buf, t->chunk, &n) != 0) {
            int error = rs_last_error();
            open = error != RS_ERROR_BROKEN_PIPE;
            if (open && error != RS_ERROR_WOULD_BLOCK) {
                pt_lock(t);
                t->mismatch = true;
                pt_unlock_signal(t);
            }
            break;
        }
        pt_lock(t);
        take_bytes(t, buf, n);
        pt_unlock_signal(t);
    }
    free(buf);
    return open;
}

void pt_on_readable(rs_pipe_read_end *read_end, int error_code, void *user_data)
{
    struct pipe_test *t = user_data;
    pt_lock(t);
    if (read_end != t->r || !rs_event_loop_is_on_thread(t->f->read_loop)) {
        t->off_thread = true;
    }
    note_inside(t);
    if (error_code == 0) {
        t->readable_calls++;
    } else {
        if (t->error_calls++ == 0) {
            t->first_error = error_code;
            t->received_at_error = t->received;
            t->readable_calls_at_error = t->readable_calls;
        }
    }
    enum read_mode mode = t->mode;
    pt_unlock_signal(t);
    if (error_code == 0 && mode == READ_DRAIN) {
        pt_drain(t, t->max_reads);
    }
    if (mode == READ_CLEAN_UP) {
        pt_clean_up_read(t);
    }
}

void pt_subscribe_on_loop(void *arg)
{
    struct pipe_test *t = arg;
    pt_set_inside(t, true);
    assert_int_equal(rs_pipe_subscribe_to_readable_events(t->r, pt_on_readable, t), 0);
    pt_set_inside(t, false);
}

void pt_subscribe(struct pipe_test *t, enum read_mode mode)
{
    pt_lock(t);
    t->mode = mode;
    pt_unlock_signal(t);
    rs_test_run_on_loop(t->f->read_loop, pt_subscribe_on_loop, t);
}

void pt_unsubscribe_on_loop(void *arg)
{
    struct pipe_test *t = arg;
    assert_int_equal(rs_pipe_unsubscribe_from_readable_events(t->r), 0);
}

void pt_drain_on_loop(void *arg)
{
    pt_drain(arg, 1000000);
}

/* ---- writer ---- */

void pt_on_write_done(rs_pipe_write_end *write_end, int error_code, size_t bytes_written,
                      void *user_data)
{
    struct write_rec *rec = user_data;
    struct pipe_test *t = rec->t;
    pt_lock(t);
    rec->calls++;
    rec->error = error_code;
    rec->bytes = bytes_written;
    rec->end_null = write_end == NULL;
    rec->off_thread =
        !rs_event_loop_is_on_thread(t->f->write_loop) || (write_end != NULL && write_end != t->w);
    note_inside(t);
    rec->order = (int)t->write_calls++;
    bool clean_up = rec->clean_up_here;
    pt_unlock_signal(t);
    if (clean_up) {
        pt_clean_up_write(t);
    }
}

struct write_batch {
    struct pipe_test *t;
    const unsigned char *data;
    size_t len;
    int count; /* writes of len / count bytes each */
};

static void write_on_loop(void *arg)
{
    struct write_batch *b = arg;
    struct pipe_test *t = b->t;
    size_t each = b->len / (size_t)b->count;
    pt_set_inside(t, true);
    for (int i = 0; i < b->count; i++) {
        pt_lock(t);
        struct write_rec *rec = &t->writes[t->write_count++];
        pt_unlock_signal(t);
        rec->t = t;
        rec->data = b->data + (size_t)i * each;
        rec->len = each;
        assert_int_equal(rs_pipe_write(t->w, rec->data, rec->len, pt_on_write_done, rec), 0);
    }
    pt_set_inside(t, false);
}

/* Queues `count` writes that together send data[0, len), in one loop task. */
void pt_write(struct pipe_test *t, const unsigned char *data, size_t len, int count)
{
    struct write_batch b = {t, data, len, count};
    rs_test_run_on_loop(t->f->write_loop, write_on_loop, &b);
}

void pt_assert_writes_succeeded(struct pipe_test *t)
{
    for (int i = 0; i < t->write_count; i++) {
        assert_int_equal(t->writes[i].calls, 1);
        assert_int_equal(t->writes[i].error, 0);
        assert_int_equal(t->writes[i].bytes, t->writes[i].len);
        assert_false(t->writes[i].end_null);
        assert_false(t->writes[i].off_thread);
        assert_int_equal(t->writes[i].order, i);
    }
}

/* ---- clean-up ---- */

void pt_on_read_clean_up(void *user_data)
{
    struct pipe_test *t = user_data;
    pt_lock(t);
    t->read_clean_ups++;
    t->clean_up_off_thread |= !rs_event_loop_is_on_thread(t->f->read_loop);
    note_inside(t);
    pt_unlock_signal(t);
}

void pt_on_write_clean_up(void *user_data)
{
    struct pipe_test *t = user_data;
    pt_lock(t);
    t->write_clean_ups++;
    t->write_calls_at_clean_up = t->write_calls;
    t->clean_up_off_thread |= !rs_event_loop_is_on_thread(t->f->write_loop);
    note_inside(t);
    pt_unlock_signal(t);
}

/* From this (foreign) thread: returns when the loop has closed the end. */
void pt_close_write(struct pipe_test *t)
{
    assert_int_equal(pt_clean_up_write(t), 0);
    pt_await(t, t->write_clean_ups == 1, "the write end's clean-up");
    t->w = NULL;
}

void pt_close_read(struct pipe_test *t)
{
    assert_int_equal(pt_clean_up_read(t), 0);
    pt_await(t, t->read_clean_ups == 1, "the read end's clean-up");
    t->r = NULL;
}

void pt_close_all(struct pipe_test *t)
{
    if (t->r) {
        pt_close_read(t);
    }
    if (t->w) {
        pt_close_write(t);
    }
    pt_settle(t);
    assert_int_equal(t->read_clean_ups, 1);
    assert_int_equal(t->write_clean_ups, 1);
    assert_false(t->clean_up_off_thread);
    assert_false(t->off_thread);
    assert_false(t->called_inside);
    rs_test_disown(t);
    release(t);
}

struct read_result {
    struct pipe_test *t;
    int rc;
    int error;
};

static void read_once_on_loop(void *arg)
{
    struct read_result *res = arg;
    unsigned char buf[16];
    size_t n = 0;
    res->rc = rs_pipe_read(res->t->r, buf, sizeof buf, &n);
    res->error = res->rc == 0 ? 0 : rs_last_error();
}

void pt_assert_read_fails_with(struct pipe_test *t, int code)
{
    struct read_result res = {t, 0, 0};
    rs_test_run_on_loop(t->f->read_loop, read_once_on_loop, &res);
    assert_int_equal(res.rc, -1);
    assert_string_equal(rs_error_name(res.error), rs_error_name(code));
}
