/*
 * The reseau implementation's shared plumbing (impl_reseau.c) and its socket
 * workloads (impl_reseau_socket.c, built when the backend has sockets). The
 * loop runs on its own thread (rs_event_loop_run); the bench thread sets up,
 * waits on a latch and tears down. Everything measured happens in callbacks
 * on the loop thread, so the clock starts and stops there.
 */
#ifndef RESEAU_BENCH_IMPL_RESEAU_H
#define RESEAU_BENCH_IMPL_RESEAU_H

#include "bench.h"

#include <reseau/reseau.h>

struct rsb_run {
    rs_event_loop *loop;
    struct bench_latch *done;
    struct bench_result *r;
    const struct bench_params *p;
    uint64_t start_ns;
    /* rsb_run_finish ran (loop thread): later errors are the teardown's. */
    bool finished;
};

/* Creates and runs a loop; false (failure recorded) if that failed. */
bool rsb_run_begin(struct rsb_run *run, const struct bench_params *p, struct bench_result *r);
/* Loop thread: stops the clock and wakes the bench thread. */
void rsb_run_finish(struct rsb_run *run, uint64_t ops);
/* Loop thread: a failure ends the run (the bench thread wakes up at once);
 * after rsb_run_finish it is ignored: the bench thread tears the
 * connections down in its own order, and a peer's close then reaches
 * sockets still subscribed. */
void rsb_run_error(struct rsb_run *run, const char *what, int code);
/* Bench thread: waits (bounded) for finish or error. */
void rsb_run_wait(struct rsb_run *run);
/* Bench thread: destroys the loop (which cancels what is still queued). */
void rsb_run_end(struct rsb_run *run);

bench_fn rsb_pingpong, rsb_fanin, rsb_stream, rsb_connect, rsb_udp, rsb_udp_to;
/* impl_reseau_watch.c */
bench_fn rsb_watch;
/* impl_reseau_idle.c */
bench_fn rsb_idle;

#endif
