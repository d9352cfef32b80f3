/*
 * The idle workload's result, the same arithmetic for every platform's
 * sampler (idle.h): growth per connection of the heap and of the resident
 * set between the two samples.
 */
#include "idle.h"

#include <stdio.h>

void bench_idle_result(struct bench_result *r, long n, const struct bench_mem *before,
                       const struct bench_mem *after)
{
    r->ops = (uint64_t)n;
    r->elapsed_ns = 1;
    if (before->heap == BENCH_MEM_NONE || after->heap == BENCH_MEM_NONE) {
        r->status = BENCH_NA;
        snprintf(r->note, sizeof r->note, "%s", bench_idle_no_heap_reason());
        return;
    }
    r->value = n ? (double)(after->heap - before->heap) / (double)n : 0;
    r->value2 = n && before->rss != BENCH_MEM_NONE && after->rss != BENCH_MEM_NONE
                    ? (double)(after->rss - before->rss) / (double)n
                    : 0;
}
