/*
 * The workloads on reseau's public API, whichever backend the library was
 * built with: plumbing, tasks, timers and pipes here, sockets in
 * impl_reseau_socket.c.
 */
#include "impl_reseau.h"

#include <reseau/pipe.h>

#include <stdlib.h>
#include <string.h>

static const unsigned char payload[BENCH_CHUNK];

/* ---- shared plumbing ---- */

bool rsb_run_begin(struct rsb_run *run, const struct bench_params *p, struct bench_result *r)
{
    memset(run, 0, sizeof *run);
    run->p = p;
    run->r = r;
    run->done = bench_latch_new();
    run->loop = rs_event_loop_new(NULL);
    /* RSB_METRICS_TIMING=1 keeps the loop's wait and run times, to measure
     * what they cost (docs/performance.md, "Loop metrics"). */
    const char *timing = getenv("RSB_METRICS_TIMING");
    if (run->loop && timing && !strcmp(timing, "1")) {
        rs_event_loop_set_metrics_timing(run->loop, true);
    }
    if (!run->done || !run->loop || rs_event_loop_run(run->loop) != 0) {
        bench_fail(r, "event loop: %s", rs_error_name(rs_last_error()));
        return false;
    }
    return true;
}

void rsb_run_finish(struct rsb_run *run, uint64_t ops)
{
    run->r->elapsed_ns = bench_now_ns() - run->start_ns;
    run->r->ops = ops;
    run->finished = true;
    bench_latch_signal(run->done);
}

void rsb_run_error(struct rsb_run *run, const char *what, int code)
{
    if (run->finished) {
        return;
    }
    bench_fail(run->r, "%s: %s", what, rs_error_name(code));
    bench_latch_signal(run->done);
}

void rsb_run_wait(struct rsb_run *run)
{
    if (!bench_latch_wait(run->done, BENCH_TIMEOUT_NS)) {
        bench_fail(run->r, "timed out");
    }
}

void rsb_run_end(struct rsb_run *run)
{
    if (run->loop) {
        rs_event_loop_destroy(run->loop);
    }
    if (run->done) {
        bench_latch_free(run->done);
    }
}

/* ---- tasks and timers ---- */

struct task_run {
    struct rsb_run run;
    rs_task *tasks;
    long fired, n;
};

static void task_fired(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    (void)status;
    struct task_run *t = arg;
    if (++t->fired == t->n) {
        rsb_run_finish(&t->run, (uint64_t)t->n);
    }
}

static void rs_tasks(const struct bench_params *p, struct bench_result *r)
{
    struct task_run t;
    long n = p->tasks;
    if (!rsb_run_begin(&t.run, p, r)) {
        rsb_run_end(&t.run);
        return;
    }
    t.n = n;
    t.fired = 0;
    t.tasks = calloc((size_t)n + 1, sizeof *t.tasks);
    if (!t.tasks) {
        bench_fail(r, "out of memory");
        rsb_run_end(&t.run);
        return;
    }
    bench_prefault(t.tasks, ((size_t)n + 1) * sizeof *t.tasks);
    rs_event_loop_metrics before;
    rs_event_loop_get_metrics(t.run.loop, &before, sizeof before);
    t.run.start_ns = bench_now_ns();
    for (long i = 0; i < n; i++) {
        rs_task_init(&t.tasks[i], task_fired, &t, NULL);
        rs_event_loop_schedule_now(t.run.loop, &t.tasks[i]);
    }
    if (n == 0) {
        rsb_run_finish(&t.run, 0);
    }
    rsb_run_wait(&t.run);
    rs_event_loop_metrics after;
    if (rs_event_loop_get_metrics(t.run.loop, &after, sizeof after) == 0) {
        r->wakeups = after.wakeups - before.wakeups;
        r->has_wakeups = true;
    }
    rsb_run_end(&t.run);
    free(t.tasks);
}

static void timers_start(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct task_run *t = arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    t->run.start_ns = bench_now_ns();
    uint64_t base = rs_event_loop_now(t->run.loop);
    uint64_t seed = BENCH_RAND_SEED;
    for (long i = 0; i < t->n; i++) {
        rs_task_init(&t->tasks[i], task_fired, t, NULL);
        uint64_t at = base + bench_rand_next(&seed) % t->run.p->timer_span_ns;
        rs_event_loop_schedule_at(t->run.loop, &t->tasks[i], at);
    }
    if (t->n == 0) {
        rsb_run_finish(&t->run, 0);
    }
}

