/*
 * Loop metrics: the timing writes of the loop's thread and the reader
 * (rs_event_loop_get_metrics). See loop_metrics.h for the threading.
 */
#include "loop_metrics.h"

#include "atomics.h"
#include "clock.h"
#include "error.h"
#include "event_loop_impl.h"

#include <string.h>

/*
 * The writer's side of the sequence lock: the odd value is stored before
 * the fields, the even one after them. The fields are release stores and
 * the reader's loads of them acquire loads (no standalone fence, which
 * ThreadSanitizer cannot model; on x86 all of these are plain moves): a
 * reader that saw a field written inside a section then sees the odd value
 * or a later one when it reads the sequence again, and retries.
 */
static void seq_write_begin(struct rs__loop_metrics *m)
{
    rs__atomic_store_relaxed_u64(&m->seq, rs__atomic_load_relaxed_u64(&m->seq) + 1);
}

static void seq_write_end(struct rs__loop_metrics *m)
{
    rs__atomic_store_u64(&m->seq, rs__atomic_load_relaxed_u64(&m->seq) + 1);
}

/* The clock never reads 0 after boot; 0 marks "none". */
static uint64_t stamp(void)
{
    uint64_t now = rs__clock_now_ns();
    return now ? now : 1;
}

/* Each write reads the clock inside its section, and the reader inside its
 * own: a reading is then the state at one instant with that instant's
 * clock, and the times a reader computes never go back from one reading to
 * the next. */

void rs__metrics_run_begin(struct rs__loop_metrics *m)
{
    seq_write_begin(m);
    rs__atomic_store_u64(&m->run_start_ns, stamp());
    seq_write_end(m);
}

void rs__metrics_run_end(struct rs__loop_metrics *m)
{
    if (m->waiting) {
        rs__metrics_wait_end(m);
    }
    seq_write_begin(m);
    uint64_t now = stamp();
    uint64_t start = rs__atomic_load_relaxed_u64(&m->run_start_ns);
    rs__atomic_store_u64(&m->run_total_ns, rs__atomic_load_relaxed_u64(&m->run_total_ns) +
                                               (now > start ? now - start : 0));
    rs__atomic_store_u64(&m->run_start_ns, 0);
    seq_write_end(m);
}

void rs__metrics_wait_begin(struct rs__loop_metrics *m)
{
    seq_write_begin(m);
    rs__atomic_store_u64(&m->wait_start_ns, stamp());
    seq_write_end(m);
    m->waiting = true;
}

void rs__metrics_wait_end(struct rs__loop_metrics *m)
{
    m->waiting = false;
    seq_write_begin(m);
    uint64_t now = stamp();
    uint64_t start = rs__atomic_load_relaxed_u64(&m->wait_start_ns);
    rs__atomic_store_u64(&m->wait_total_ns, rs__atomic_load_relaxed_u64(&m->wait_total_ns) +
                                                (now > start ? now - start : 0));
    rs__atomic_store_u64(&m->wait_start_ns, 0);
    seq_write_end(m);
}

/* The first version's struct: a caller may not pass less. */
#define METRICS_V1_SIZE (offsetof(rs_event_loop_metrics, live_watches) + sizeof(uint64_t))

static uint64_t since(uint64_t now, uint64_t start)
{
    return start && now > start ? now - start : 0;
}

/*
 * Raises *mark to value if it is lower; returns the mark. A reading that
 * races a wait's start or end computes its times with its own clock
 * reading, and the loop's thread stamps the wait with another: the two may
 * be ordered differently from the stores that publish them (a store waits
 * in the store buffer while the next clock reading runs), and the times of
 * one reading could then come out a few nanoseconds above the next one's.
 * A caller that subtracts two readings (a load over an interval) must never
 * get a negative difference, so every reading reports at least what any
 * reading before it reported. Readers only: the loop's thread never
 * touches the marks.
 */
static uint64_t never_below(volatile uint64_t *mark, uint64_t value)
{
    uint64_t seen = rs__atomic_load_u64(mark);
    while (value > seen) {
        if (rs__atomic_cas_u64(mark, seen, value)) {
            return value;
        }
        seen = rs__atomic_load_u64(mark);
    }
    return seen;
}

int rs_event_loop_get_metrics(const rs_event_loop *loop, rs_event_loop_metrics *metrics,
                              size_t size)
{
    if (!loop || !metrics || size < METRICS_V1_SIZE) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    struct rs__loop_metrics *m = (struct rs__loop_metrics *)&loop->metrics;
    rs_event_loop_metrics out;
    memset(&out, 0, sizeof out);

    /* The reader's side: the fields are one reading when the sequence was
     * even and unchanged around them. The writer's sections are a few
     * stores that never block, so a retry is rare and short. */
    uint64_t run_total, run_start, wait_total, wait_start, now, s1, s2;
    do {
        s1 = rs__atomic_load_u64(&m->seq);
        run_total = rs__atomic_load_u64(&m->run_total_ns);
        run_start = rs__atomic_load_u64(&m->run_start_ns);
        wait_total = rs__atomic_load_u64(&m->wait_total_ns);
        wait_start = rs__atomic_load_u64(&m->wait_start_ns);
        now = rs__clock_now_ns();
        s2 = rs__atomic_load_u64(&m->seq);
    } while ((s1 & 1) || s1 != s2);
    uint64_t ran = run_total + since(now, run_start);
    uint64_t waited = wait_total + since(now, wait_start);
    out.wait_ns = never_below(&m->reported_wait_ns, waited);
    out.run_ns = never_below(&m->reported_run_ns, ran > waited ? ran - waited : 0);

    out.iterations = rs__atomic_load_relaxed_u64(&m->iterations);
    out.tasks_run = rs__atomic_load_relaxed_u64(&m->tasks_run);
    out.tasks_canceled = rs__atomic_load_relaxed_u64(&m->tasks_canceled);
    out.io_callbacks = rs__atomic_load_relaxed_u64(&m->io_callbacks);
    out.bytes_read = rs__atomic_load_relaxed_u64(&m->bytes_read);
    out.bytes_written = rs__atomic_load_relaxed_u64(&m->bytes_written);
    out.wakeups = rs__atomic_load_relaxed_u64(&m->wakeups);
    /* Pipe ends and watches are among the handles too. The counts are read
     * one after the other: a pipe end or watch opened or ended in between
     * may show as a socket (or one socket fewer) in this one reading. */
    long pipe_ends = rs__atomic_load(&loop->live_pipe_ends);
    long watches = rs__atomic_load(&loop->live_watches);
    long handles = rs__atomic_load(&loop->handles);
    long others = pipe_ends + watches;
    out.live_pipe_ends = pipe_ends > 0 ? (uint64_t)pipe_ends : 0;
    out.live_watches = watches > 0 ? (uint64_t)watches : 0;
    out.live_sockets = handles > others ? (uint64_t)(handles - others) : 0;

    if (size <= sizeof out) {
        memcpy(metrics, &out, size);
    } else {
        memcpy(metrics, &out, sizeof out);
        memset((char *)metrics + sizeof out, 0, size - sizeof out);
    }
    return 0;
}
