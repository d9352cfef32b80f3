/*
 * timers: a tour of reseau's event loops. Starts a group of loops (one per
 * usable CPU unless --loops N), schedules timed tasks on each from this
 * thread, and reports when each fired relative to its deadline. With
 * --main-thread, one loop without a thread of its own runs on this thread
 * instead (rs_event_loop_run_here), and its metrics are printed after.
 *
 *   timers [--loops N | --main-thread] [--tasks N] [--help]
 */
#include <reseau/reseau.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per loop, touched only on that loop's thread once its timers are
 * scheduled: the last timer to fire stops the loop, and the main thread
 * learns that by waiting for the loop to stop. */
struct loop_progress {
    long remaining;
};

struct timed {
    rs_task task;
    rs_event_loop *loop;
    uint64_t due_ns;
    uint64_t late_ns;
    struct loop_progress *progress;
};

static void on_timer(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct timed *t = arg;
    if (status == RS_TASK_STATUS_RUN) {
        t->late_ns = rs_event_loop_now(t->loop) - t->due_ns;
    }
    if (--t->progress->remaining == 0) {
        rs_event_loop_stop(t->loop);
    }
}

static int usage(FILE *out, int code)
{
    fprintf(out,
            "usage: timers [--loops N | --main-thread] [--tasks N]\n"
            "  --loops N       event loops in the group, 1..4096 (default: one per usable CPU)\n"
            "  --main-thread   one loop, run on this program's main thread\n"
            "  --tasks N       timed tasks per loop, 1..100000 (default 5)\n"
            "  --help          this text\n");
    return code;
}

/* One loop with no thread of its own: main's thread runs it until the last
 * timer stops it, and is the loop's thread meanwhile. */
static int run_on_main_thread(long tasks)
{
    rs_event_loop *loop = rs_event_loop_new_on_caller_thread(NULL);
    struct timed *timers = calloc((size_t)tasks, sizeof *timers);
    if (!loop || !timers) {
        fprintf(stderr, "timers: %s\n", loop ? "out of memory" : rs_error_str(rs_last_error()));
        free(timers);
        if (loop) {
            rs_event_loop_destroy(loop);
        }
        return 1;
    }
    printf("reseau %s on the %s backend: 1 event loop on the main thread\n", rs_version(),
           rs_backend_name());
    struct loop_progress progress = {tasks};
    rs_event_loop_set_metrics_timing(loop, true);
    for (long i = 0; i < tasks; i++) {
        struct timed *t = &timers[i];
        t->loop = loop;
        t->progress = &progress;
        t->due_ns = rs_event_loop_now(loop) + (uint64_t)(i + 1) * 10000000u;
        rs_task_init(&t->task, on_timer, t, "timer");
        rs_event_loop_schedule_at(loop, &t->task, t->due_ns);
    }
    /* Returns once the last timer's rs_event_loop_stop ended the run. */
    int rc = rs_event_loop_run_here(loop, RS_RUN_DEFAULT);
    uint64_t worst = 0;
    for (long i = 0; i < tasks; i++) {
        worst = timers[i].late_ns > worst ? timers[i].late_ns : worst;
    }
    rs_event_loop_metrics m;
    if (rc == 0 && rs_event_loop_get_metrics(loop, &m, sizeof m) == 0) {
        printf("%ld timed tasks fired, none early; latest fired %.3f ms after its deadline\n",
               tasks, (double)worst / 1e6);
        printf("%llu iterations, %llu tasks; waited %.3f ms, ran %.3f ms\n",
               (unsigned long long)m.iterations, (unsigned long long)m.tasks_run,
               (double)m.wait_ns / 1e6, (double)m.run_ns / 1e6);
    } else {
        fprintf(stderr, "timers: %s\n", rs_error_str(rs_last_error()));
        rc = -1;
    }
    rs_event_loop_destroy(loop);
    free(timers);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    long loops = 0;
    long tasks_per_loop = 5;
    bool main_thread = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool takes_value = !strcmp(arg, "--loops") || !strcmp(arg, "--tasks");
        if (!strcmp(arg, "--help")) {
            return usage(stdout, 0);
        } else if (!strcmp(arg, "--main-thread")) {
            main_thread = true;
            continue;
        } else if (!takes_value || i + 1 >= argc) {
            fprintf(stderr, "timers: %s '%s'\n",
                    takes_value ? "missing value after" : "unknown argument", arg);
            return usage(stderr, 2);
        }
        const char *value = argv[++i];
        bool is_loops = !strcmp(arg, "--loops");
        long max = is_loops ? 4096 : 100000;
        char *end = NULL;
        long n = strtol(value, &end, 10);
        if (!*value || *end || n < 1 || n > max) {
            fprintf(stderr, "timers: %s must be a number 1..%ld, not '%s'\n", arg, max, value);
            return 2;
        }
        *(is_loops ? &loops : &tasks_per_loop) = n;
    }
    if (main_thread && loops) {
        fprintf(stderr, "timers: --loops and --main-thread exclude each other\n");
        return usage(stderr, 2);
    }
    if (rs_library_init() != 0) {
        fprintf(stderr, "timers: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    if (main_thread) {
        int rc = run_on_main_thread(tasks_per_loop);
        rs_library_cleanup();
        return rc;
    }
    rs_event_loop_group_options options = {.loop_count = (unsigned)loops};
    rs_event_loop_group *group = rs_event_loop_group_new(&options);
    if (!group) {
        fprintf(stderr, "timers: %s\n", rs_error_str(rs_last_error()));
        rs_library_cleanup();
        return 1;
    }
    size_t n = rs_event_loop_group_count(group);
    printf("reseau %s on the %s backend: %zu event loop(s)\n", rs_version(), rs_backend_name(), n);
    size_t total = n * (size_t)tasks_per_loop;
    struct timed *timers = calloc(total, sizeof *timers);
    struct loop_progress *progress = calloc(n, sizeof *progress);
    if (!timers || !progress) {
        fprintf(stderr, "timers: out of memory\n");
        free(timers);
        free(progress);
        rs_event_loop_group_release(group);
        rs_library_cleanup();
        return 1;
    }
    /* Counted before the first timer is scheduled: from then on only the
     * loop's own thread touches its count. */
    for (size_t i = 0; i < n; i++) {
        progress[i].remaining = tasks_per_loop;
    }
    for (size_t i = 0; i < total; i++) {
        struct timed *t = &timers[i];
        t->loop = rs_event_loop_group_get_loop(group, i % n);
        t->progress = &progress[i % n];
        t->due_ns = rs_event_loop_now(t->loop) + (uint64_t)(i + 1) * 10000000u;
        rs_task_init(&t->task, on_timer, t, "timer");
        rs_event_loop_schedule_at(t->loop, &t->task, t->due_ns);
    }
    /* Each loop stops itself after its last timer; joining its thread also
     * makes the late_ns values it wrote visible here. */
    for (size_t i = 0; i < n; i++) {
        rs_event_loop_wait_for_stop(rs_event_loop_group_get_loop(group, i));
    }
    uint64_t worst = 0;
    for (size_t i = 0; i < total; i++) {
        worst = timers[i].late_ns > worst ? timers[i].late_ns : worst;
    }
    printf("%zu timed tasks fired, none early; latest fired %.3f ms after its deadline\n", total,
           (double)worst / 1e6);
    rs_event_loop_group_release(group);
    free(timers);
    free(progress);
    rs_library_cleanup();
    return 0;
}
