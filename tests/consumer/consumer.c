/* A program built against an installed reseau (pkg-config, CMake) or reseau
 * as a meson subproject or wrap: it must compile with only the public headers
 * and link with only the exported symbols. */
#include <reseau/reseau.h>

#include <stdio.h>
#include <string.h>

static void on_task(rs_task *task, void *arg, rs_task_status status)
{
    (void)task;
    *(rs_task_status *)arg = status;
}

int main(void)
{
    if (rs_library_init() != 0) {
        fprintf(stderr, "consumer: init: %s\n", rs_error_name(rs_last_error()));
        return 1;
    }
    rs_event_loop *loop = rs_event_loop_new(NULL);
    if (!loop) {
        return 1;
    }
    rs_task_status seen = RS_TASK_STATUS_RUN;
    rs_task task;
    rs_task_init(&task, on_task, &seen, "consumer");
    rs_event_loop_schedule_at(loop, &task, rs_event_loop_now(loop) + 3600000000000ull);
    rs_event_loop_destroy(loop); /* cancels the task on this thread */
    rs_library_cleanup();
    printf("consumer: reseau %s, backend %s, task %s\n", rs_version(), rs_backend_name(),
           seen == RS_TASK_STATUS_CANCELED ? "cancelled" : "not cancelled");
    return seen == RS_TASK_STATUS_CANCELED && strcmp(rs_version(), "0.0.0") != 0 ? 0 : 1;
}
