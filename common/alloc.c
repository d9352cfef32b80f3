#include "alloc.h"

#include "atomics.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

static void *default_acquire(rs_allocator *a, size_t size)
{
    (void)a;
    return malloc(size);
}

static void default_release(rs_allocator *a, void *ptr)
{
    (void)a;
    free(ptr);
}

static rs_allocator default_allocator = {default_acquire, default_release, NULL};
static rs_allocator *current = &default_allocator;
static volatile long live_blocks;
static volatile long hook_locked;

void rs__alloc_lock_hook(int init_count)
{
    rs__atomic_store(&hook_locked, init_count > 0);
}

int rs_set_allocator(rs_allocator *allocator)
{
    if (rs__atomic_load(&hook_locked)) {
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    if (allocator && (!allocator->mem_acquire || !allocator->mem_release)) {
        return rs_raise(RS_ERROR_INVALID_ARGUMENT);
    }
    if (rs__atomic_load(&live_blocks) != 0) {
        /* Blocks from one allocator must never be released to another. */
        return rs_raise(RS_ERROR_INVALID_STATE);
    }
    current = allocator ? allocator : &default_allocator;
    return 0;
}

int64_t rs_live_allocations(void)
{
    return rs__atomic_load(&live_blocks);
}

void *rs__mem_acquire(size_t size)
{
    void *p = current->mem_acquire(current, size ? size : 1);
    if (!p) {
        return rs__raise_null(RS_ERROR_OUT_OF_MEMORY);
    }
    rs__atomic_add(&live_blocks, 1);
    return p;
}

void *rs__mem_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) {
        return rs__raise_null(RS_ERROR_OUT_OF_MEMORY);
    }
    void *p = rs__mem_acquire(count * size);
    if (p) {
        memset(p, 0, count * size);
    }
    return p;
}

void rs__mem_release(void *ptr)
{
    if (!ptr) {
        return;
    }
    rs__atomic_add(&live_blocks, -1);
    current->mem_release(current, ptr);
}
