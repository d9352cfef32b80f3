#ifndef RS_COMMON_ALLOC_H
#define RS_COMMON_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Allocates through the user's allocator hook. NULL with RS_ERROR_OUT_OF_MEMORY raised. */
void *rs__mem_acquire(size_t size);
/* As rs__mem_acquire, zero-filled. */
void *rs__mem_calloc(size_t count, size_t size);
void rs__mem_release(void *ptr);
/* Called with the init count on every init/cleanup: the hook is frozen while it is > 0. */
void rs__alloc_lock_hook(int init_count);

/*
 * Spare blocks of one size kept by their owner (a socket's or a pipe write
 * end's completed write requests) for its next requests, so that a steady
 * stream of writes allocates nothing. Single-threaded (the owner's loop
 * thread). The owner holds the list head and its length (a byte, to fit in
 * padding); a spare block's first pointer-sized bytes hold the link, the
 * rest keeps what was there (a request's completion function, set once).
 */
/* Spare write requests kept per socket or pipe write end (about 80 bytes
 * each). An owner keeps no more than it once had in flight, and a window of
 * writes completes one iteration after they were taken (datagrams: all of
 * them), so a smaller cap made a writer with a window of 64 allocate and
 * free 60 requests per window; more than 64 would only hold memory. */
#define RS__SPARE_WRITES_MAX 64

static inline void *rs__spares_take(void **head, uint8_t *count)
{
    void *block = *head;
    if (block) {
        memcpy(head, block, sizeof *head);
        (*count)--;
    }
    return block;
}

/* Keeps block unless max are kept already; then releases it. */
static inline void rs__spares_put(void **head, uint8_t *count, uint8_t max, void *block)
{
    if (*count < max) {
        memcpy(block, head, sizeof *head);
        *head = block;
        (*count)++;
    } else {
        rs__mem_release(block);
    }
}

static inline void rs__spares_release_all(void **head, uint8_t *count)
{
    void *block;
    while ((block = rs__spares_take(head, count))) {
        rs__mem_release(block);
    }
}

#endif
