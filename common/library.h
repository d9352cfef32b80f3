#ifndef RS_COMMON_LIBRARY_H
#define RS_COMMON_LIBRARY_H

#include <stdbool.h>

/* 0 when the library is initialised; otherwise raises
 * RS_ERROR_LIBRARY_NOT_INITIALIZED and returns -1. Any thread. */
int rs__library_check(void);

#endif
