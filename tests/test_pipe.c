/*
 * Pipe scenarios PI1-PI13 (test-scenarios.md). PI1-PI12 run twice: with both
 * ends on one loop, and with the read end and the write end on two loops.
 * The plumbing (fixture, recording callbacks, bounded waits) is in
 * pipe_harness.c.
 */
#include "pipe_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if RS_TEST_IOCP
#include "../backends/iocp/iocp_backend.h"
#else
#include <signal.h>
#endif

/* ---- PI1 ---- */

static void clean_up_both_on_loop(void *arg)
{
    struct pipe_test *t = arg;
    pt_set_inside(t, true);
    if (rs_event_loop_is_on_thread(t->f->read_loop)) {
        assert_int_equal(pt_clean_up_read(t), 0);
    }
    if (rs_event_loop_is_on_thread(t->f->write_loop)) {
        assert_int_equal(pt_clean_up_write(t), 0);
    }
    pt_set_inside(t, false);
}

static void clean_up_read_on_loop(void *arg)
{
    struct pipe_test *t = arg;
    assert_int_equal(pt_clean_up_read(t), 0);
}

static void clean_up_write_on_loop(void *arg)
{
    struct pipe_test *t = arg;
    assert_int_equal(pt_clean_up_write(t), 0);
}

static void pi1_open_close(struct pipe_fixture *f)
{
    /* From a foreign thread: each call returns once its loop closed the end. */
    struct pipe_test *t = pt_new(f);
    pt_open(t);
    assert_ptr_equal(rs_pipe_read_end_loop(t->r), f->read_loop);
    assert_ptr_equal(rs_pipe_write_end_loop(t->w), f->write_loop);
    pt_close_all(t);

    /* On the ends' own loop threads: on_complete comes later, from the loop. */
    t = pt_new(f);
    pt_open(t);
    rs_test_run_on_loop(f->read_loop, clean_up_both_on_loop, t);
    if (f->write_loop != f->read_loop) {
        rs_test_run_on_loop(f->write_loop, clean_up_both_on_loop, t);
    }
    pt_await(t, t->read_clean_ups == 1 && t->write_clean_ups == 1, "both clean-ups");
    t->r = NULL;
    t->w = NULL;
    pt_close_all(t);

    /* From the other end's loop thread (with two loops: another loop's
     * thread, which must not wait). */
    t = pt_new(f);
    pt_open(t);
    rs_test_run_on_loop(f->write_loop, clean_up_read_on_loop, t);
    rs_test_run_on_loop(f->read_loop, clean_up_write_on_loop, t);
    pt_await(t, t->read_clean_ups == 1 && t->write_clean_ups == 1, "both clean-ups");
    t->r = NULL;
    t->w = NULL;
    pt_close_all(t);
}

/* ---- PI2 ---- */

static void pi2_small_write_and_read(struct pipe_fixture *f)
{
    static const unsigned char hello[] = "hello, pipe";
    struct pipe_test *t = pt_new(f);
    t->expect = hello;
    t->expect_len = sizeof hello;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    pt_write(t, hello, sizeof hello, 1);
    pt_await(t, t->write_calls == 1 && t->received == sizeof hello, "the write and the read");
    pt_settle(t);
    pt_assert_writes_succeeded(t);
    assert_false(t->mismatch);
    assert_int_equal(t->received, sizeof hello);
    assert_int_equal(t->readable_calls, 1);
    assert_int_equal(t->error_calls, 0);
    pt_close_all(t);
}

/* ---- PI3 ---- */

static void pi3_large_write_and_read(struct pipe_fixture *f)
{
    size_t len = 32u << 20;
    unsigned char *data = pt_make_data(len, 3);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = len;
    /* Reads smaller than the writes, and a few per callback: the
     * filled-buffer rule brings the next callback. */
    t->chunk = 24 * 1024;
    t->max_reads = 3;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    pt_write(t, data, len, 1);
    pt_await(t, t->write_calls == 1 && t->received == len, "32 MiB through the pipe");
    pt_assert_writes_succeeded(t);
    assert_false(t->mismatch);
    assert_int_equal(t->error_calls, 0);
    pt_close_all(t);
    free(data);
}

