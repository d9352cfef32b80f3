/*
 * timers: a tour of reseau's event loops. Starts a group of loops (one per
 * usable CPU unless --loops N), schedules timed tasks on each from this
 * thread, and reports when each fired relative to its deadline.
 *
 *   timers [--loops N] [--tasks N] [--help]
 */
#include <reseau/reseau.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
static void nap(void)
{
    Sleep(10);
}
#else
#include <time.h>
static void nap(void)
{
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
}
#endif

struct timed {
    rs_task task;
    rs_event_loop *loop;
    uint64_t due_ns;
    uint64_t late_ns;
};

static struct {
    volatile int remaining;
    int total;
} progress;

static void on_timer(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    struct timed *t = arg;
    if (status == RS_TASK_STATUS_RUN) {
        t->late_ns = rs_event_loop_now(t->loop) - t->due_ns;
    }
    __atomic_sub_fetch(&progress.remaining, 1, __ATOMIC_ACQ_REL);
}

static int usage(FILE *out, int code)
{
    fprintf(out, "usage: timers [--loops N] [--tasks N]\n"
                 "  --loops N  event loops in the group (default: one per usable CPU)\n"
                 "  --tasks N  timed tasks per loop, 1..100000 (default 5)\n");
    return code;
}

int main(int argc, char **argv)
{
    unsigned loops = 0;
    long tasks_per_loop = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            return usage(stdout, 0);
        } else if (!strcmp(argv[i], "--loops") && i + 1 < argc) {
            loops = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--tasks") && i + 1 < argc) {
            tasks_per_loop = strtol(argv[++i], NULL, 10);
            if (tasks_per_loop < 1 || tasks_per_loop > 100000) {
                fprintf(stderr, "timers: --tasks must be 1..100000\n");
                return 2;
            }
        } else {
            fprintf(stderr, "timers: unknown argument '%s'\n", argv[i]);
            return usage(stderr, 2);
        }
    }
    if (rs_library_init() != 0) {
        fprintf(stderr, "timers: init failed: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    rs_event_loop_group_options options = {.loop_count = loops};
    rs_event_loop_group *group = rs_event_loop_group_new(&options);
    if (!group) {
        fprintf(stderr, "timers: %s\n", rs_error_str(rs_last_error()));
        return 1;
    }
    size_t n = rs_event_loop_group_count(group);
    printf("reseau %s on the %s backend: %zu event loop(s)\n", rs_version(), rs_backend_name(), n);
    size_t total = n * (size_t)tasks_per_loop;
    struct timed *timers = calloc(total, sizeof *timers);
    if (!timers) {
        return 1;
    }
    progress.remaining = progress.total = (int)total;
    for (size_t i = 0; i < total; i++) {
        struct timed *t = &timers[i];
        t->loop = rs_event_loop_group_get_loop(group, i % n);
        t->due_ns = rs_event_loop_now(t->loop) + (uint64_t)(i + 1) * 10000000u;
        rs_task_init(&t->task, on_timer, t, "timer");
        rs_event_loop_schedule_at(t->loop, &t->task, t->due_ns);
    }
    while (__atomic_load_n(&progress.remaining, __ATOMIC_ACQUIRE) > 0) {
        nap(); /* a demo: polling a counter keeps it short */
    }
    uint64_t worst = 0;
    for (size_t i = 0; i < total; i++) {
        worst = timers[i].late_ns > worst ? timers[i].late_ns : worst;
    }
    printf("%zu timed tasks fired, none early; latest fired %.3f ms after its deadline\n", total,
           (double)worst / 1e6);
    rs_event_loop_group_release(group);
    free(timers);
    rs_library_cleanup();
    return 0;
}
