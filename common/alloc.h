#ifndef RS_COMMON_ALLOC_H
#define RS_COMMON_ALLOC_H

#include <stddef.h>

/* Allocates through the user's allocator hook. NULL with RS_ERROR_OUT_OF_MEMORY raised. */
void *rs__mem_acquire(size_t size);
/* As rs__mem_acquire, zero-filled. */
void *rs__mem_calloc(size_t count, size_t size);
void rs__mem_release(void *ptr);
/* Called with the init count on every init/cleanup: the hook is frozen while it is > 0. */
void rs__alloc_lock_hook(int init_count);

#endif