/* ---- PI4 ---- */

static void pi4_one_readable_event_after_write(struct pipe_fixture *f)
{
    unsigned char *data = pt_make_data(100, 4);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = 100;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    pt_settle(t);
    assert_int_equal(t->readable_calls, 0); /* nothing written yet */
    pt_write(t, data, 100, 1);
    pt_await(t, t->received == 100, "the data");
    pt_settle(t);
    assert_int_equal(t->readable_calls, 1);
    assert_false(t->mismatch);
    pt_close_all(t);
    free(data);
}

/* ---- PI5 ---- */

static void pi5_readable_sent_once_until_drained(struct pipe_fixture *f)
{
    unsigned char *data = pt_make_data(30, 5);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = 30;
    pt_open(t);
    pt_subscribe(t, READ_NOTHING);
    pt_write(t, data, 10, 1);
    pt_await(t, t->readable_calls == 1, "the first readable event");
    /* More data while the first is unread: no second event. */
    pt_write(t, data + 10, 10, 1);
    pt_await(t, t->write_calls == 2, "the second write");
    pt_settle(t);
    assert_int_equal(t->readable_calls, 1);

    /* Drained: the next data brings an event again. */
    pt_lock(t);
    t->mode = READ_DRAIN;
    pt_unlock_signal(t);
    rs_test_run_on_loop(f->read_loop, pt_drain_on_loop, t);
    pt_await(t, t->received == 20, "the first 20 bytes");
    long before = t->readable_calls;
    pt_write(t, data + 20, 10, 1);
    pt_await(t, t->received == 30, "the last 10 bytes");
    assert_true(t->readable_calls > before);
    assert_false(t->mismatch);
    pt_close_all(t);
    free(data);
}

/* ---- PI6 ---- */

static void pi6_readable_on_subscribe_if_data_present(struct pipe_fixture *f)
{
    unsigned char *data = pt_make_data(10, 6);
    struct pipe_test *t = pt_new(f);
    pt_open(t);
    pt_write(t, data, 10, 1);
    pt_await(t, t->write_calls == 1, "the write");
    pt_settle(t);
    pt_subscribe(t, READ_NOTHING);
    pt_await(t, t->readable_calls == 1, "the readable event after subscribing");
    pt_settle(t);
    assert_int_equal(t->readable_calls, 1);
    assert_false(t->called_inside); /* not inside the subscribe call */
    pt_close_all(t);
    free(data);
}

/* ---- PI7 ---- */

static void resubscribe_on_loop(void *arg)
{
    struct pipe_test *t = arg;
    assert_int_equal(rs_pipe_unsubscribe_from_readable_events(t->r), 0);
    pt_set_inside(t, true);
    assert_int_equal(rs_pipe_subscribe_to_readable_events(t->r, pt_on_readable, t), 0);
    pt_set_inside(t, false);
}

static void pi7_readable_on_resubscribe_if_data_present(struct pipe_fixture *f)
{
    unsigned char *data = pt_make_data(20, 7);
    struct pipe_test *t = pt_new(f);
    pt_open(t);
    pt_write(t, data, 10, 1);
    pt_subscribe(t, READ_NOTHING);
    pt_await(t, t->readable_calls == 1, "the first readable event");
    rs_test_run_on_loop(f->read_loop, resubscribe_on_loop, t);
    pt_await(t, t->readable_calls == 2, "the event after resubscribing");
    pt_settle(t);
    assert_int_equal(t->readable_calls, 2);

    /* Unsubscribed: new data brings no event; subscribing again does. */
    rs_test_run_on_loop(f->read_loop, pt_unsubscribe_on_loop, t);
    pt_write(t, data + 10, 10, 1);
    pt_await(t, t->write_calls == 2, "the second write");
    pt_settle(t);
    assert_int_equal(t->readable_calls, 2);
    rs_test_run_on_loop(f->read_loop, pt_subscribe_on_loop, t);
    pt_await(t, t->readable_calls == 3, "the event after subscribing again");
    pt_settle(t);
    assert_int_equal(t->readable_calls, 3);
    pt_close_all(t);
    free(data);
}

/* ---- PI8 ---- */

