#ifndef RS_COMMON_HOST_RESOLVER_IMPL_H
#define RS_COMMON_HOST_RESOLVER_IMPL_H

#include <reseau/event_loop.h>

/* Called by rs_event_loop_destroy before it cancels the loop's tasks: every
 * resolve for this loop whose worker still runs is answered now, with
 * RS_ERROR_EVENT_LOOP_SHUTDOWN, on the calling thread. */
void rs__resolver_forget_loop(rs_event_loop *loop);
/* Called by the last rs_library_cleanup: waits for running lookups. */
void rs__resolver_wait_idle(void);

#endif
