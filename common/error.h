#ifndef RS_COMMON_ERROR_H
#define RS_COMMON_ERROR_H

#include <reseau/common.h>

/* What rs_raise, rs_last_error and rs_error_name do, for the backends, which
 * call no function of the public API (common/backend.h). */
int rs__raise(int code);
int rs__last_error(void);
const char *rs__error_name(int code);

/* Raises code and returns NULL, for pointer-returning functions. */
static inline void *rs__raise_null(int code)
{
    rs__raise(code);
    return NULL;
}

#endif