static void pi8_readable_again_after_drain_and_more_data(struct pipe_fixture *f)
{
    unsigned char *data = pt_make_data(300, 8);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = 300;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    pt_write(t, data, 100, 1);
    pt_await(t, t->received == 100, "the first 100 bytes");
    pt_settle(t);
    assert_int_equal(t->readable_calls, 1);
    pt_write(t, data + 100, 200, 1);
    pt_await(t, t->received == 300, "the next 200 bytes");
    pt_settle(t);
    assert_int_equal(t->readable_calls, 2);
    assert_false(t->mismatch);
    pt_close_all(t);
    free(data);
}

/* ---- PI9 ---- */

static void pi9_broken_pipe_after_write_end_closed(struct pipe_fixture *f)
{
    unsigned char *data = pt_make_data(1000, 9);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = 1000;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    pt_write(t, data, 1000, 1);
    pt_await(t, t->write_calls == 1, "the write");
    pt_close_write(t);
    pt_await(t, t->error_calls == 1, "the BROKEN_PIPE event");
    pt_settle(t);
    assert_int_equal(t->error_calls, 1);
    assert_string_equal(rs_error_name(t->first_error), rs_error_name(RS_ERROR_BROKEN_PIPE));
    assert_int_equal(t->received_at_error, 1000); /* nothing written before the close is lost */
    assert_true(t->readable_calls_at_error >= 1); /* the data had its event first */
    assert_int_equal(t->received, 1000);
    assert_false(t->mismatch);
    pt_assert_writes_succeeded(t);
    pt_assert_read_fails_with(t, RS_ERROR_BROKEN_PIPE);
    pt_close_all(t);
    free(data);
}

/* ---- PI10 ---- */

static void pi10_broken_pipe_on_subscribe_if_write_end_closed(struct pipe_fixture *f)
{
    struct pipe_test *t = pt_new(f);
    pt_open(t);
    pt_close_write(t);
    pt_subscribe(t, READ_DRAIN);
    pt_await(t, t->error_calls == 1, "the BROKEN_PIPE event");
    pt_settle(t);
    assert_int_equal(t->error_calls, 1);
    assert_int_equal(t->readable_calls, 0);
    assert_string_equal(rs_error_name(t->first_error), rs_error_name(RS_ERROR_BROKEN_PIPE));
    pt_assert_read_fails_with(t, RS_ERROR_BROKEN_PIPE);
    pt_close_all(t);
}

/* ---- PI11 ---- */

static void pi11_writes_are_fifo(struct pipe_fixture *f)
{
    size_t len = 32u << 20;
    unsigned char *data = pt_make_data(len, 11);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = len;
    pt_open(t);
    pt_subscribe(t, READ_DRAIN);
    pt_write(t, data, len, 8);
    pt_await(t, t->write_calls == 8 && t->received == len, "8 x 4 MiB through the pipe");
    assert_int_equal(t->write_count, 8);
    pt_assert_writes_succeeded(t); /* each once, in submission order */
    assert_false(t->mismatch);     /* the bytes in submission order */
    pt_close_all(t);
    free(data);
}

/* ---- PI12 ---- */

static void pi12_clean_up_cancels_pending_writes(struct pipe_fixture *f)
{
    size_t len = 4u << 20;
    unsigned char *data = pt_make_data(len, 12);
    struct pipe_test *t = pt_new(f);
    t->expect = data;
    t->expect_len = len;
    pt_open(t);
    /* Nobody reads: the pipe fills and the writes stay pending. */
    pt_write(t, data, len, 4);
    pt_close_write(t);
    pt_await(t, t->write_calls == 4, "the cancelled writes' callbacks");
    pt_settle(t);
    assert_int_equal(t->write_calls_at_clean_up, 4); /* on_complete came after them */
    size_t delivered = 0;
    for (int i = 0; i < 4; i++) {
        struct write_rec *w = &t->writes[i];
        assert_int_equal(w->calls, 1);
        assert_true(w->end_null);
        assert_false(w->off_thread);
        assert_int_equal(w->order, i);
        assert_true(w->bytes <= w->len);
        if (w->error == 0) {
            assert_int_equal(w->bytes, w->len);
            delivered += w->bytes;
        } else {
            assert_string_equal(rs_error_name(w->error), rs_error_name(RS_ERROR_BROKEN_PIPE));
        }
    }
    assert_int_not_equal(t->writes[3].error, 0);

    /* The reader gets a prefix of the data, at least every completed write,
     * then the end of the stream. */
    t->expect_len = len;
    pt_subscribe(t, READ_DRAIN);
    pt_await(t, t->error_calls == 1, "the BROKEN_PIPE event");
    assert_false(t->mismatch);
    assert_true(t->received >= delivered);
    pt_close_all(t);
    free(data);
}