static void rs_timers(const struct bench_params *p, struct bench_result *r)
{
    struct task_run t;
    if (!rsb_run_begin(&t.run, p, r)) {
        rsb_run_end(&t.run);
        return;
    }
    t.n = p->timers;
    t.fired = 0;
    t.tasks = calloc((size_t)t.n + 1, sizeof *t.tasks);
    if (!t.tasks) {
        bench_fail(r, "out of memory");
        rsb_run_end(&t.run);
        return;
    }
    rs_task start;
    rs_task_init(&start, timers_start, &t, "timers start");
    rs_event_loop_schedule_now(t.run.loop, &start);
    rsb_run_wait(&t.run);
    rsb_run_end(&t.run);
    free(t.tasks);
}

/* ---- pipe ---- */

struct pipe_run {
    struct rsb_run run;
    rs_pipe_read_end *re;
    rs_pipe_write_end *we;
    uint64_t queued, received;
    int outstanding;
};

static void pipe_pump(struct pipe_run *pr);

static void pipe_written(rs_pipe_write_end *we, int error_code, size_t n, void *arg)
{
    (void)n;
    struct pipe_run *pr = arg;
    pr->outstanding--;
    if (we && error_code) {
        rsb_run_error(&pr->run, "pipe write", error_code);
    } else if (we) {
        pipe_pump(pr);
    }
}

static void pipe_pump(struct pipe_run *pr)
{
    uint64_t total = pr->run.p->pipe_bytes;
    while (pr->outstanding < BENCH_MAX_OUTSTANDING && pr->queued < total) {
        size_t len = total - pr->queued < BENCH_CHUNK ? (size_t)(total - pr->queued) : BENCH_CHUNK;
        if (rs_pipe_write(pr->we, payload, len, pipe_written, pr) != 0) {
            rsb_run_error(&pr->run, "pipe write", rs_last_error());
            return;
        }
        pr->queued += len;
        pr->outstanding++;
    }
}

static void pipe_readable(rs_pipe_read_end *re, int error_code, void *arg)
{
    static unsigned char sink[BENCH_CHUNK];
    struct pipe_run *pr = arg;
    if (error_code) {
        return;
    }
    for (;;) {
        size_t n = 0;
        if (rs_pipe_read(re, sink, sizeof sink, &n) != 0) {
            if (rs_last_error() != RS_ERROR_WOULD_BLOCK) {
                rsb_run_error(&pr->run, "pipe read", rs_last_error());
            }
            return;
        }
        pr->received += n;
        if (pr->received >= pr->run.p->pipe_bytes) {
            rsb_run_finish(&pr->run, pr->received);
            return;
        }
        if (n < sizeof sink) {
            return;
        }
    }
}

static void pipe_start(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct pipe_run *pr = arg;
    if (status != RS_TASK_STATUS_RUN) {
        return;
    }
    if (rs_pipe_subscribe_to_readable_events(pr->re, pipe_readable, pr) != 0) {
        rsb_run_error(&pr->run, "pipe subscribe", rs_last_error());
        return;
    }
    pr->run.start_ns = bench_now_ns();
    if (pr->run.p->pipe_bytes == 0) {
        rsb_run_finish(&pr->run, 0);
        return;
    }
    pipe_pump(pr);
}

static void rs_pipe(const struct bench_params *p, struct bench_result *r)
{
    struct pipe_run *pr = calloc(1, sizeof *pr);
    if (!pr || !rsb_run_begin(&pr->run, p, r)) {
        goto out;
    }
    if (rs_pipe_new(pr->run.loop, &pr->re, pr->run.loop, &pr->we) != 0) {
        bench_fail(r, "rs_pipe_new: %s", rs_error_name(rs_last_error()));
        goto out;
    }
    rs_task start;
    rs_task_init(&start, pipe_start, pr, "pipe start");
    rs_event_loop_schedule_now(pr->run.loop, &start);
    rsb_run_wait(&pr->run);
    rs_pipe_clean_up_write_end(pr->we, NULL, NULL);
    rs_pipe_clean_up_read_end(pr->re, NULL, NULL);
out:
    if (pr) {
        rsb_run_end(&pr->run);
    }
    free(pr);
}

static int rs_init(void)
{
    return rs_library_init();
}

static void rs_clean_up(void)
{
    rs_library_cleanup();
}

const struct bench_impl bench_impl_reseau = {
    .name = "reseau",
    .description = "reseau's public API on the backend built in",
    .run =
        {
            [BW_PINGPONG] = rsb_pingpong,
            [BW_STREAM] = rsb_stream,
            [BW_CONNECT] = rsb_connect,
            [BW_TASKS] = rs_tasks,
            [BW_TIMERS] = rs_timers,
            [BW_UDP] = rsb_udp,
            [BW_UDP_TO] = rsb_udp_to,
            [BW_FANIN] = rsb_fanin,
            [BW_PIPE] = rs_pipe,
            [BW_WATCH] = rsb_watch,
            [BW_IDLE] = rsb_idle,
        },
    .init = rs_init,
    .clean_up = rs_clean_up,
};
