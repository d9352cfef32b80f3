#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static rs_log_fn *log_fn;
static void *log_user_data;
static rs_log_level log_level = RS_LOG_NONE;

void rs_set_log(rs_log_fn *fn, rs_log_level level, void *user_data)
{
    log_fn = fn;
    log_user_data = user_data;
    log_level = fn ? level : RS_LOG_NONE;
}

rs_log_level rs__log_level(void)
{
    return log_level;
}

void rs__log(rs_log_level level, const char *fmt, ...)
{
    rs_log_fn *fn = log_fn;
    if (!fn || level > log_level) {
        return;
    }
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    fn(level, message, log_user_data);
}