/* ---- the scenarios, with one loop and with two ---- */

#define PI_TEST(body)                                                                              \
    static void test_##body##_one_loop(void **state)                                               \
    {                                                                                              \
        body(*state);                                                                              \
    }                                                                                              \
    static void test_##body##_two_loops(void **state)                                              \
    {                                                                                              \
        body(*state);                                                                              \
    }

PI_TEST(pi1_open_close)
PI_TEST(pi2_small_write_and_read)
PI_TEST(pi3_large_write_and_read)
PI_TEST(pi4_one_readable_event_after_write)
PI_TEST(pi5_readable_sent_once_until_drained)
PI_TEST(pi6_readable_on_subscribe_if_data_present)
PI_TEST(pi7_readable_on_resubscribe_if_data_present)
PI_TEST(pi8_readable_again_after_drain_and_more_data)
PI_TEST(pi9_broken_pipe_after_write_end_closed)
PI_TEST(pi10_broken_pipe_on_subscribe_if_write_end_closed)
PI_TEST(pi11_writes_are_fifo)
PI_TEST(pi12_clean_up_cancels_pending_writes)

/* ---- the library must be initialised ---- */

static void test_pipe_new_needs_library_init(void **state)
{
    (void)state;
    rs_pipe_read_end *r = NULL;
    rs_pipe_write_end *w = NULL;
    int not_a_loop = 0;
    rs_event_loop *fake = (rs_event_loop *)(void *)&not_a_loop;
    assert_fails_with(rs_pipe_new(fake, &r, fake, &w), RS_ERROR_LIBRARY_NOT_INITIALIZED);
    assert_null(r);
    assert_null(w);
}

/* ---- PI13 ---- */

#if RS_TEST_IOCP
enum { NAME_THREADS = 4, NAMES_PER_THREAD = 2000 };

struct name_batch {
    char (*names)[RS_PIPE_NAME_MAX];
    int failures;
};

