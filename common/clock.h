#ifndef RS_COMMON_CLOCK_H
#define RS_COMMON_CLOCK_H

#include <stdint.h>

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC / QueryPerformanceCounter). */
uint64_t rs__clock_now_ns(void);

#endif
