#ifndef RS_COMMON_ERROR_H
#define RS_COMMON_ERROR_H

#include <reseau/common.h>

/* Raises code and returns NULL, for pointer-returning functions. */
static inline void *rs__raise_null(int code)
{
    rs_raise(code);
    return NULL;
}

#endif