static void make_names(void *arg)
{
    struct name_batch *b = arg;
    for (int i = 0; i < NAMES_PER_THREAD; i++) {
        if (rs_pipe_unique_name(b->names[i], RS_PIPE_NAME_MAX) != 0) {
            b->failures++;
        }
    }
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* "\\.\pipe\reseau-<pid>-<thread>-<counter>-<random>" */
static void assert_name_format(const char *name, uint64_t thread)
{
    static const char prefix[] = "\\\\.\\pipe\\reseau-";
    assert_true(strlen(name) < RS_PIPE_NAME_MAX);
    assert_memory_equal(name, prefix, sizeof prefix - 1);
    unsigned long pid = 0, counter = 0;
    unsigned long long tid = 0, salt = 0;
    int used = 0;
    assert_int_equal(sscanf(name + sizeof prefix - 1, "%lu-%llx-%lu-%16llx%n", &pid, &tid, &counter,
                            &salt, &used),
                     4);
    assert_int_equal(name[sizeof prefix - 1 + (size_t)used], '\0');
    assert_int_equal(pid, GetCurrentProcessId());
    assert_int_equal(tid, thread);
}

static void on_done_signal(void *user_data)
{
    rs_test_latch_signal(user_data);
}

static void open_and_close(rs_event_loop *loop)
{
    rs_pipe_read_end *r;
    rs_pipe_write_end *w;
    assert_int_equal(rs_pipe_new(loop, &r, loop, &w), 0);
    struct rs_test_latch done;
    rs_test_latch_init(&done, 2);
    assert_int_equal(rs_pipe_clean_up_read_end(r, on_done_signal, &done), 0);
    assert_int_equal(rs_pipe_clean_up_write_end(w, on_done_signal, &done), 0);
    rs_test_latch_await(&done, "both clean-ups");
    rs_test_latch_clean_up(&done);
}
#endif

static void test_pi13_unique_names_and_collision_retry(void **state)
{
    (void)state;
#if RS_TEST_IOCP
    char name[RS_PIPE_NAME_MAX];
    assert_int_equal(rs_pipe_unique_name(name, sizeof name), 0);
    assert_name_format(name, rs__thread_current_id());

    /* Unique across threads. */
    static char names[NAME_THREADS * NAMES_PER_THREAD][RS_PIPE_NAME_MAX];
    struct name_batch batches[NAME_THREADS];
    rs__thread threads[NAME_THREADS];
    for (int i = 0; i < NAME_THREADS; i++) {
        batches[i].names = names + i * NAMES_PER_THREAD;
        batches[i].failures = 0;
        assert_int_equal(rs__thread_start(&threads[i], make_names, &batches[i], "names"), 0);
    }
    for (int i = 0; i < NAME_THREADS; i++) {
        rs__thread_join(&threads[i]);
        assert_int_equal(batches[i].failures, 0);
    }
    qsort(names, NAME_THREADS * NAMES_PER_THREAD, RS_PIPE_NAME_MAX, compare_names);
    for (int i = 1; i < NAME_THREADS * NAMES_PER_THREAD; i++) {
        assert_true(strcmp(names[i - 1], names[i]) != 0);
    }

    /* Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE, so collisions are
     * injected: CreateNamedPipe fails as Windows does when the name exists. */
    assert_int_equal(rs_library_init(), 0);
    rs_event_loop *loop = rs_event_loop_new(NULL);
    assert_non_null(loop);
    assert_int_equal(rs_event_loop_run(loop), 0);
    for (long collisions = 1; collisions <= 3; collisions++) {
        rs__iocp_pipe_test_inject_collisions(collisions);
        open_and_close(loop);
        assert_int_equal(rs__iocp_pipe_test_pending_collisions(), 0);
    }
    rs_pipe_read_end *r = NULL;
    rs_pipe_write_end *w = NULL;
    rs__iocp_pipe_test_inject_collisions(RS__IOCP_PIPE_NAME_TRIES);
    assert_fails_with(rs_pipe_new(loop, &r, loop, &w), RS_ERROR_SYS_CALL_FAILURE);
    assert_int_equal(rs__iocp_pipe_test_pending_collisions(), 0);
    rs__iocp_pipe_test_inject_collisions(RS__IOCP_PIPE_NAME_TRIES + 5);
    assert_fails_with(rs_pipe_new(loop, &r, loop, &w), RS_ERROR_SYS_CALL_FAILURE);
    assert_int_equal(rs__iocp_pipe_test_pending_collisions(), 5); /* bounded: it gave up */
    rs__iocp_pipe_test_inject_collisions(0);
    assert_null(r);
    assert_null(w);
    open_and_close(loop);
    assert_int_equal(rs_event_loop_destroy(loop), 0);
    assert_int_equal(rs_test_teardown_library(state), 0);
#else
    RS_TEST_SKIP("pipe names and FILE_FLAG_FIRST_PIPE_INSTANCE collisions exist only on the iocp "
                 "backend; POSIX pipes are anonymous");
#endif
}

/* ---- bad input ---- */

struct bad_input {
    struct pipe_test *t;
    int codes[32];
    int count;
};

static void record(struct bad_input *b, int rc)
{
    b->codes[b->count++] = rc == 0 ? 0 : rs_last_error();
}

static void bad_input_on_loop(void *arg)
{
    struct bad_input *b = arg;
    struct pipe_test *t = b->t;
    static const unsigned char byte = 1;
    unsigned char buf[8];
    size_t n;
    struct write_rec *rec = &t->writes[0];
    record(b, rs_pipe_write(t->w, &byte, 0, pt_on_write_done, rec));
    record(b, rs_pipe_write(t->w, NULL, 1, pt_on_write_done, rec));
    record(b, rs_pipe_write(t->w, &byte, 1, NULL, rec));
    record(b, rs_pipe_write(NULL, &byte, 1, pt_on_write_done, rec));
    record(b, rs_pipe_read(t->r, buf, 0, &n));
    record(b, rs_pipe_read(t->r, NULL, sizeof buf, &n));
    record(b, rs_pipe_read(t->r, buf, sizeof buf, NULL));
    record(b, rs_pipe_read(NULL, buf, sizeof buf, &n));
    record(b, rs_pipe_read(t->r, buf, sizeof buf, &n));
    record(b, rs_pipe_subscribe_to_readable_events(NULL, pt_on_readable, t));
    record(b, rs_pipe_subscribe_to_readable_events(t->r, NULL, t));
    record(b, rs_pipe_unsubscribe_from_readable_events(NULL));
    record(b, rs_pipe_unsubscribe_from_readable_events(t->r));
    record(b, rs_pipe_subscribe_to_readable_events(t->r, pt_on_readable, t));
    record(b, rs_pipe_subscribe_to_readable_events(t->r, pt_on_readable, t));
    record(b, rs_pipe_unsubscribe_from_readable_events(t->r));
    record(b, rs_pipe_unsubscribe_from_readable_events(t->r));
}

/* On the other end's loop thread (another loop, with two loops). */
static void read_end_from_write_loop(void *arg)
{
    struct bad_input *b = arg;
    struct pipe_test *t = b->t;
    unsigned char buf[8];
    size_t n;
    record(b, rs_pipe_subscribe_to_readable_events(t->r, pt_on_readable, t));
    record(b, rs_pipe_read(t->r, buf, sizeof buf, &n));
    record(b, rs_pipe_unsubscribe_from_readable_events(t->r));
}

static void write_end_from_read_loop(void *arg)
{
    struct bad_input *b = arg;
    static const unsigned char byte = 1;
    record(b, rs_pipe_write(b->t->w, &byte, 1, pt_on_write_done, &b->t->writes[0]));
}

static void test_pipe_bad_input(void **state)
{
    struct pipe_fixture *f = *state;
    struct pipe_test *t = pt_new(f);
    rs_pipe_read_end *r = NULL;
    rs_pipe_write_end *w = NULL;
    assert_fails_with(rs_pipe_new(NULL, &r, f->write_loop, &w), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_pipe_new(f->read_loop, NULL, f->write_loop, &w),
                      RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_pipe_new(f->read_loop, &r, NULL, &w), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_pipe_new(f->read_loop, &r, f->write_loop, NULL),
                      RS_ERROR_INVALID_ARGUMENT);
    assert_null(r);
    assert_null(w);
    assert_fails_with(rs_pipe_clean_up_read_end(NULL, NULL, NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_pipe_clean_up_write_end(NULL, NULL, NULL), RS_ERROR_INVALID_ARGUMENT);
    assert_null(rs_pipe_read_end_loop(NULL));
    assert_null(rs_pipe_write_end_loop(NULL));
    char name[RS_PIPE_NAME_MAX];
    assert_fails_with(rs_pipe_unique_name(NULL, sizeof name), RS_ERROR_INVALID_ARGUMENT);
    assert_fails_with(rs_pipe_unique_name(name, sizeof name - 1), RS_ERROR_INVALID_ARGUMENT);

    pt_open(t);
    /* Not on the end's loop thread. */
    static const unsigned char byte = 1;
    unsigned char buf[8];
    size_t n;
    t->writes[0].t = t;
    assert_fails_with(rs_pipe_subscribe_to_readable_events(t->r, pt_on_readable, t),
                      RS_ERROR_WRONG_THREAD);
    assert_fails_with(rs_pipe_unsubscribe_from_readable_events(t->r), RS_ERROR_WRONG_THREAD);
    assert_fails_with(rs_pipe_read(t->r, buf, sizeof buf, &n), RS_ERROR_WRONG_THREAD);
    assert_fails_with(rs_pipe_write(t->w, &byte, 1, pt_on_write_done, &t->writes[0]),
                      RS_ERROR_WRONG_THREAD);
    if (f->read_loop != f->write_loop) {
        struct bad_input other = {.t = t};
        rs_test_run_on_loop(f->write_loop, read_end_from_write_loop, &other);
        rs_test_run_on_loop(f->read_loop, write_end_from_read_loop, &other);
        assert_int_equal(other.count, 4);
        for (int i = 0; i < other.count; i++) {
            assert_string_equal(rs_error_name(other.codes[i]),
                                rs_error_name(RS_ERROR_WRONG_THREAD));
        }
    }

    struct bad_input b = {.t = t};
    rs_test_run_on_loop(f->read_loop, bad_input_on_loop, &b);
    static const int expected[] = {
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_WOULD_BLOCK,      RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_INVALID_ARGUMENT, RS_ERROR_INVALID_ARGUMENT,
        RS_ERROR_INVALID_STATE,    0,
        RS_ERROR_INVALID_STATE,    0,
        RS_ERROR_INVALID_STATE,
    };
    assert_int_equal(b.count, (int)RS__ARRAY_LEN(expected));
    for (int i = 0; i < b.count; i++) {
        if (b.codes[i] != expected[i]) {
            fail_msg("bad-input call %d failed with %s, expected %s", i, rs_error_name(b.codes[i]),
                     rs_error_name(expected[i]));
        }
    }

    /* Nothing changed: no callback ran, and the pipe still works. */
    pt_settle(t);
    assert_int_equal(t->write_calls, 0);
    assert_int_equal(t->readable_calls + t->error_calls, 0);
    t->expect = &byte;
    t->expect_len = 1;
    pt_subscribe(t, READ_DRAIN);
    pt_write(t, &byte, 1, 1);
    pt_await(t, t->write_calls == 1 && t->received == 1, "one byte through the pipe");
    pt_assert_writes_succeeded(t);
    assert_false(t->mismatch);
    pt_close_all(t);
}

/* ---- writing to a pipe whose read end is gone ---- */

#ifndef _WIN32
static void note_sigpipe_pending(void *arg)
{
    sigset_t pending;
    sigemptyset(&pending);
    *(int *)arg = sigpending(&pending) == 0 ? sigismember(&pending, SIGPIPE) : -1;
}
#endif

static void test_pipe_write_after_read_end_closed_is_broken_pipe(void **state)
{
    struct pipe_fixture *f = *state;
    size_t len = 256 * 1024;
    unsigned char *data = pt_make_data(len, 14);
    struct pipe_test *t = pt_new(f);
    pt_open(t);
    pt_close_read(t);
    /* On POSIX the write raises SIGPIPE, whose default action would end this
     * process: the library must keep it from being delivered. */
    pt_write(t, data, len, 2);
    pt_await(t, t->write_calls == 2, "both writes' callbacks");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(t->writes[i].calls, 1);
        assert_false(t->writes[i].end_null);
        assert_string_equal(rs_error_name(t->writes[i].error), rs_error_name(RS_ERROR_BROKEN_PIPE));
        assert_int_equal(t->writes[i].bytes, 0);
    }
#ifndef _WIN32
    /* ... without changing the process's disposition of the signal. */
    struct sigaction action;
    assert_int_equal(sigaction(SIGPIPE, NULL, &action), 0);
    assert_true(action.sa_handler == SIG_DFL);
    /* ... and without leaving the signal the writes raised pending on the
     * writing thread. */
    int pending = -1;
    rs_test_run_on_loop(f->write_loop, note_sigpipe_pending, &pending);
    assert_int_equal(pending, 0);
#endif
    pt_close_all(t);
    free(data);
}

/* ---- clean-up inside the end's own callbacks ---- */

static void test_pipe_clean_up_inside_own_callbacks(void **state)
{
    struct pipe_fixture *f = *state;
    unsigned char *data = pt_make_data(40, 15);
    struct pipe_test *t = pt_new(f);
    pt_open(t);
    t->writes[0].clean_up_here = true;
    pt_write(t, data, 20, 2);
    pt_await(t, t->write_clean_ups == 1, "the write end's clean-up");
    assert_int_equal(t->write_calls_at_clean_up, 2);
    assert_false(t->writes[0].end_null);
    assert_true(t->writes[1].end_null);
    assert_int_equal(t->writes[1].calls, 1);
    t->w = NULL;

    pt_subscribe(t, READ_CLEAN_UP);
    pt_await(t, t->read_clean_ups == 1, "the read end's clean-up");
    assert_int_equal(t->readable_calls, 1);
    t->r = NULL;
    pt_close_all(t);
    free(data);
}

/* ---- clean-up from foreign threads with I/O in flight ---- */

enum { STORM_ROUNDS = 100 };

struct closer {
    struct pipe_test *t;
    bool read_end;
};

static void close_from_thread(void *arg)
{
    struct closer *c = arg;
    if (c->read_end) {
        pt_clean_up_read(c->t);
    } else {
        pt_clean_up_write(c->t);
    }
}

static void test_pipe_clean_up_storm_from_foreign_threads(void **state)
{
    struct pipe_fixture *f = *state;
    size_t len = 1u << 20;
    unsigned char *data = pt_make_data(len, 16);
    for (int round = 0; round < STORM_ROUNDS; round++) {
        struct pipe_test *t = pt_new(f);
        t->expect = data;
        t->expect_len = len;
        pt_open(t);
        pt_subscribe(t, READ_DRAIN);
        pt_write(t, data, len, 4);
        struct closer closers[2] = {{t, true}, {t, false}};
        rs__thread threads[2];
        for (int i = 0; i < 2; i++) {
            assert_int_equal(
                rs__thread_start(&threads[i], close_from_thread, &closers[i], "closer"), 0);
        }
        for (int i = 0; i < 2; i++) {
            rs__thread_join(&threads[i]);
        }
        pt_await(t, t->read_clean_ups == 1 && t->write_clean_ups == 1, "both clean-ups");
        assert_int_equal(t->write_calls_at_clean_up, 4);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(t->writes[i].calls, 1);
            assert_int_equal(t->writes[i].order, i);
            assert_true(t->writes[i].error == 0 || t->writes[i].error == RS_ERROR_BROKEN_PIPE);
        }
        assert_false(t->mismatch);
        t->r = NULL;
        t->w = NULL;
        pt_close_all(t);
    }
    free(data);
}

