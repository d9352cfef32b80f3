#ifndef RS_COMMON_LOG_H
#define RS_COMMON_LOG_H

#include "compat.h"

#include <reseau/common.h>

/* Current level; RS_LOG_NONE when logging is off. Cheap: read before formatting. */
rs_log_level rs__log_level(void);
void rs__log(rs_log_level level, const char *fmt, ...) RS__PRINTF(2, 3);

#define RS__LOG(level, ...)                                                                        \
    do {                                                                                           \
        if ((level) <= rs__log_level()) {                                                          \
            rs__log((level), __VA_ARGS__);                                                         \
        }                                                                                          \
    } while (0)

#endif
