/*
 * The pipe tests' harness: a fixture with one or two running loops, and a
 * pipe under test whose callbacks (on loop threads) only record, under the
 * lock of its counter (struct rs_test_counter), what they saw; the test thread waits for the
 * records (bounded) and asserts on them. The pipe under test lives on the heap and is owned by the
 * test (rs_test_own): if the test fails or times out, the callbacks still record into live memory
 * until the harness's teardown has cleaned up both ends, and only then is it freed (HO10).
 */
#ifndef RS_PIPE_HARNESS_H
#define RS_PIPE_HARNESS_H

#include "rs_test.h"

/* One running loop (read_loop == write_loop) or two. */
struct pipe_fixture {
    rs_event_loop *loops[2];
    size_t count;
    rs_event_loop *read_loop;
    rs_event_loop *write_loop;
};

int pt_setup_one_loop(void **state);
int pt_setup_two_loops(void **state);
/* Destroys the loops; then the library leak check. */
int pt_teardown_loops(void **state);

enum read_mode {
    READ_NOTHING,  /* the readable callback only counts */
    READ_DRAIN,    /* it reads until WOULD_BLOCK or BROKEN_PIPE, at most max_reads times */
    READ_CLEAN_UP, /* it cleans up the read end */
};

enum { PT_MAX_WRITES = 16 };

struct write_rec {
    struct pipe_test *t;
    const unsigned char *data;
    size_t len;
    long calls;
    int error;
    size_t bytes;
    bool end_null;
    bool off_thread;
    int order;
    bool clean_up_here; /* the callback cleans up the write end */
};

struct pipe_test {
    struct pipe_fixture *f;
    rs_pipe_read_end *r;
    rs_pipe_write_end *w;
    struct rs_test_counter counter;
    /* A clean-up of the end was asked for (pt_clean_up_read / _write). */
    bool read_closing;
    bool write_closing;

    /* Reader. */
    enum read_mode mode;
    int max_reads;
    size_t chunk;
    long readable_calls;
    long error_calls;
    int first_error;
    size_t received_at_error;
    long readable_calls_at_error;
    bool off_thread;
    bool mismatch;
    uint64_t inside_thread; /* a loop thread inside a call that must not call back */
    bool called_inside;
    const unsigned char *expect;
    size_t expect_len;
    size_t received;

    /* Writer. */
    struct write_rec writes[PT_MAX_WRITES];
    int write_count;
    long write_calls;

    /* Clean-up. */
    long read_clean_ups;
    long write_clean_ups;
    long write_calls_at_clean_up;
    bool clean_up_off_thread;
};

/* Waits, bounded, until pred (read under the counter's lock) holds. */
#define pt_await(t, pred, what) rs_test_counter_await_until(&(t)->counter, pred, what)

void pt_lock(struct pipe_test *t);
/* Wakes pt_await and unlocks. */
void pt_unlock_signal(struct pipe_test *t);
/* Marks the calling (loop) thread as inside a reseau call, so that a
 * callback run from inside that call is noticed (called_inside). */
void pt_set_inside(struct pipe_test *t, bool inside);

/* A pipe test on the fixture's loops (heap, owned by the running test). */
struct pipe_test *pt_new(struct pipe_fixture *f);
/* rs_pipe_new on the fixture's loops. */
void pt_open(struct pipe_test *t);
/* Cleans up the ends still open (from this foreign thread), checks that each
 * clean-up and callback ran on its loop thread, never inside a call, and
 * frees t. */
void pt_close_all(struct pipe_test *t);
/* rs_pipe_clean_up_{read,write}_end with the recording callback, from any
 * thread; noted, so that a failed test's teardown does not ask again. */
int pt_clean_up_read(struct pipe_test *t);
int pt_clean_up_write(struct pipe_test *t);
/* Each returns once the end's loop closed it (a foreign-thread clean-up). */
void pt_close_write(struct pipe_test *t);
void pt_close_read(struct pipe_test *t);
/* Lets every loop finish two iterations, so that an event that was going to
 * follow what already happened has happened. */
void pt_settle(struct pipe_test *t);
/* len bytes of a pattern that differs for each seed and offset (malloc). */
unsigned char *pt_make_data(size_t len, unsigned seed);

/* Reader: subscribe on the loop thread, with the callback in `mode`. */
void pt_subscribe(struct pipe_test *t, enum read_mode mode);
void pt_on_readable(rs_pipe_read_end *read_end, int error_code, void *user_data);
void pt_subscribe_on_loop(void *arg);
void pt_unsubscribe_on_loop(void *arg);
/* Reads what is there, at most max_reads times (loop thread). Returns false
 * once the stream ended. */
bool pt_drain(struct pipe_test *t, int max_reads);
void pt_drain_on_loop(void *arg);
/* One read on the loop thread must fail with code. */
void pt_assert_read_fails_with(struct pipe_test *t, int code);

/* Writer: `count` writes that together send data[0, len), in one loop task. */
void pt_write(struct pipe_test *t, const unsigned char *data, size_t len, int count);
void pt_on_write_done(rs_pipe_write_end *write_end, int error_code, size_t bytes_written,
                      void *user_data);
/* Every write called back once, in order, in full, with its end. */
void pt_assert_writes_succeeded(struct pipe_test *t);

void pt_on_read_clean_up(void *user_data);
void pt_on_write_clean_up(void *user_data);

#endif