#define PI_ENTRIES(body)                                                                           \
    cmocka_unit_test_setup_teardown(test_##body##_one_loop, pt_setup_one_loop, pt_teardown_loops), \
        cmocka_unit_test_setup_teardown(test_##body##_two_loops, pt_setup_two_loops,               \
                                        pt_teardown_loops)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_new_needs_library_init),
        PI_ENTRIES(pi1_open_close),
        PI_ENTRIES(pi2_small_write_and_read),
        PI_ENTRIES(pi3_large_write_and_read),
        PI_ENTRIES(pi4_one_readable_event_after_write),
        PI_ENTRIES(pi5_readable_sent_once_until_drained),
        PI_ENTRIES(pi6_readable_on_subscribe_if_data_present),
        PI_ENTRIES(pi7_readable_on_resubscribe_if_data_present),
        PI_ENTRIES(pi8_readable_again_after_drain_and_more_data),
        PI_ENTRIES(pi9_broken_pipe_after_write_end_closed),
        PI_ENTRIES(pi10_broken_pipe_on_subscribe_if_write_end_closed),
        PI_ENTRIES(pi11_writes_are_fifo),
        PI_ENTRIES(pi12_clean_up_cancels_pending_writes),
        cmocka_unit_test(test_pi13_unique_names_and_collision_retry),
        cmocka_unit_test_setup_teardown(test_pipe_bad_input, pt_setup_two_loops, pt_teardown_loops),
        cmocka_unit_test_setup_teardown(test_pipe_write_after_read_end_closed_is_broken_pipe,
                                        pt_setup_two_loops, pt_teardown_loops),
        cmocka_unit_test_setup_teardown(test_pipe_clean_up_inside_own_callbacks, pt_setup_two_loops,
                                        pt_teardown_loops),
        cmocka_unit_test_setup_teardown(test_pipe_clean_up_storm_from_foreign_threads,
                                        pt_setup_two_loops, pt_teardown_loops),
    };
    return RS_TEST_MAIN("pipe", tests);
}
